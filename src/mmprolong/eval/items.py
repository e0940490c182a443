"""The records of the eval stage: EvalItem (what a model is asked) and EvalResult (what it answered, scored).

An item's user message is a sequence of parts, text or images, laid out by ``ChatTemplate`` exactly as synth
lays out a training sample, so ``tokens`` (= ``ChatTemplate.count(parts, gold answer)``) means what it means
in training. Images are referenced, never copied: a page of a page store (``kind="store"``: store folder,
doc_id, page_index) or an image file (``kind="file"``: generated needle pages, benchmark page images).

Both records are written as JSON lines (``items.jsonl``, ``results.jsonl``) and results also as Parquet.
An item that could not be built (too few pages, a malformed benchmark record, a missing image) is still an
item, with ``error`` set: it becomes a result with status "error", so one bad input never stops a run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ITEM_SCHEMA_VERSION = "1"
RESULT_SCHEMA_VERSION = "1"
NO_DEPTH = -1.0  # depth of items whose evidence position is not a grid axis (docvqa)


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemImage:
    """One image of an item's prompt."""

    kind: str  # "store" (a page of a page store) or "file" (an image file)
    vision_tokens: int  # <|image_pad|> tokens at the eval pixel budget
    width: int  # pixels of the stored image
    height: int
    root: str = ""  # store: the page store folder
    doc_id: str = ""  # store: the page's document
    page_index: int = -1  # store: 0-based page of the document
    path: str = ""  # file: the image file
    content_key: str = ""  # what identifies the pixels in cache keys: doc_id/page (store) or a file hash/stat

    def key(self) -> str:
        return self.content_key or (f"store:{self.doc_id}/{self.page_index}" if self.kind == "store"
                                    else f"file:{Path(self.path).name}")


Part = str | ItemImage


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalItem:
    """One question at one length and depth."""

    item_id: str  # hash of the item's content (see ``make_item``)
    suite: str  # niah | docvqa | synth-heldout
    task: str  # niah: single | multi-K; docvqa: the dataset; synth-heldout: the synth task
    length: int  # requested length (tokens)
    depth: float  # requested depth of the (first) needle/evidence, 0..1; NO_DEPTH where not a grid axis
    parts: tuple[Part, ...]  # the user message: texts and images, in order
    question: str  # the question text (also the last text part)
    answers: tuple[str, ...]  # gold answer(s); niah multi: one per needle, each must be found
    answer_format: str  # String | Integer | Float | List | None (Str/Int spellings accepted by metrics)
    metric: str  # a benchmark of mmprolong.eval.metrics.score, or "niah-all" (fraction of needles found)
    tokens: int = 0  # ChatTemplate.count(parts, answers joined): the item's exact length
    prompt_tokens: int = 0  # len(ChatTemplate.prompt_ids(parts)): what the model is fed
    evidence: tuple[int, ...] = ()  # positions among the images of the needle / evidence pages
    achieved_depth: float = NO_DEPTH  # image tokens before the first evidence image / all image tokens
    error: str = ""  # why the item could not be built; non-empty items are never sent to a model
    metadata: str = "{}"  # JSON extras: doc, needles, padding, source record

    @property
    def images(self) -> list[ItemImage]:
        return [p for p in self.parts if isinstance(p, ItemImage)]

    def to_row(self) -> dict:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["parts"] = [{"text": p} if isinstance(p, str) else {"image": asdict(p)} for p in self.parts]
        row["answers"] = list(self.answers)
        row["evidence"] = list(self.evidence)
        return row

    @classmethod
    def from_row(cls, row: dict) -> EvalItem:
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        values["parts"] = tuple(p["text"] if "text" in p else ItemImage(**p["image"]) for p in row["parts"])
        values["answers"] = tuple(row["answers"])
        values["evidence"] = tuple(row["evidence"])
        return cls(**values)

    def content_key(self) -> str:
        """What the model sees and how it is scored, without file locations: the answer cache's item key."""
        parts = [p if isinstance(p, str) else {"image": p.key(), "tokens": p.vision_tokens} for p in self.parts]
        blob = json.dumps({"parts": parts, "answers": list(self.answers), "format": self.answer_format,
                           "metric": self.metric}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


def make_item(**values) -> EvalItem:
    """An EvalItem whose ``item_id`` hashes its suite, task, grid cell and content."""
    draft = EvalItem(item_id="", **values)
    blob = json.dumps({"suite": draft.suite, "task": draft.task, "length": draft.length, "depth": draft.depth,
                       "content": draft.content_key(), "error": draft.error, "metadata": draft.metadata},
                      sort_keys=True)
    return EvalItem(**{**{f.name: getattr(draft, f.name) for f in fields(draft)},
                       "item_id": hashlib.sha256(blob.encode()).hexdigest()[:20]})


def error_item(*, suite: str, task: str, length: int, depth: float, error: str, metric: str,
               question: str = "", answers: Sequence[str] = (), answer_format: str = "String",
               metadata: dict | None = None) -> EvalItem:
    """An item that could not be built: it is reported with ``error`` and never sent to a model."""
    return make_item(suite=suite, task=task, length=length, depth=depth, parts=(), question=question,
                     answers=tuple(str(a) for a in answers), answer_format=answer_format, metric=metric,
                     error=error, metadata=json.dumps(metadata or {}, sort_keys=True, default=str))


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalResult:
    """One item's outcome: the answer, its score, or why there is none."""

    item_id: str
    suite: str
    task: str
    length: int
    depth: float
    tokens: int
    achieved_depth: float
    status: str  # "ok" | "error"
    prediction: str = ""
    score: float = 0.0  # 0..1; 0 for errors (tables average over ok items and count errors apart)
    error: str = ""
    seconds: float = 0.0  # generation time of the answer (from the cache on a resumed run)
    metadata: str = "{}"  # JSON: per-needle scores, parsed answer

    def to_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> EvalResult:
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})


RESULT_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("suite", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("length", pa.int64(), nullable=False),
        pa.field("depth", pa.float64(), nullable=False),
        pa.field("tokens", pa.int64(), nullable=False),
        pa.field("achieved_depth", pa.float64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("prediction", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),
    ],
    metadata={"mmprolong.record": "EvalResult", "mmprolong.schema_version": RESULT_SCHEMA_VERSION},
)


# --- IO: atomic whole-file writes; appends with fsync for progress ----------------------------------------


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSON-lines file; a torn last line (a killed append) is ignored."""
    rows = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i != len(lines) - 1:
                raise
    return rows


class JsonlAppender:
    """Appends one JSON object per line, flushed and fsynced, so a kill loses at most the line being written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        self.file.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def write_items(path: str | Path, items: Sequence[EvalItem]) -> None:
    write_jsonl(path, (i.to_row() for i in items))


def read_items(path: str | Path) -> list[EvalItem]:
    return [EvalItem.from_row(r) for r in read_jsonl(path)]


def write_results(out_dir: str | Path, results: Sequence[EvalResult]) -> None:
    """``results.jsonl`` and ``results.parquet`` (fixed schema, no timestamps), each written atomically."""
    out = Path(out_dir)
    write_jsonl(out / "results.jsonl", (r.to_row() for r in results))
    table = pa.Table.from_pylist([r.to_row() for r in results], schema=RESULT_SCHEMA)
    tmp = _tmp(out / "results.parquet")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out / "results.parquet")


def read_results(path: str | Path) -> list[EvalResult]:
    """Results from ``RUN_DIR`` (results.jsonl) or a results .jsonl / .parquet file."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.jsonl"
    if path.suffix == ".parquet":
        return [EvalResult.from_row(r) for r in pq.read_table(path).to_pylist()]
    return [EvalResult.from_row(r) for r in read_jsonl(path)]


@dataclass
class ItemStats:
    """Counts of a suite's build, for the run summary."""

    built: int = 0
    errors: int = 0
    reasons: dict = field(default_factory=dict)

    def add(self, item: EvalItem) -> None:
        self.built += 1
        if item.error:
            self.errors += 1
            key = item.error.split(":")[0][:80]
            self.reasons[key] = self.reasons.get(key, 0) + 1
