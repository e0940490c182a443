"""Plain helpers of the train tests (a module of its own: ``from conftest import`` would resolve to whichever
test folder's conftest was imported first)."""

import io
import json
import os
import random
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from PIL import Image

from mmprolong.models import DEFAULT_FAMILY
from mmprolong.records import PAGE_SCHEMA, PageRecord, PageRef, SampleRecord
from mmprolong.template import ChatTemplate

QWEN3_MIN_PIXELS = 4 * 32 * 32  # the Qwen3-VL fixtures' budget floor: small pages stay 4-20 tokens, like Qwen2.5-VL's
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


def write_page_store(store_dir, *, docs: int, pages: int, seed: int, family=DEFAULT_FAMILY,
                     min_pixels: int | None = None) -> dict:
    """A page store of ``docs`` documents of ``pages`` pages in two shards, counted for ``family`` at its budget
    (``min_pixels`` overridable); returns {(doc_id, page): image}."""
    budget = {"min_pixels": min_pixels or family.min_pixels, "max_pixels": family.max_pixels}
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
                height=image.height, vision_tokens=family.image_tokens(image.height, image.width, **budget),
                text=f"page {p}", image=png_bytes(image), image_format="png").to_row())
    for i, rows in enumerate(shards):
        # Small row groups so reading one page touches one group, as in a real store.
        pq.write_table(pa.Table.from_pylist(rows, schema=PAGE_SCHEMA), store_dir / f"shard-{i:05d}.parquet",
                       row_group_size=4)
    (store_dir / "summary.json").write_text(json.dumps({"config": {"family": family.name, **budget}}))
    return images


def make_samples(images: dict, template: ChatTemplate, *, count: int, seed: int, max_pages: int = 4,
                 prefix: str = "s", min_pixels: int | None = None) -> list[SampleRecord]:
    """Samples of 1..max_pages consecutive pages of one document, with random question and answer, counted for
    the template's family at its budget (``min_pixels`` overridable)."""
    family = template.family
    budget = {"min_pixels": min_pixels or family.min_pixels, "max_pixels": family.max_pixels}
    rng = random.Random(seed)
    docs = sorted({doc for doc, _ in images})
    samples = []
    for i in range(count):
        doc = rng.choice(docs)
        pages_in_doc = sum(1 for d, _ in images if d == doc)
        n = rng.randint(1, min(max_pages, pages_in_doc))
        first = rng.randrange(pages_in_doc - n + 1)
        refs = tuple(PageRef(doc_id=doc, page_index=p, vision_tokens=family.image_tokens(
            images[(doc, p)].height, images[(doc, p)].width, **budget)) for p in range(first, first + n))
        question = "What is " + " ".join(rng.choices(WORDS, k=rng.randint(2, 12))) + "?"
        answer = " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))
        tokens = template.count([r.vision_tokens for r in refs] + [question], answer)
        samples.append(SampleRecord(
            sample_id=f"{prefix}{i:04d}", task="extract-single", bucket="tiny", tokens=tokens, pages=refs,
            question=question, answer=answer, answer_format="String", evidence=(0,), depth=0.0))
    return samples


def sample_images(sample: SampleRecord, images: dict) -> list[Image.Image]:
    return [images[(p.doc_id, p.page_index)] for p in sample.pages]


# --- runs ------------------------------------------------------------------------------------------------


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def torchrun(config: dict, path, processes: int = 2) -> str:
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc_per_node={processes}", "-m", "mmprolong.cli", "train", "--config", str(path)],
                            env=env, check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result.stdout


def max_weight_diff(a, b) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "final" / "model.safetensors"), load_file(b / "final" / "model.safetensors")
    assert set(wa) == set(wb)
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)
