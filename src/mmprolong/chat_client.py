"""The one OpenAI-compatible chat-completions client of the project, with the standard library only.

Three callers share it: synth's endpoint generator (questions from a VLM), eval's ``openai`` backend (answers
from a served model) and eval's LLM scoring (answer extraction and judging). Each needs the same three things,
so they live here once:

- ``ChatClient.post``: POST {base_url}/chat/completions; connection errors, timeouts, HTTP 408/409/429 and 5xx
  are retried with exponential backoff (jittered when the caller passes a seeded ``rng``; a server's
  Retry-After wins, capped at ``MAX_WAIT_S``); any other 4xx or a body that is not JSON fails at once. Every
  final failure is a ``RequestFailure`` whose ``reason`` names it (http_error, retries_exhausted, timeout,
  connection_error, bad_response), so callers count or report failures by reason.
- ``JsonFileCache``: one JSON file per key (``folder/ab/abcdef....json``), written to a temp file, fsynced and
  renamed, so a killed run loses nothing it finished and a rerun makes no request for it.
- ``map_bounded``: a function over inputs with at most ``max_workers`` in flight, results in input order.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

MAX_WAIT_S = 60.0  # longest pause between retries, whatever Retry-After or the backoff asks for
RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx: the server may answer the same request later
FAILURE_REASONS = ("http_error", "retries_exhausted", "timeout", "connection_error", "bad_response")


class RequestFailure(Exception):
    """A request's outcome other than a reply: ``reason`` is a short key to count by, ``detail`` says what."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _retryable(status: int) -> bool:
    return status in RETRY_STATUS or status >= 500


class ChatClient:
    """POSTs chat-completions payloads to one endpoint. ``count(key)`` is called with "http_calls" for every
    attempt and "retried" for every retry (thread-safe counting is the caller's)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 120.0, max_retries: int = 3,
                 backoff_s: float = 1.0, count: Callable[[str], None] | None = None):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self._api_key = api_key
        self._count = count or (lambda key: None)

    def post(self, payload: dict, *, rng: random.Random | None = None) -> dict:
        """The JSON body of the endpoint's reply; a ``RequestFailure`` when it gives up. ``rng`` jitters the
        backoff (0.5x-1.5x), so concurrent clients that failed together do not retry together."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last: RequestFailure | None = None
        for attempt in range(self.max_retries + 1):
            wait = None
            self._count("http_calls")
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return _json_body(response.read())
            except urllib.error.HTTPError as exc:
                detail = f"HTTP {exc.code}: {_error_text(exc)}"
                if not _retryable(exc.code):
                    raise RequestFailure("http_error", detail) from None
                last, wait = RequestFailure("retries_exhausted", detail), _retry_after_s(exc.headers.get("Retry-After"))
            except TimeoutError as exc:
                last = RequestFailure("timeout", f"no reply within {self.timeout_s}s ({exc})")
            except urllib.error.URLError as exc:
                reason = "timeout" if isinstance(exc.reason, TimeoutError) else "connection_error"
                last = RequestFailure(reason, str(exc.reason)[:120])
            except (http.client.HTTPException, OSError) as exc:
                last = RequestFailure("connection_error", repr(exc)[:120])
            if attempt < self.max_retries:
                self._count("retried")
                if wait is None:
                    wait = self.backoff_s * 2**attempt * (0.5 + rng.random() if rng is not None else 1.0)
                time.sleep(min(wait, MAX_WAIT_S))
        assert last is not None
        raise last


def _json_body(raw: bytes) -> dict:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestFailure("bad_response", f"not JSON: {raw[:200]!r}") from None


def message_content(body: Any, *, allow_empty: bool = False) -> str:
    """choices[0].message.content of a chat-completions body; ``RequestFailure("bad_response")`` otherwise."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise RequestFailure("bad_response", f"no choices[0].message.content in "
                                             f"{json.dumps(body, default=str)[:200]}") from None
    if not isinstance(content, str):
        raise RequestFailure("bad_response", f"content is {type(content).__name__}, not text")
    if not allow_empty and not content.strip():
        raise RequestFailure("bad_response", "empty message content")
    return content


def _retry_after_s(header: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read()[:200].decode("utf-8", "replace")
    except OSError:
        return ""


def payload_key(payload: dict, *salt: str) -> str:
    """A cache key for a request: sha256 of the payload (keys sorted) and any ``salt`` strings."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False) + "".join("\n" + s for s in salt)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JsonFileCache:
    """``folder/ab/abcdef....json``: one JSON object per key (temp file + fsync + rename). An entry records its
    key; an entry for another key, or one that cannot be read, reads as missing and is recomputed."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a torn or damaged entry
        if not isinstance(entry, dict) or entry.get("key", key) != key:
            return None
        return entry

    def put(self, key: str, value: dict) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({**value, "key": key}, f, sort_keys=True, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def map_bounded(fn: Callable[[Any], Any], inputs: Iterable, *, max_workers: int, desc: str = "",
                show_progress: bool = False) -> list:
    """``[fn(x) for x in inputs]`` with at most ``max_workers`` calls in flight, in input order. ``fn`` should
    return its failures rather than raise them; an exception it raises propagates, and calls not yet started
    are cancelled (as they are on KeyboardInterrupt)."""
    inputs: Sequence = list(inputs)
    results: list = [None] * len(inputs)
    if not inputs:
        return results
    from tqdm import tqdm

    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(inputs))))
    try:
        futures = {pool.submit(fn, x): i for i, x in enumerate(inputs)}
        for future in tqdm(as_completed(futures), total=len(futures), disable=not show_progress, desc=desc):
            results[futures[future]] = future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results
