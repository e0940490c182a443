"""LongPT variants on one quickstart's data: what the learning rate, the token budget and the RoPE base change in
what the starting point keeps at its window and gains beyond it.

    mmprolong quickstart --out runs/quickstart          # first: the data, the default LongPT, both evaluations
    python benchmarks/longpt.py --run runs/quickstart [--work runs/longpt] [--out benchmarks/results/longpt.json]
                                [--variant 'NAME={"optim.lr": 1e-3, "schedule.min_lr": 1e-4}' ...] [--data DIR]
                                [--eval-inference]

Each variant trains from the quickstart's starting point on its LongPT data (RUN/data-long, or --data: e.g. the
README's `mmprolong synth` of RUN's store with another --distribution) with its training
config (RUN/train-long/config.yaml) plus the variant's overrides, then answers the quickstart's own evaluations
(RUN/eval-trained-*/config.json: the same items, the same seed), so variants differ in training only (a
variant with more tokens makes more passes over the same samples; for more distinct samples, run the quickstart
with a larger --train-tokens and --docs and point --run at it). A variant whose overrides name `synth.` fields
(e.g. '{"synth.anchor_share": 0, "synth.seed": 2, "seed": 2}') trains instead on its own LongPT data: RUN's
synth config (RUN/data-long/manifest.json) with those fields changed, made from RUN's store into the variant's
folder. A variant can also add other synth outputs to that data (e.g. '{"data.mix_dirs": ["runs/notes-long"]}':
note questions of another corpus, each folder read with its own page store). The starting point and the
quickstart's own LongPT are the first two rows, from the quickstart's folders. Resumable: a variant's training
resumes from its checkpoint and its answers come from the eval cache.

Writes --out (one row per variant: steps, loss, niah accuracy and code characters in place per length, held-out
synth accuracy per task and length; all in %, with every score's interval and item count under "scores"; with
--eval-inference also each variant's niah with RUN's inference settings, as its own `-inference` evaluations:
since 2026-12-06 dynamic YaRN past the LongPT window and page-local attention, before log-length attention scaling
and page-local attention) and,
beside it, a plot of needle accuracy against length per variant (dotted: characters in place). About 4 minutes
of training per 800K tokens and 2 minutes of evaluation per variant on a 2-core CPU: 70 minutes for the default
sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from code_questions import code_questions, page_texts
from common import report, score_columns

from mmprolong import api
from mmprolong.config import merge_overrides
from mmprolong.eval import EvalConfig
from mmprolong.eval.backends.hf import VISION_CACHE_BYTES
from mmprolong.eval.config import format_length
from mmprolong.eval.report import plot_accuracy_vs_length
from mmprolong.models.features import FeatureCache
from mmprolong.quickstart import train_stage
from mmprolong.startpoint import scores_of
from mmprolong.synth.config import SynthConfig
from mmprolong.train.launch import distributed_env

SUITES = ("niah", "synth-heldout")
INFERENCE_SUITE = "niah-inference"  # niah with the quickstart's inference settings (--eval-inference)
FOLDERS = {"niah": "niah", "synth-heldout": "synth-heldout", INFERENCE_SUITE: "inference-niah"}  # RUN/eval-MODEL-*


def default_variants(train: dict) -> dict[str, dict]:
    """The sweep of issue 11, as overrides of the quickstart's training config."""
    budget, lr = train["schedule"]["budget_tokens"], train["optim"]["lr"]
    return {
        "lr 1e-3": {"optim.lr": 1e-3, "schedule.min_lr": 1e-4},
        "RoPE base kept at 1e4": {"model.rope_theta": 10000.0},
        "2x tokens": {"schedule.budget_tokens": 2 * budget},
        "4x tokens": {"schedule.budget_tokens": 4 * budget},
        f"2x tokens, lr {5 * lr / 3:.0e}": {"optim.lr": 5 * lr / 3, "schedule.budget_tokens": 2 * budget,
                                             "schedule.min_lr": lr / 6},
        "4x tokens, lr 1e-3": {"optim.lr": 1e-3, "schedule.min_lr": 1e-4, "schedule.budget_tokens": 4 * budget},
    }


def parse_variant(text: str) -> tuple[str, dict]:
    name, sep, overrides = text.partition("=")
    try:
        value = json.loads(overrides) if sep else None
    except json.JSONDecodeError as err:
        raise SystemExit(f"--variant {text!r}: the overrides after '=' are not JSON ({err})") from err
    if not name or not isinstance(value, dict):
        raise SystemExit(f"--variant {text!r}: write NAME='{{\"optim.lr\": 1e-3}}' (a JSON object of dotted fields)")
    return name, value


def synth_variant(run: Path, out: Path, overrides: dict) -> Path:
    """RUN's LongPT data made again with ``overrides`` of its synth config, into ``out`` (resumed when there)."""
    manifest = json.loads((run / "data-long" / "manifest.json").read_text())
    fields = {**manifest["config"], "truth_dir": manifest["truth_dir"]}
    if fields.get("exclude"):  # the quickstart's decontamination list, recorded relative to where it ran
        fields["exclude"] = str(run / "decontam" / "exclude-training.txt")
    api.synth(run / "store", out, SynthConfig.from_dict(merge_overrides(fields, overrides)), show_progress=False)
    return out


def run_variant(run: Path, work: Path, train: dict, overrides: dict, data: Path,
                inference: bool = False, features: FeatureCache | None = None) -> tuple[dict, dict]:
    """Train (or resume) one variant on ``data`` (or on its own data, for ``synth.`` overrides), answer the
    quickstart's evaluations (and its niah with the inference settings, with ``inference``); (training summary,
    scores by suite).
    ``features``: the vision features the variants share (their towers stay frozen)."""
    synth = {k.removeprefix("synth."): v for k, v in overrides.items() if k.startswith("synth.")}
    if synth:
        data = synth_variant(run, work / "data", synth)
    overrides = {k: v for k, v in overrides.items() if not k.startswith("synth.")}
    fields = merge_overrides(train, {**overrides, "logging.progress_bar": False})
    summary = train_stage(work / "train", data, fields, distributed_env())  # read when already done
    scores = {}
    for suite in SUITES + ((INFERENCE_SUITE,) if inference else ()):
        eval_config = json.loads((run / f"eval-trained-{FOLDERS[suite]}" / "config.json").read_text())
        eval_config = {**eval_config["config"], "store_dir": str(run / "store"), "label": work.name}
        api.evaluate(work / "train" / "final", work / suite, EvalConfig.from_dict(eval_config), show_progress=False,
                     vision_features=features)
        scores[suite] = scores_of(work / suite)
    return summary, scores


def row(name: str, changes: dict, summary: dict, scores: dict, codes: dict) -> dict:
    """One variant's row; ``codes``: ``code_questions`` of its held-out evaluation."""
    out = {"variant": name, "changes": json.dumps(changes, sort_keys=True) if changes else "",
           "steps": summary.get("steps", ""), "final_loss": round(summary["final_loss"], 3) if summary else ""}
    out.update(score_columns(scores))
    for length, cell in sorted(codes.items()):  # right code answers with one note in context / with several
        out[f"code questions {format_length(length)}: right, one note / several"] = (
            f"{cell['right, one note']} / {cell['right, several notes']}")
    for length, cell in sorted(scores.get(INFERENCE_SUITE, {}).get("single", {}).items(), key=lambda kv: int(kv[0])):
        out[f"inference niah {format_length(int(length))}"] = round(100 * cell["accuracy"], 1)
        out[f"inference in place {format_length(int(length))}"] = round(100 * cell["in_place"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a finished quickstart folder")
    parser.add_argument("--work", type=Path, default=Path("runs/longpt"), help="the variants' folders")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/longpt.json"))
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help="a variant: its name and its overrides of the training config, dotted fields as "
                             "`mmprolong train` names them, e.g. optim.lr, and of RUN's synth config as synth.FIELD "
                             "(repeatable; default: the sweep of issue 11)")
    parser.add_argument("--data", type=Path, default=None,
                        help="LongPT data of every variant (a `mmprolong synth` folder of RUN's store, e.g. another "
                             "length distribution); default: RUN/data-long, the quickstart's own")
    parser.add_argument("--eval-inference", action="store_true",
                        help="also answer niah with the quickstart's inference settings, as RUN's own -inference "
                             "evaluations (the starting point's and the quickstart LongPT's rows are those)")
    args = parser.parse_args()
    run = args.run
    data = args.data or run / "data-long"
    if not (data / "manifest.json").is_file():
        sys.exit(f"--data {data}: not a synth output folder (no manifest.json)")
    missing = [p for p in ["train-long/config.yaml", "train-long/summary.json", "data-long", "store"]
               + [f"eval-{m}-{s}/table.json" for m in ("base", "trained") for s in SUITES] if not (run / p).exists()]
    if missing:
        sys.exit(f"--run {run}: not a finished quickstart (missing {', '.join(missing)}); run "
                 f"`mmprolong quickstart --out {run}` first")
    train = yaml.safe_load((run / "train-long" / "config.yaml").read_text())
    variants = dict(map(parse_variant, args.variant)) if args.variant else default_variants(train)

    suites = {s: FOLDERS[s] for s in SUITES + ((INFERENCE_SUITE,) if args.eval_inference else ())}
    for model in ("base", "trained") if args.eval_inference else ():
        saved = run / f"eval-{model}-inference-niah" / "config.json"
        if not saved.is_file():
            sys.exit(f"--eval-inference: {run} has no {saved.parent.name} (a quickstart run of 2026-12-06 or later "
                     "with its inference settings on)")
    heldout = {"starting point": run / "eval-base-synth-heldout",  # each model's held-out answers
               "quickstart LongPT": run / "eval-trained-synth-heldout"}
    results = {"starting point": ({}, {}, {s: scores_of(run / f"eval-base-{f}") for s, f in suites.items()}),
               "quickstart LongPT": ({}, json.loads((run / "train-long" / "summary.json").read_text()),
                                     {s: scores_of(run / f"eval-trained-{f}") for s, f in suites.items()})}
    features = FeatureCache(VISION_CACHE_BYTES)
    for i, (name, overrides) in enumerate(variants.items()):
        print(f"[{i + 1}/{len(variants)}] {name}: {json.dumps(overrides)}", flush=True)
        summary, scores = run_variant(run, args.work / f"variant-{i}", train, overrides, data, args.eval_inference,
                                      features)
        results[name] = (overrides, summary, scores)
        heldout[name] = args.work / f"variant-{i}" / "synth-heldout"

    texts = page_texts(run / "store")
    rows = [row(name, changes, summary, scores, code_questions(heldout[name], texts))
            for name, (changes, summary, scores) in results.items()]
    window = train["data"]["max_seq_len"]
    plot = args.out.with_suffix(".png")
    plot_accuracy_vs_length({name: {int(n): c["accuracy"] for n, c in s["niah"].get("single", {}).items()}
                             for name, (_, _, s) in results.items()}, plot, training_length=window,
                            title="niah after LongPT variants (dotted: code characters in place)",
                            in_place={name: {int(n): c.get("in_place") for n, c in s["niah"].get("single", {}).items()}
                                      for name, (_, _, s) in results.items()})
    report(rows, args.out, run=str(run), data=str(data), window=window, plot=str(plot),
           scores={name: scores for name, (_, _, scores) in results.items()})


if __name__ == "__main__":
    main()
