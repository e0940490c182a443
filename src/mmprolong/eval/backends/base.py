"""One interface for every way of answering an item, and the answer cache that makes evaluation resumable.

A backend implements ``generate(items, loader, settings)``: one ``Answer`` or one ``Exception`` per item, in
order, for a batch. Per-item failures are returned, not raised, so one bad item never stops a run; only
``BaseException``s that are not ``Exception`` (KeyboardInterrupt, SystemExit) escape, and the run resumes from
the cache. ``SequentialBackend`` turns a one-item ``generate_one`` into that contract.

The cache keeps one JSON file per answer, written to a temp file and renamed into place, keyed by
sha256(item content + backend identity + generation settings): a rerun of the same items with the same model
and settings makes no model call for any answer already there, whatever the output folder.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from mmprolong.chat_client import JsonFileCache
from mmprolong.eval.items import EvalItem
from mmprolong.eval.pages import ImageLoader
from mmprolong.template import Part


class BackendError(RuntimeError):
    """A backend could not produce an answer for one item (reported as that item's error)."""


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; part of every cache key. Greedy only (the paper's setting)."""

    max_new_tokens: int = 128
    temperature: float = 0.0

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    text: str
    seconds: float = 0.0  # generation time of this answer (a batch's time split evenly)
    output_tokens: int = -1  # generated tokens, -1 when unknown


def template_parts(item: EvalItem) -> list[Part]:
    """The item's parts as ChatTemplate takes them: an int (pad tokens) per image, strings as they are."""
    return [p if isinstance(p, str) else p.vision_tokens for p in item.parts]


class Backend:
    """Base of the backends. Subclasses set ``name`` and implement ``identity`` and ``generate``."""

    name = "backend"
    tokenizer = None  # the model's tokenizer when the backend has one (exact counting); else None
    family = None  # the model's family (chat layout, vision tokens) when the backend knows it; else None
    max_model_len: int | None = None  # longest prompt + answer the backend accepts (tokens), None = unknown

    def identity(self) -> dict:
        """What decides the answers besides the item and the settings: model, weights, rope, pixel budget."""
        raise NotImplementedError

    def pixel_budget(self) -> tuple[int, int] | None:
        """(min_pixels, max_pixels) the backend's image processor uses, when it is known."""
        return None

    def label(self) -> str:
        return str(self.identity().get("model", self.name))

    def generate(self, items: Sequence[EvalItem], loader: ImageLoader,
                 settings: GenerationSettings) -> list[Answer | Exception]:
        raise NotImplementedError

    def close(self) -> None:
        """Free the model / connections."""


class SequentialBackend(Backend):
    """A backend that answers one item at a time: implement ``generate_one``."""

    def generate_one(self, item: EvalItem, loader: ImageLoader, settings: GenerationSettings) -> Answer:
        raise NotImplementedError

    def generate(self, items, loader, settings):
        answers: list[Answer | Exception] = []
        for item in items:
            start = time.perf_counter()
            try:
                answer = self.generate_one(item, loader, settings)
            except Exception as exc:  # noqa: BLE001 - per-item errors are results, never crashes
                answers.append(exc)
                continue
            if not answer.seconds:
                answer = Answer(answer.text, round(time.perf_counter() - start, 4), answer.output_tokens)
            answers.append(answer)
        return answers


class AnswerCache:
    """``folder/ab/abcdef....json``: one finished answer per file (``mmprolong.chat_client.JsonFileCache``)."""

    def __init__(self, folder: str | Path):
        self.files = JsonFileCache(folder)

    @staticmethod
    def key(item: EvalItem, identity: dict, settings: GenerationSettings) -> str:
        blob = json.dumps({"item": item.content_key(), "backend": identity, "settings": settings.describe()},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Answer | None:
        data = self.files.get(key)
        if data is None or not isinstance(data.get("text"), str):
            return None  # missing, or a damaged entry: recomputed
        return Answer(data["text"], float(data.get("seconds", 0.0)), int(data.get("output_tokens", -1)))

    def put(self, key: str, answer: Answer, *, item_id: str = "") -> None:
        self.files.put(key, {**asdict(answer), "item_id": item_id})
