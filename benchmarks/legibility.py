"""Legibility: can a reader nobody here wrote read the pages a model is shown? Tesseract on page images.

    python benchmarks/legibility.py [--docs 12] [--pages 120] [--out benchmarks/results/legibility.json]

For each corpus layout (large-print fact cards, the standard reports/manuals/slides) it generates documents,
ingests them at the quickstart's pixel budget (128 vision tokens of 28 x 28 px a page at most, 72 dpi) and at
the paper's (144 dpi), and runs ``tesseract`` (Debian package ``tesseract-ocr``; not needed by CI) on a seeded
sample of page images as the store holds them, i.e. as the model sees them. It also reads the niah needle notes
at the store's page size. A page's score is the share of the text layer's characters that tesseract recovers:
matched characters (difflib blocks, whitespace collapsed) / characters of the text layer.
"""

from __future__ import annotations

import argparse
import difflib
import io
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import report

from mmprolong import api
from mmprolong.ingest import IngestConfig
from mmprolong.quickstart import INGEST, WORKERS


def normalise(text: str) -> str:
    return " ".join(text.split())


def recall(read: str, truth: str) -> tuple[int, int]:
    """(characters of ``truth`` that ``read`` recovers, characters of ``truth``), whitespace collapsed."""
    read, truth = normalise(read), normalise(truth)
    matcher = difflib.SequenceMatcher(None, read, truth, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()), len(truth)


def tesseract(png: bytes) -> str:
    result = subprocess.run(["tesseract", "stdin", "stdout", "--psm", "6"], input=png, capture_output=True,
                            check=True)
    return result.stdout.decode("utf-8", "replace")


def read_store(store: Path, pages: int, seed: int) -> dict:
    import pyarrow.parquet as pq

    rows = []
    for shard in sorted(store.glob("shard-*.parquet")):
        rows += pq.read_table(shard, columns=["text", "image", "width", "height"]).to_pylist()
    rows = [r for r in rows if r["text"].strip()]
    chosen = random.Random(seed).sample(rows, min(pages, len(rows)))
    found = total = 0
    for row in chosen:
        hit, count = recall(tesseract(row["image"]), row["text"])
        found, total = found + hit, total + count
    sizes = sorted({(r["width"], r["height"]) for r in chosen})
    return {"pages read": len(chosen), "characters": total, "recall": round(found / total, 4),
            "page px": f"{sizes[0][0]}x{sizes[0][1]}" + (" and others" if len(sizes) > 1 else "")}


def read_needles(width: int, height: int, count: int, seed: int) -> dict:
    from mmprolong.corpus.cards import archive_names
    from mmprolong.eval.suites.niah import fact_text, render_note

    rng = random.Random(seed)
    found = total = 0
    for archive in rng.sample(archive_names(88), count):
        code = str(rng.randint(100_000, 999_999))
        buffer = io.BytesIO()
        render_note(archive, code, width, height).save(buffer, format="PNG")
        hit, n = recall(tesseract(buffer.getvalue()), fact_text(archive, code))
        found, total = found + hit, total + n
    return {"pages read": count, "characters": total, "recall": round(found / total, 4), "page px": f"{width}x{height}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--pages", type=int, default=120, help="pages read per store")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/legibility.json"))
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        sys.exit("tesseract is not installed: apt-get install tesseract-ocr")
    budgets = {"quickstart (128 tokens, 72 dpi)": IngestConfig(**INGEST, workers=WORKERS),
               "paper (144 dpi, 1280 tokens)": IngestConfig(workers=WORKERS)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for layout in ("large-print", "standard"):
            pdfs = root / layout
            api.make_corpus(pdfs, docs=args.docs, seed=args.seed, min_pages=10, max_pages=30, layout=layout,
                            show_progress=False)
            for budget, config in budgets.items():
                store = root / f"{layout}-{len(rows)}"
                api.ingest(pdfs, store, config, show_progress=False)
                rows.append({"pages": f"{layout} corpus", "budget": budget,
                             **read_store(store, args.pages, args.seed)})
    rows.append({"pages": "niah needle notes", "budget": "quickstart (a card's size)",
                 **read_needles(336, 280, 40, args.seed)})
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    report(rows, args.out, reader=version, method="tesseract --psm 6 on the stored page PNG; recall of text-layer "
                                                   "characters, whitespace collapsed")


if __name__ == "__main__":
    main()
