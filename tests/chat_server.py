"""A scripted OpenAI-compatible chat server on 127.0.0.1 for the tests of every client of mmprolong.chat_client
(synth's endpoint generator, eval's openai backend, eval's LLM scoring): each POST is answered by a script."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "test-vlm"


def completion(content: str) -> dict:
    return {"id": "c", "object": "chat.completion", "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}


@dataclass
class Reply:
    status: int = 200
    content: str | dict | None = None  # the assistant message; a dict is sent as its JSON
    raw: bytes | None = None  # the whole response body instead
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0


Script = Callable[[dict, int], Reply]  # (request body, 1-based hit number) -> reply


class FakeServer:
    """POST /v1/chat/completions answered by ``script``; records bodies and headers, counts hits and the most
    requests in flight. Any other path gets a 404."""

    def __init__(self, script: Script):
        self.script, self.hits, self.in_flight, self.max_in_flight = script, 0, 0, 0
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.hits += 1
                    hit = server.hits
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                try:
                    reply = server.script(body, hit) if self.path == "/v1/chat/completions" else Reply(404, "")
                    time.sleep(reply.delay_s)
                    data = reply.raw
                    if data is None:
                        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
                        data = json.dumps(completion(content)).encode()
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        return Handler


@contextmanager
def serve(script: Script):
    server = FakeServer(script)
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
