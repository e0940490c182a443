"""Any OpenAI-compatible chat endpoint (vLLM serve, SGLang, LMDeploy, hosted APIs), with the stdlib only.

The user message carries the item's parts in order: text parts as ``{"type": "text"}``, images as base64
data URLs (``{"type": "image_url"}``), after the same system prompt ChatTemplate uses. Greedy: temperature 0.
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff; other 4xx and malformed
responses fail the item at once. Requests of a batch run ``concurrency`` at a time.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from mmprolong.eval.backends.base import Answer, Backend, BackendError, GenerationSettings
from mmprolong.eval.items import EvalItem
from mmprolong.template import SYSTEM_PROMPT

RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 600.0,
                 retries: int = 3, backoff_s: float = 1.0, concurrency: int = 4, max_model_len: int | None = None,
                 tokenizer=None, system: str = SYSTEM_PROMPT):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.concurrency = max(1, concurrency)
        self.max_model_len = max_model_len
        self.tokenizer = tokenizer
        self.system = system
        self.calls = 0  # HTTP requests sent (retries included)

    def identity(self) -> dict:
        return {"backend": self.name, "model": self.model, "url": self.url, "system": self.system}

    def label(self) -> str:
        return self.model or self.url

    def generate(self, items, loader, settings: GenerationSettings):
        def one(item: EvalItem) -> Answer | Exception:
            start = time.perf_counter()
            try:
                text = self._answer(item, loader, settings)
            except Exception as exc:  # noqa: BLE001 - returned as the item's error
                return exc
            return Answer(text=text, seconds=round(time.perf_counter() - start, 4))

        if self.concurrency == 1 or len(items) == 1:
            return [one(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)))
        try:
            return list(pool.map(one, items))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def messages(self, item: EvalItem, loader) -> list[dict]:
        content, images = [], iter(loader.encoded(item.images))
        for part in item.parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                data, mime = next(images)
                url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
                content.append({"type": "image_url", "image_url": {"url": url}})
        return [{"role": "system", "content": self.system}, {"role": "user", "content": content}]

    def _answer(self, item: EvalItem, loader, settings: GenerationSettings) -> str:
        body = json.dumps({"model": self.model, "messages": self.messages(item, loader),
                           "max_tokens": settings.max_new_tokens, "temperature": settings.temperature}).encode()
        response = self._post(body)
        try:
            content = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"malformed response from {self.url}: no choices[0].message.content in "
                               f"{json.dumps(response)[:200]}") from None
        if not isinstance(content, str):
            raise BackendError(f"malformed response from {self.url}: content is {type(content).__name__}, not text")
        return content.strip()

    def _post(self, body: bytes) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.calls += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    raw = reply.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                last = f"HTTP {exc.code} from {self.url}: {detail}"
                if exc.code in RETRY_STATUS:
                    continue
                raise BackendError(last) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}"
                continue
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BackendError(f"malformed response from {self.url}: not JSON: {raw[:200]!r}") from None
        raise BackendError(f"{last} (after {self.retries + 1} attempts)")
