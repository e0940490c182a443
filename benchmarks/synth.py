"""Synth speed: samples/s and tokens/s for balanced mixtures at 32K and 128K targets, one run, one store.

    python benchmarks/synth.py [STORE_DIR] [--workers N] [--budget-tokens T] [--out results.json]

Without STORE_DIR it generates the embedded corpus (24 documents of 20-200 pages, seed 0) and ingests it
at the default pixel budget, so the pages are the paper's size (about 1,000-1,300 vision tokens each).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import report

from mmprolong import api
from mmprolong.ingest import IngestConfig
from mmprolong.synth.config import SynthConfig


def make_store(root: Path, workers: int) -> Path:
    api.make_corpus(root / "pdfs", docs=24, seed=0, min_pages=20, max_pages=200, show_progress=False)
    api.ingest(root / "pdfs", root / "store", IngestConfig(workers=workers), show_progress=False)
    return root / "store"


def run(store: Path, root: Path, target: int, workers: int, budget: int | None, passes: float) -> dict:
    config = SynthConfig(target_tokens=target, workers=workers, budget_tokens=budget, store_passes=passes)
    start = time.perf_counter()
    summary = api.synth(store, root / f"data-{target}", config, show_progress=False)
    seconds = time.perf_counter() - start
    worst = max(abs(summary["share_by_bucket"][b] - p) for b, p in summary["planned"]["share_by_bucket"].items())
    return {"target_tokens": target, "samples": summary["samples"], "tokens": summary["tokens"],
            "seconds": round(seconds, 2), "samples_per_s": round(summary["samples"] / seconds, 2),
            "tokens_per_s": round(summary["tokens"] / seconds), "dropped_unverified": summary["dropped_unverified"],
            "max_bucket_share_error_points": round(100 * worst, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", type=Path, help="page store; default: generate and ingest a corpus")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget-tokens", type=int, default=None,
                        help="default: the store's tokens x --store-passes")
    parser.add_argument("--store-passes", type=float, default=2.5,
                        help="pages reused this many times on average (2.5: over 200 samples at 128K)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/synth.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = args.store or make_store(root, args.workers)
        rows = [run(store, root, target, args.workers, args.budget_tokens, args.store_passes)
                for target in (32_768, 131_072)]
    report(rows, args.out, workers=args.workers, store_passes=args.store_passes)


if __name__ == "__main__":
    main()
