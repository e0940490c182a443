"""Where a needle is lost past the training window, and what page-local attention at inference recovers.

    mmprolong quickstart --out runs/quickstart
    python benchmarks/page_window.py --run runs/quickstart [--models base,trained,NAME=DIR ...]
        [--windows 0,512,1024] [--logn 0,1024] [--suite niah|synth-heldout] [--lengths 1024,2048,4096,8192]
        [--seed 0] [--items 5] [--work RUN/page-window] [--out benchmarks/results/page-window.json]

Each model answers the quickstart's needles (its niah evaluation's config: the same store, haystacks and needles;
with a --seed other than the run's, needles no default run asks, to choose settings on), or with --suite
synth-heldout its questions about the held-out documents, once per setting: every
page window W of --windows (``EvalConfig.attn_page_window``: in the language model a page token attends only to the
prompt's preamble and the last W tokens; 0: off) with every log-length window of --logn. ``base`` and ``trained`` are
the run's starting point and LongPT model; NAME=DIR adds any other checkpoint (e.g. a LongPT seed of
benchmarks/longpt.py). All share one cache of page features (their towers are the same: LongPT keeps them frozen).

Writes --out (one row per model, setting, task and length: exact %, its interval, n, code characters in place
(niah), exact % at each depth) and beside it a plot of accuracy against length per model, setting and task. About
25 s per model and setting on a 2-core CPU for 25 needles a length at 1K-8K.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import report

from mmprolong import api
from mmprolong.eval import EvalConfig
from mmprolong.eval.backends.hf import VISION_CACHE_BYTES
from mmprolong.eval.config import format_length
from mmprolong.models.features import FeatureCache
from mmprolong.startpoint import scores_of


def depth_accuracy(folder: Path) -> dict[str, dict[int, dict[float, float]]]:
    """Mean score per task, length and depth of an evaluation's results (items that could not be scored left out)."""
    cells: dict[str, dict[int, dict[float, list[float]]]] = {}
    with open(folder / "results.jsonl") as f:
        for line in f:
            result = json.loads(line)
            if result["score"] is not None:
                cells.setdefault(result["task"], {}).setdefault(int(result["length"]), {}).setdefault(
                    float(result["depth"]), []).append(result["score"])
    return {task: {length: {depth: sum(s) / len(s) for depth, s in sorted(depths.items())}
                   for length, depths in by_length.items()} for task, by_length in cells.items()}


def models_of(run: Path, names: list[str]) -> dict[str, str]:
    """Name -> checkpoint folder: ``base`` the one the run's starting point was evaluated from (as recorded there),
    ``trained`` RUN/train-long/final."""
    out = {}
    for name in names:
        label, sep, path = name.partition("=")
        if sep:
            out[label] = path
        elif name == "base":
            out[name] = json.loads((run / "eval-base-niah" / "config.json").read_text())["backend"]["model"]
        elif name == "trained":
            out[name] = str(run / "train-long" / "final")
        else:
            raise SystemExit(f"--models {name!r}: give base, trained or NAME=DIR")
    return out


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.6), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        tasks = list(dict.fromkeys(r["task"] for r in mine))
        for setting in dict.fromkeys(r["setting"] for r in mine):
            for task in tasks:
                line = [r for r in mine if r["setting"] == setting and r["task"] == task]
                ax.plot([r["tokens"] for r in line], [r["exact (%)"] for r in line], marker="o",
                        label=setting if len(tasks) == 1 else f"{task}, {setting}")
        ax.set_xscale("log", base=2)
        ax.set_xticks([r["tokens"] for r in line], [r["length"] for r in line])
        ax.set_title(model)
        ax.set_xlabel("prompt tokens")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("answered right (%)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished quickstart folder")
    parser.add_argument("--models", default="base,trained", help="base, trained and NAME=DIR, comma-separated")
    parser.add_argument("--windows", default="0,512,1024", help="attn_page_window values (0: off)")
    parser.add_argument("--logn", default="0,1024", help="attn_logn_window values (0: off)")
    parser.add_argument("--suite", choices=("niah", "synth-heldout"), default="niah")
    parser.add_argument("--lengths", default=None, help="niah default 1024,2048,4096,8192; synth-heldout: the run's")
    parser.add_argument("--seed", type=int, default=None, help="the needles' seed (default: the run's)")
    parser.add_argument("--items", type=int, default=None, help="needles per (length, depth) (default: the run's)")
    parser.add_argument("--work", type=Path, default=None, help="evaluation folders (default RUN/page-window)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/page-window.json"))
    args = parser.parse_args()
    work = args.work or args.run / "page-window"
    saved = json.loads((args.run / f"eval-trained-{args.suite}" / "config.json").read_text())["config"]
    lengths = args.lengths or ("1024,2048,4096,8192" if args.suite == "niah" else None)
    fields = {**saved, "store_dir": str(args.run / "store"),
              **({"lengths": [int(n) for n in lengths.split(",")]} if lengths else {})}
    if args.seed is not None:
        fields["seed"] = args.seed
    if args.items is not None:
        fields["items_per_cell"] = args.items
    features = FeatureCache(VISION_CACHE_BYTES)
    rows = []
    models = models_of(args.run, args.models.split(","))
    for model, path in models.items():
        for page in [int(w) for w in args.windows.split(",")]:
            for logn in [int(w) for w in args.logn.split(",")]:
                setting = f"page window {page or 'off'}, logn {logn or 'off'}"
                print(f"{model}: {setting}", flush=True)
                folder = work / f"{model}-{args.suite}-seed{fields['seed']}-page{page}-logn{logn}"
                config = EvalConfig.from_dict({**fields, "attn_page_window": page, "attn_logn_window": logn,
                                               "label": f"{model}, {setting}"})
                api.evaluate(path, folder, config, show_progress=False, vision_features=features)
                depths = depth_accuracy(folder)
                for task, cells in scores_of(folder).items():
                    for length, cell in sorted(cells.items(), key=lambda kv: int(kv[0])):
                        rows.append({"model": model, "setting": setting, "attn_page_window": page,
                                     "attn_logn_window": logn, "task": task, "length": format_length(int(length)),
                                     "tokens": int(length), "exact (%)": round(100 * cell["accuracy"], 1),
                                     "ci95": [round(100 * v, 1) for v in cell["ci95"]], "n": cell["n"],
                                     "in place (%)": round(100 * cell["in_place"], 1) if "in_place" in cell else "",
                                     "exact by depth (%)": {f"{d:g}": round(100 * a)
                                                            for d, a in depths[task][int(length)].items()}})
    report(rows, args.out, run=str(args.run), suite=args.suite, seed=fields["seed"],
           items_per_cell=fields["items_per_cell"],
           models={m: str(p) for m, p in models.items()},
           plot=str(args.out.with_suffix(".png")))
    plot(rows, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
