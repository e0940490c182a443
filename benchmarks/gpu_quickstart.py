"""The quickstart on one GPU: its default run, then LongPT with k times the documents and tokens (one pass over
k times as many distinct samples, k times the steps): the smallest k of --scales first, then the largest that the
time left allows, and so on.

    python benchmarks/gpu_quickstart.py --work runs/gpu [--scales 1 4 8 16] [--budget-s 480] [--logn W]
                                        [--out benchmarks/results/gpu-quickstart.json] [--append]
                                        [--add-run K=PATH ...]

Each scale is `mmprolong quickstart --device cuda --docs Dk --train-tokens Tk --questions Q` in its own folder, D, T
and Q the quickstart's defaults unless --docs, --train-tokens and --questions say otherwise (the same seed, so k=1
is the CPU front door's run on another device; the results of 2026-12-04 ran `--docs 24 --train-tokens 800000
--questions 1`, the defaults then). A scale runs only if its predicted time (the last
run's data steps and training scaled by k, plus its evaluation) fits what is left of --budget-s; the JSON (one row
per scale: steps, LongPT tokens/s, seconds per step of the quickstart, niah and held-out scores, and niah with
the inference settings (log-length scaling, page window) as `inference` columns where the run has them (`logn` in
results of runs before 2026-12-06, which had the scaling only); with intervals under "scores") is rewritten
after every run, so a run cut short keeps the ones before it. Beside it, a plot of needle accuracy against length
per scale (dotted: code characters in place). With --append the scales already in --out that this call does not run
are kept: a device call too short for every scale runs the rest in a later one; --add-run K=PATH takes scale K from
a finished run instead (the front door's own, say).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import transformers
from common import report, score_columns

from mmprolong import api
from mmprolong.eval.report import plot_accuracy_vs_length
from mmprolong.quickstart import CPU_DOCS, CPU_QUESTIONS, CPU_TRAIN_TOKENS, INFERENCE

DATA_STEPS = ("corpus", "ingest", "decontaminate", "synth")


def predict(t: dict, k_last: int, k: int) -> float:
    """Seconds a run at scale ``k`` should take, from the seconds per step ``t`` of the run at ``k_last``: data and
    training grow with the documents and tokens, evaluation (a fixed grid) does not."""
    grows = sum(t.get(s, 0.0) for s in DATA_STEPS) + t["train"]
    return grows * k / k_last + t["eval"] + t.get("report", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/gpu-quickstart"))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--budget-s", type=float, default=480.0, help="seconds for all scales together")
    parser.add_argument("--docs", type=int, default=CPU_DOCS, help="documents at k=1 (the quickstart's default)")
    parser.add_argument("--train-tokens", type=int, default=CPU_TRAIN_TOKENS, help="LongPT tokens at k=1 (the default)")
    parser.add_argument("--questions", type=int, default=CPU_QUESTIONS, help="questions a LongPT sample asks (all k)")
    parser.add_argument("--niah-items", type=int, default=5)
    parser.add_argument("--heldout-items", type=int, default=16)
    parser.add_argument("--logn", type=int, default=None,
                        help="--attn-logn-window of every run (default: the quickstart's; 0: off)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu-quickstart.json"))
    parser.add_argument("--append", action="store_true", help="keep the other scales already in --out")
    parser.add_argument("--add-run", action="append", default=[], metavar="K=PATH",
                        help="scale K from a finished quickstart folder (its --docs and --train-tokens K times "
                             "these; the front door's own run for K=1) instead of running it")
    args = parser.parse_args()

    start = time.perf_counter()
    added = {}
    for spec in args.add_run:
        k, _, path = spec.partition("=")
        if not k.isdigit() or not (Path(path) / "quickstart.json").is_file():
            parser.error(f"--add-run {spec}: expected K=PATH, PATH a finished quickstart folder (with quickstart.json)")
        added[int(k)] = Path(path)
    todo = sorted(set(args.scales) - set(added))
    rows, scores = kept_scales(args.out) if args.append else ([], {})
    for k, run in added.items():
        rows, scores = add_scale(rows, scores, k, run, args)
    last, k_last = None, None
    while todo:
        # the smallest scale first (it times the others), then the largest that fits
        left = args.budget_s - (time.perf_counter() - start)
        fits = [k for k in todo if last is None or predict(last, k_last, k) <= left]
        if not fits:
            print(f"skipped k={todo}: predicted {predict(last, k_last, todo[0]):.0f} s or more, {left:.0f} s left",
                  flush=True)
            break
        k = fits[0] if last is None else fits[-1]
        todo.remove(k)
        api.quickstart(args.work / f"k{k}", docs=args.docs * k, train_tokens=args.train_tokens * k,
                       niah_items=args.niah_items, heldout_items=args.heldout_items, logn_window=args.logn,
                       device=args.device, questions=args.questions, show_progress=False)
        rows, scores = add_scale(rows, scores, k, args.work / f"k{k}", args)
        last, k_last = json.loads((args.work / f"k{k}" / "quickstart.json").read_text())["timings_s"], k
        write(rows, scores, args)
    if not last and rows:  # only --add-run
        write(rows, scores, args)


def add_scale(rows: list[dict], scores: dict, k: int, run: Path, args) -> tuple[list[dict], dict]:
    """``rows`` and ``scores`` with scale ``k``'s, read from its finished quickstart folder ``run``."""
    summary = json.loads((run / "quickstart.json").read_text())
    trained = json.loads((run / "train-long" / "summary.json").read_text())
    t = summary["timings_s"]  # summed over invocations: a resumed run's full cost
    synth = json.loads((run / "data-long" / "manifest.json").read_text())["config"]
    row = {"k": k, "docs": args.docs * k, "questions": synth.get("questions_per_sample", 1),
           "LongPT tokens": args.train_tokens * k, "steps": trained["steps"],
           "LongPT tokens/s": round(args.train_tokens * k / t["train"]),
           "data s": round(sum(t.get(s, 0.0) for s in DATA_STEPS), 1), "train s": t["train"], "eval s": t["eval"],
           "total s": summary["total_all_invocations_s"], **score_columns(summary["scores"]["base"], "start "),
           **score_columns(summary["scores"]["trained"]),
           **score_columns(summary["scores"].get(f"trained{INFERENCE}", {}), "inference ")}
    return (sorted([r for r in rows if r["k"] != k] + [row], key=lambda r: r["k"]),
            dict(sorted({**scores, f"k={k}": summary["scores"]}.items(), key=lambda kv: scale_of(kv[0]))))


def write(rows: list[dict], scores: dict, args) -> None:
    # asked after a run: CUDA is then set up in this process anyway (ingest and synth fork workers)
    device = torch.cuda.get_device_name() if args.device != "cpu" and torch.cuda.is_available() else "cpu"
    report(rows, args.out, device=device, torch=torch.__version__, transformers=transformers.__version__,
           budget_s=args.budget_s, scores=scores)
    plot(scores, args.out.with_suffix(".png"), device)


def scale_of(name: str) -> int:
    return int(name.removeprefix("k="))


def kept_scales(out: Path) -> tuple[list[dict], dict]:
    """The rows and scores already in ``out`` (none if there is none); a scale run or added again replaces its own."""
    if not out.is_file():
        return [], {}
    before = json.loads(out.read_text())
    return before["rows"], before["scores"]


def plot(scores: dict, path: Path, device: str) -> None:
    series, in_place, intervals = {}, {}, {}
    first = next(iter(scores))
    for name, by_model in [(f"starting point ({first})", scores[first]["base"])] + [
            (f"after LongPT, {k}", s["trained"]) for k, s in scores.items()]:
        cells = {int(n): c for n, c in by_model["niah"]["single"].items()}
        series[name] = {n: c["accuracy"] for n, c in cells.items()}
        in_place[name] = {n: c.get("in_place") for n, c in cells.items()}
        intervals[name] = {n: c["ci95"] for n, c in cells.items()}
    plot_accuracy_vs_length(series, path, title=f"niah, LongPT with k times the documents and tokens ({device})",
                            training_length=4096, in_place=in_place, intervals=intervals)


if __name__ == "__main__":
    main()
