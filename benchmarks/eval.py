"""Eval speed: niah items/s at each length, one run, with a model (default: the tiny preset) on a page store.

    python benchmarks/eval.py [STORE_DIR] [--model DIR] [--lengths 1k,2k,4k,8k,16k] [--out results.json]

Without STORE_DIR it generates the embedded corpus (6 documents) and ingests it at the quickstart's budget
(about 130 vision tokens a page). Generation is greedy with 12 new tokens (a needle answer is a number).
Each length's time includes loading the model and building the haystacks; a first, unreported run warms
imports and kernels.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import report

from mmprolong import api
from mmprolong.eval import EvalConfig, parse_lengths
from mmprolong.ingest import IngestConfig
from mmprolong.quickstart import INGEST


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint folder; default: the tiny preset")
    parser.add_argument("--lengths", default="1k,2k,4k,8k,16k")
    parser.add_argument("--depths", type=int, default=5, help="depth steps (items per length)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/eval.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = args.store
        if store is None:
            api.make_corpus(root / "pdfs", docs=6, seed=0, min_pages=20, max_pages=60, show_progress=False)
            api.ingest(root / "pdfs", root / "store", IngestConfig(**INGEST), show_progress=False)
            store = root / "store"
        def config(length: int) -> EvalConfig:
            return EvalConfig(suite="niah", lengths=[length], depth_steps=args.depths, needles=[1], items_per_cell=1,
                              store_dir=str(store), max_new_tokens=12, max_pixels=INGEST["max_pixels"])

        lengths = parse_lengths(args.lengths)
        api.evaluate(args.model, root / "warm-up", config(lengths[0]), show_progress=False)  # imports, kernels
        for length in lengths:
            start = time.perf_counter()
            summary = api.evaluate(args.model, root / f"run-{length}", config(length), show_progress=False)
            seconds = time.perf_counter() - start
            items = args.depths
            rows.append({"length": length, "items": items, "seconds": round(seconds, 2),
                         "items_per_s": round(items / seconds, 3), "s_per_item": round(seconds / items, 2),
                         "errors": summary.get("errors", 0)})
    report(rows, args.out, model=str(args.model or "tiny preset"))


if __name__ == "__main__":
    main()
