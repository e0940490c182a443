"""Fixtures for the train tests: the real tokenizer, the tiny Qwen2.5-VL, a tiny page store and samples.

Pages are small random PNGs (56x84 .. 112x140 px: 6-20 vision tokens) so whole samples are ~100 tokens.
"""

import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmprolong.records import PAGE_SCHEMA, SAMPLE_SCHEMA, PageRecord, PageRef, SampleRecord
from mmprolong.template import ChatTemplate
from mmprolong.tokenizer import load_tokenizer
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, image_tokens
from mmprolong.train.models import build_image_processor, build_tiny_model

WORDS = ("revenue of northwind logistics grew in 2023 to 1,840 units while pressure reached 12.5 bar "
         "table section figure caption page total").split()


def random_page_image(rng: random.Random) -> Image.Image:
    width, height = rng.randrange(56, 113), rng.randrange(84, 141)
    data = rng.randbytes(width * height * 3)
    return Image.frombytes("RGB", (width, height), data)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_page_store(store_dir, *, docs: int, pages: int, seed: int) -> dict:
    """A page store of ``docs`` documents of ``pages`` pages in two shards; returns {(doc_id, page): image}."""
    rng = random.Random(seed)
    store_dir.mkdir(parents=True, exist_ok=True)
    images, shards = {}, [[], []]
    for d in range(docs):
        doc_id = f"{d:016x}"
        for p in range(pages):
            image = random_page_image(rng)
            images[(doc_id, p)] = image
            shards[d % 2].append(PageRecord(
                doc_id=doc_id, source=f"doc{d}.pdf", page_index=p, page_count=pages, width=image.width,
                height=image.height, vision_tokens=image_tokens(image.height, image.width),
                text=f"page {p}", image=png_bytes(image), image_format="png").to_row())
    for i, rows in enumerate(shards):
        # Small row groups so reading one page touches one group, as in a real store.
        pq.write_table(pa.Table.from_pylist(rows, schema=PAGE_SCHEMA), store_dir / f"shard-{i:05d}.parquet",
                       row_group_size=4)
    (store_dir / "summary.json").write_text(json.dumps({"config": {"min_pixels": DEFAULT_MIN_PIXELS,
                                                                   "max_pixels": DEFAULT_MAX_PIXELS}}))
    return images


def make_samples(images: dict, template: ChatTemplate, *, count: int, seed: int, max_pages: int = 4,
                 prefix: str = "s") -> list[SampleRecord]:
    """Samples of 1..max_pages consecutive pages of one document, with random question and answer."""
    rng = random.Random(seed)
    docs = sorted({doc for doc, _ in images})
    samples = []
    for i in range(count):
        doc = rng.choice(docs)
        pages_in_doc = sum(1 for d, _ in images if d == doc)
        n = rng.randint(1, min(max_pages, pages_in_doc))
        first = rng.randrange(pages_in_doc - n + 1)
        refs = tuple(PageRef(doc_id=doc, page_index=p, vision_tokens=image_tokens(
            images[(doc, p)].height, images[(doc, p)].width)) for p in range(first, first + n))
        question = "What is " + " ".join(rng.choices(WORDS, k=rng.randint(2, 12))) + "?"
        answer = " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))
        tokens = template.count([r.vision_tokens for r in refs] + [question], answer)
        samples.append(SampleRecord(
            sample_id=f"{prefix}{i:04d}", task="extract-single", bucket="tiny", tokens=tokens, pages=refs,
            question=question, answer=answer, answer_format="String", evidence=(0,), depth=0.0))
    return samples


def sample_images(sample: SampleRecord, images: dict) -> list[Image.Image]:
    return [images[(p.doc_id, p.page_index)] for p in sample.pages]


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="session")
def template(tokenizer):
    return ChatTemplate(tokenizer)


@pytest.fixture(scope="session")
def image_processor():
    return build_image_processor()


@pytest.fixture(scope="session")
def tiny_model64(tokenizer):
    """The tiny preset in float64, eval mode (no dropout anyway): exact comparisons."""
    return build_tiny_model(tokenizer, seed=0, dtype="float64").eval()


@pytest.fixture(scope="session")
def page_store(tmp_path_factory):
    """(store_dir, {(doc_id, page_index): PIL image}): 6 documents of 5 pages."""
    store_dir = tmp_path_factory.mktemp("store")
    return store_dir, write_page_store(store_dir, docs=6, pages=5, seed=0)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, page_store, template):
    """A synth-style DATA_DIR: 2 sample shards and summary.json whose ``store`` is a relative path."""
    store_dir, images = page_store
    root = tmp_path_factory.mktemp("data")
    samples = make_samples(images, template, count=40, seed=1)
    for i, part in enumerate((samples[:25], samples[25:])):
        pq.write_table(pa.Table.from_pylist([s.to_row() for s in part], schema=SAMPLE_SCHEMA),
                       root / f"unit-{i:05d}.parquet")
    store_rel = "../" + store_dir.name
    (root / "summary.json").write_text(json.dumps({"store": store_rel, "min_pixels": DEFAULT_MIN_PIXELS,
                                                   "max_pixels": DEFAULT_MAX_PIXELS, "samples": len(samples)}))
    return root, samples
