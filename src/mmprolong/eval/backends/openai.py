"""Any OpenAI-compatible chat endpoint (vLLM serve, SGLang, LMDeploy, hosted APIs), with the stdlib only.

The user message carries the item's parts in order: text parts as ``{"type": "text"}``, images as base64
data URLs (``{"type": "image_url"}``), after the system turn ChatTemplate writes for the model's family (none for
Qwen3-VL). Greedy: temperature 0.
HTTP, retries (connection errors, timeouts, 408/409/429, 5xx, with exponential backoff) and the ``concurrency``
requests of a batch in flight are ``mmprolong.chat_client``'s; other 4xx and malformed responses fail the item
at once.
"""

from __future__ import annotations

import base64
import threading
import time

from mmprolong.chat_client import ChatClient, RequestFailure, map_bounded, message_content
from mmprolong.eval.backends.base import Answer, Backend, BackendError, GenerationSettings
from mmprolong.eval.items import EvalItem
from mmprolong.models import DEFAULT_FAMILY, ModelFamily


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 600.0,
                 retries: int = 3, backoff_s: float = 1.0, concurrency: int = 4, max_model_len: int | None = None,
                 tokenizer=None, family: ModelFamily = DEFAULT_FAMILY):
        self.client = ChatClient(base_url, api_key=api_key, timeout_s=timeout_s, max_retries=retries,
                                 backoff_s=backoff_s, count=self._count)
        self.url = self.client.url
        self.model = model
        self.concurrency = max(1, concurrency)
        self.max_model_len = max_model_len
        self.tokenizer = tokenizer
        self.family = family
        self.system = family.system_prompt
        self.calls = 0  # HTTP requests sent (retries included)
        self._lock = threading.Lock()

    def _count(self, key: str) -> None:
        if key == "http_calls":
            with self._lock:
                self.calls += 1

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

        return map_bounded(one, items, max_workers=self.concurrency)

    def messages(self, item: EvalItem, loader) -> list[dict]:
        content, images = [], iter(loader.encoded(item.images))
        for part in item.parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                data, mime = next(images)
                url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
                content.append({"type": "image_url", "image_url": {"url": url}})
        system = [] if self.system is None else [{"role": "system", "content": self.system}]
        return [*system, {"role": "user", "content": content}]

    def _answer(self, item: EvalItem, loader, settings: GenerationSettings) -> str:
        payload = {"model": self.model, "messages": self.messages(item, loader),
                   "max_tokens": settings.max_new_tokens, "temperature": settings.temperature}
        try:
            return message_content(self.client.post(payload), allow_empty=True).strip()
        except RequestFailure as failure:
            raise BackendError(_describe(failure, self.url, self.client.max_retries + 1)) from None


def _describe(failure: RequestFailure, url: str, attempts: int) -> str:
    if failure.reason == "bad_response":
        return f"malformed response from {url}: {failure.detail}"
    if failure.reason in ("timeout", "connection_error"):
        return f"cannot reach {url}: {failure.detail} (after {attempts} attempts)"
    if failure.reason == "retries_exhausted":
        return f"{failure.detail} from {url} (after {attempts} attempts)"
    return f"{failure.detail} from {url}"
