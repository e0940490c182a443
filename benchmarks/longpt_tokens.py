"""How far the quickstart's LongPT carries the needle as its budget grows: the whole quickstart at k times its
documents and LongPT tokens (k = 1, 2, 4, 8 by default), so that every run trains one pass over distinct samples
(``benchmarks/longpt.py`` varies the tokens over one run's samples: more passes over the same ones).

    python benchmarks/longpt_tokens.py [--scales 1 2 4 8] [--seed 0] [--work runs/longpt-tokens]
                                       [--out benchmarks/results/longpt-tokens.json]

Run k is ``mmprolong quickstart --out WORK/kx --docs 24k --train-tokens 800000k --questions 1 [--seed S]``
(WORK/kx-seedS for another seed; scale 1 the quickstart's default before 2026-12-05): the same corpus options,
starting point, rate schedule and evaluation grid as the quickstart; the corpus, its held-out documents and so
the needles' haystacks grow with k. A finished run (its quickstart.json exists) is read, not rerun; an unfinished
one resumes. About 7 + 3.7k minutes a run on a 2-core CPU (LongPT 3.4-4.5 minutes per 800K tokens, evaluation 6-7
minutes): 85 minutes for the default scales.

Writes --out (a row per run: documents, samples, tokens trained, steps, LongPT seconds, then each model's niah
exact and code characters in place per length, as trained and with the inference settings, and held-out synth accuracy
per task and length, in %; every score's interval and item count under "scores") and, beside it, a plot of the
needle's accuracy after LongPT against the LongPT tokens, a line per length, as trained and with the settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import report, score_columns

from mmprolong import api
from mmprolong.eval.config import format_length
from mmprolong.quickstart import INFERENCE, LONG_WINDOW

DOCS, TOKENS, QUESTIONS = 24, 800_000, 1  # scale 1: the quickstart's defaults until 2026-12-05 (its results)
PANELS = {"trained": "as trained", f"trained{INFERENCE}": "inference settings (log-length scaling, page window)"}


def run_dir(work: Path, scale: int, seed: int) -> Path:
    return work / (f"{scale}x" if seed == 0 else f"{scale}x-seed{seed}")


def run_scale(work: Path, scale: int, seed: int) -> Path:
    """The quickstart at ``scale`` times its documents and tokens (read when already finished)."""
    out = run_dir(work, scale, seed)
    if not (out / "quickstart.json").is_file():
        api.quickstart(out, docs=DOCS * scale, seed=seed, train_tokens=TOKENS * scale, questions=QUESTIONS)
    return out


def row(scale: int, run: Path, scores: dict) -> dict:
    """One run's row; ``scores``: its quickstart.json's, by model."""
    train = json.loads((run / "train-long" / "summary.json").read_text())
    out = {"scale": scale, "docs": DOCS * scale, "samples": train["samples_kept"], "tokens": train["tokens"],
           "steps": train["steps"], "LongPT s": round(train["seconds"]), "final_loss": round(train["final_loss"], 3)}
    for model, suites in scores.items():
        out.update(score_columns(suites, prefix=f"{model} "))
    return out


def plot(rows: list[dict], scores: dict[int, dict], path: Path) -> None:
    """Needle accuracy after LongPT against LongPT tokens, a line per length; a panel as trained, one scaled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokens = {r["scale"]: r["tokens"] for r in rows}
    fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 3.8), sharey=True)
    for ax, (model, title) in zip(axes, PANELS.items()):
        niah = {k: s.get(model, {}).get("niah", {}).get("single", {}) for k, s in sorted(scores.items())}
        for length in sorted({int(n) for cells in niah.values() for n in cells}):
            points = [(tokens[k], 100 * cells[str(length)]["accuracy"]) for k, cells in niah.items()
                      if str(length) in cells]
            style = "-" if length <= LONG_WINDOW else "--"  # dashed: beyond the LongPT window
            ax.plot([t / 1e6 for t, _ in points], [a for _, a in points], marker="o", linestyle=style,
                    label=format_length(length))
        ax.set_xscale("log", base=2)
        ax.set_xticks([t / 1e6 for t in tokens.values()], [f"{t / 1e6:.1f}M" for t in tokens.values()])
        ax.minorticks_off()
        ax.set_ylim(-2, 102)
        ax.set_xlabel("LongPT tokens (one pass over distinct samples)")
        ax.set_title(f"niah after LongPT, {title}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("exact answers (%)")
    handles, labels = axes[0].get_legend_handles_labels()  # the panel with every length (the scaled runs stop at 8K)
    axes[-1].legend(handles, labels, title="length", fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4, 8],
                        help="multiples of the quickstart's documents and LongPT tokens")
    parser.add_argument("--seed", type=int, default=0, help="the quickstart's --seed for every run")
    parser.add_argument("--work", type=Path, default=Path("runs/longpt-tokens"), help="the runs' folders")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/longpt-tokens.json"))
    args = parser.parse_args()
    if any(k < 1 for k in args.scales):
        parser.error(f"--scales {args.scales}: each is a whole multiple of at least 1")
    runs = {k: run_scale(args.work, k, args.seed) for k in sorted(set(args.scales))}
    scores = {k: json.loads((run / "quickstart.json").read_text())["scores"] for k, run in runs.items()}
    rows = [row(k, run, scores[k]) for k, run in runs.items()]
    columns = dict.fromkeys(c for r in rows for c in r)  # a run of older code may have scaled runs at 16K too
    rows = [{c: r.get(c, "") for c in columns} for r in rows]
    path = args.out.with_suffix(".png")
    plot(rows, scores, path)
    report(rows, args.out, seed=args.seed, runs={k: str(run) for k, run in runs.items()}, plot=str(path),
           scores=scores)


if __name__ == "__main__":
    main()
