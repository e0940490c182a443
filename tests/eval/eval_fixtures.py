"""Helpers of the eval tests (imported by name: a module called conftest would clash with tests/train's):
a real page store of small Pillow-drawn pages with text layers, and a fake backend that counts its calls."""

import hashlib
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from mmprolong.eval.backends.base import Answer, SequentialBackend
from mmprolong.records import PAGE_SCHEMA, PageRecord
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, image_tokens

ENTITIES = ("Northwind", "Contoso", "Fabrikam", "Litware", "Tailspin", "Wingtip", "Adatum", "Proseware",
            "Lucerne", "Woodgrove")
ATTRIBUTES = ("revenue", "output", "headcount", "inventory", "backlog", "shipments", "capacity", "demand")


def page_text(rng: random.Random, doc: int, page: int) -> str:
    lines = [f"Quarterly review of division {chr(65 + doc % 26)}"]
    for _ in range(2):
        lines.append(f"The {rng.choice(ATTRIBUTES)} of {rng.choice(ENTITIES)} reached {rng.randrange(100, 99999):,} "
                     "units during the review period.")
    lines.append("Operations continued as planned across all regions.")
    return "\n".join(lines)


def draw_page(text: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=7)
    for i, line in enumerate(text.split("\n")):
        draw.text((2, 2 + 9 * i), line[:28], fill="black", font=font)
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_text_store(store_dir, *, docs: int, pages: int, seed: int) -> list[str]:
    """A page store (two shards + summary.json): pages 112x140 px (20 vision tokens), every fifth 84x112 (12);
    each page has a text layer with two cloze-able lines. Returns the doc_ids."""
    rng = random.Random(seed)
    store_dir.mkdir(parents=True, exist_ok=True)
    shards, doc_ids = [[], []], []
    for d in range(docs):
        doc_id = hashlib.sha256(f"test-doc-{seed}-{d}".encode()).hexdigest()[:16]
        doc_ids.append(doc_id)
        for p in range(pages):
            size = (84, 112) if (d + p) % 5 == 4 else (112, 140)
            text = page_text(rng, d, p)
            image = draw_page(text, size)
            shards[d % 2].append(PageRecord(
                doc_id=doc_id, source=f"doc{d}.pdf", page_index=p, page_count=pages, width=size[0], height=size[1],
                vision_tokens=image_tokens(size[1], size[0]), text=text, image=png(image),
                image_format="png").to_row())
    for i, rows in enumerate(shards):
        pq.write_table(pa.Table.from_pylist(rows, schema=PAGE_SCHEMA), store_dir / f"shard-{i:05d}.parquet",
                       row_group_size=8)
    (store_dir / "summary.json").write_text(json.dumps({"config": {"min_pixels": DEFAULT_MIN_PIXELS,
                                                                   "max_pixels": DEFAULT_MAX_PIXELS}}))
    return doc_ids


class FakeBackend(SequentialBackend):
    """Answers niah items with their codes (or ``answer``), counts calls; ``interrupt_at``: raise
    KeyboardInterrupt on that call (0-based), as a killed run would stop."""

    name = "fake"

    def __init__(self, model: str = "fake", *, answer: str | None = None, interrupt_at: int | None = None,
                 max_model_len: int | None = None):
        self.model, self.answer, self.interrupt_at = model, answer, interrupt_at
        self.max_model_len = max_model_len
        self.calls = 0
        self.seen: list[str] = []

    def identity(self) -> dict:
        return {"backend": self.name, "model": self.model, "answer": self.answer}

    def generate_one(self, item, loader, settings) -> Answer:
        if self.interrupt_at is not None and self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls += 1
        self.seen.append(item.item_id)
        loader.encoded(item.images)  # touch the pixels, as a real backend would
        if self.answer is not None:
            return Answer(self.answer, seconds=0.001)
        codes = [n["code"] for n in json.loads(item.metadata).get("needles", [])]
        # Half the needles found on multi items, all on single ones: scores are not all 0 or 1.
        found = codes if len(codes) == 1 else codes[: len(codes) // 2]
        return Answer("Answer: " + " ".join(found), seconds=0.001)


class OracleBackend(SequentialBackend):
    """A perfect reader: answers every item with its gold, as the item counts it ("Answer: " + the answers
    joined), after loading its pixels (so every page exists at the size the item was built for)."""

    name = "oracle"

    def identity(self) -> dict:
        return {"backend": self.name, "model": "oracle"}

    def generate_one(self, item, loader, settings) -> Answer:
        from mmprolong.eval.suites.common import answer_text

        loader.pil(item.images)
        return Answer("Answer: " + answer_text(item.answers), seconds=0.001)
