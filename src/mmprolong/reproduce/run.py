"""``mmprolong reproduce``: train every arm the chosen findings need, evaluate each on one grid, judge, report.

Layout of OUT (every step resumable; a rerun skips finished arms):
    corpus/, store/                 the shared data pool (the quickstart's large-print corpus at 72 dpi)
    eval-start-{niah,synth-heldout} the starting point on the grid, shown beside the arms for reference
    arms/ARM-seedK/                 arm.json (its settings: a rerun with others is refused), data/ (its mixture),
                                    train/ (LongPT from the starting point), eval-niah/, eval-synth-heldout/
    reproduce.json, report.md, report.html, finding-NAME.png, timings.json

Every arm starts from the same starting point, draws its mixture from the same store, trains the same number of
steps on rows of the same size (``train_tokens``) and is asked the same items (the eval seed is the run's
``seed``, whatever the arm's). Seed k of an arm seeds its mixture and its training order with ``seed + k``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mmprolong.config import Config, field, merge_overrides
from mmprolong.errors import ConfigError, ResumeError
from mmprolong.eval.config import HELDOUT_DEPTHS
from mmprolong.quickstart import LONG_WINDOW, START_THETA
from mmprolong.report import Section, write_report
from mmprolong.reproduce.findings import ARMS, FINDINGS, Finding, judge, scored_lengths

SUITES = ("niah", "synth-heldout")
START = "starting point"  # the reference row of every table


# Sizing of the default, from CPU seconds measured on this 2-core machine (shared with a training run at the time,
# so CPU time stands in for the wall time of a quiet machine): LongPT of the mini starting point runs at about 1K
# tokens/s on 4K rows (attention dominates at hidden 128: 2 steps of 4 x 4K rows took 31 CPU s); at 16K an
# evaluation item takes about 7 CPU s (5 needles: 37 s, 12 held-out questions: 91 s, item building and model load
# included), so one evaluation (5 needles and 12 held-out questions at each of 2K, 4K, 8K and 16K) is about 215 s;
# a mixture ~15 s (5 CPU s in 2 workers); the corpus and store ~90 s. One arm = 15 + 60 (65,536 tokens) + 215 =
# ~290 s, and the six findings need 11 distinct arms plus one evaluation of the starting point: 11 x 290 + 215 + 90
# = ~58 minutes with one seed. A second seed doubles the arms (~1 h 50 min), so the default is one seed and the
# report says so; --seeds 2 (or more) when there is time, or --train-tokens for a larger budget per arm.
# Checked end to end with `reproduce --findings mix` (2 arms, 2026-12-01, machine shared): the 2:8 arm took 238 s
# (LongPT 53 s, evaluation 185 s), the balanced arm 317 s while the machine was busier; a rerun takes 3 s.
@dataclass(kw_only=True)
class ReproduceConfig(Config):
    """What ``mmprolong reproduce`` runs: which findings, how many seeds, and the per-arm budget."""

    findings: list[str] = field(default_factory=lambda: list(FINDINGS),
                                help=f"findings to test: {', '.join(FINDINGS)}")
    seeds: int = field(1, help="training seeds per arm (each arm's mixture and data order); scores pool them")
    train_tokens: int = field(65_536, help="LongPT budget of every arm and seed, tokens (steps of 4 rows of 4K)")
    lengths: list[int] = field(default_factory=lambda: [LONG_WINDOW // 2, LONG_WINDOW, 2 * LONG_WINDOW,
                                                        4 * LONG_WINDOW],
                               help="evaluation lengths, tokens: 1/2, 1, 2 and 4 times the 4K LongPT window")
    niah_items: int = field(1, help="needles per length and depth (5 depths)")
    heldout_items: int = field(4, help="held-out synth questions per task and length (rounded up to a multiple of "
                                       "the 4 depths they are spread over)")
    docs: int = field(24, help="documents in the generated corpus (the shared data pool)")
    seed: int = field(0, help="seed of the corpus and the evaluation items; arm seeds are seed, seed+1, ...")
    start: str | None = field(None, help="starting point folder; default: the shipped one (mmprolong.startpoint)")

    def validate(self) -> None:
        unknown = [f for f in self.findings if f not in FINDINGS]
        if unknown or not self.findings:
            raise ConfigError("findings", self.findings, f"choose from {', '.join(FINDINGS)}")
        for name in ("seeds", "train_tokens", "niah_items", "heldout_items", "docs"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.train_tokens % (4 * LONG_WINDOW):
            raise ConfigError("train_tokens", self.train_tokens, f"give a multiple of {4 * LONG_WINDOW} (one step)")
        for name in self.findings:
            if not scored_lengths(FINDINGS[name], self.lengths, LONG_WINDOW):
                raise ConfigError("lengths", self.lengths, f"finding {name!r} is scored at "
                                                           f"{FINDINGS[name].scored} lengths: add one")

    def arms(self) -> list[str]:
        """The distinct arms the chosen findings train, in ARMS order."""
        wanted = {arm for name in self.findings for arm in FINDINGS[name].arms.values()}
        return [arm for arm in ARMS if arm in wanted]


def reproduce(out_dir: str | Path, config: ReproduceConfig | None = None, *, show_progress: bool = True) -> dict:
    """Run ``config``'s findings into ``out_dir``; returns the summary also written to reproduce.json."""
    from mmprolong.decontam import DecontamConfig
    from mmprolong.quickstart import cpu_plan, decontaminate_heldout, make_store
    from mmprolong.startpoint import Clock

    config = config or ReproduceConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = cpu_plan(docs=config.docs, seed=config.seed, train_tokens=config.train_tokens,
                    niah_lengths=config.lengths, niah_items=config.niah_items, heldout_items=config.heldout_items,
                    start=config.start)
    plan = replace(plan, heldout_lengths=list(config.lengths))
    clock = Clock(out / "timings.json")
    pdfs, _ = make_store(out, plan, show_progress, clock.lap)
    # as the quickstart: every arm's mixture leaves out training documents that match a held-out one
    decontam = decontaminate_heldout(out / "store", pdfs, out / "decontam", plan.long_synth["heldout_fraction"],
                                     DecontamConfig(**plan.decontam), show_progress=show_progress)
    plan = replace(plan, long_synth={**plan.long_synth, "exclude": decontam["exclusion_list"]})
    clock.lap("decontaminate")
    start_scores = {suite: _eval(out / f"eval-start-{suite}", plan.base_model, out, suite, plan, START)
                    for suite in SUITES}
    clock.lap("eval starting point")
    arms = config.arms()
    runs = {}
    # seed-major: an interrupted run with more seeds has whole findings at the first seeds
    for index, (arm, k) in enumerate((a, k) for k in range(config.seeds) for a in arms):
        if show_progress:
            print(f"reproduce: arm {index + 1}/{len(arms) * config.seeds}: {arm}, seed {config.seed + k}", flush=True)
        runs[arm, k] = run_arm(out / "arms" / f"{arm}-seed{config.seed + k}", arm, config.seed + k, plan, out)
        clock.lap(f"{arm} seed {config.seed + k}")
    findings = [finding_result(FINDINGS[name], runs, start_scores, config) for name in config.findings]
    summary = {"findings": findings, "config": config.to_dict(), "window": LONG_WINDOW,
               "machine": _machine(), "date": time.strftime("%Y-%m-%d"),
               "arms": {f"{arm}-seed{config.seed + k}": run["train"] for (arm, k), run in runs.items()},
               "decontamination": decontam,
               "timings_s": clock.totals}
    write_reproduce_report(out, summary)
    clock.lap("report")
    summary["timings_s"] = clock.totals
    (out / "reproduce.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def arm_settings(arm: str, seed: int, plan) -> dict:
    """Everything that makes an arm's run: its mixture (SynthConfig fields), its training (TrainConfig fields)
    and the evaluation grid. Equal token budgets: the mixture holds the training budget, and training runs
    exactly ``train_tokens`` (repeating samples if a mixture fell short)."""
    spec = ARMS[arm]
    synth = {k: v for k, v in plan.long_synth.items() if k != "store_passes"}
    synth = {**synth, "budget_tokens": plan.long_train["schedule"]["budget_tokens"], "seed": seed, **spec.synth}
    train = merge_overrides(plan.long_train, {"seed": seed, "data.seed": seed,
                                              "model.rope_theta": START_THETA * spec.rope_factor})
    grid = {"lengths": plan.niah_lengths, "niah_items": plan.niah_items, "heldout_items": plan.heldout_items,
            "seed": plan.long_synth["seed"]}
    return {"arm": arm, "seed": seed, "start": str(plan.base_model), "synth": synth, "train": train, "eval": grid}


def run_arm(arm_dir: Path, arm: str, seed: int, plan, out: Path) -> dict:
    """Mixture, LongPT and both evaluations of one arm and seed, each skipped when already done; returns the
    training summary and the per-item scores by suite."""
    from mmprolong import api
    from mmprolong.quickstart import train_stage
    from mmprolong.synth.config import SynthConfig
    from mmprolong.train.launch import distributed_env

    settings = arm_settings(arm, seed, plan)
    _claim(arm_dir, settings)
    if not (arm_dir / "data" / "summary.json").is_file():
        api.synth(out / "store", arm_dir / "data", SynthConfig(**settings["synth"]), show_progress=False)
    trained = train_stage(arm_dir / "train", arm_dir / "data", settings["train"], distributed_env(),
                          init=plan.base_model)
    final = arm_dir / "train" / "final"
    scores = {suite: _eval(arm_dir / f"eval-{suite}", final, out, suite, plan, f"{arm} seed {seed}")
              for suite in SUITES}
    return {"train": {k: trained.get(k) for k in ("steps", "tokens", "seconds", "final_loss", "first_loss")},
            "scores": scores}


def _claim(arm_dir: Path, settings: dict) -> None:
    """Write arm.json, or refuse a folder that holds the same arm made with other settings."""
    path = arm_dir / "arm.json"
    text = json.dumps(settings, indent=1, sort_keys=True, default=str) + "\n"
    if path.is_file() and path.read_text() != text:
        raise ResumeError(f"{arm_dir} was made with other settings (see its arm.json); use another --out or "
                          "remove that folder")
    arm_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _eval(run_dir: Path, model: Path, out: Path, suite: str, plan, label: str) -> dict[int, list[float]]:
    """Per-item scores by length of one suite (the answered items; an item that could not be built has none);
    a finished evaluation (run.json) is read, not rerun."""
    from mmprolong.eval.items import read_results
    from mmprolong.quickstart import evaluate_suite

    if not (run_dir / "run.json").is_file():
        evaluate_suite(run_dir, model, out / "store", suite, plan, label)
    scores: dict[int, list[float]] = {n: [] for n in plan.niah_lengths}
    for result in read_results(run_dir):
        if result.status == "ok":
            scores.setdefault(result.length, []).append(result.score)
    return scores


def pooled_cells(runs: Sequence[dict]) -> dict[str, dict[int, list[float]]]:
    """Per-item scores by length, pooled over the given runs (seeds): both suites together ("all") and each."""
    cells: dict[str, dict[int, list[float]]] = {"all": {}}
    for run in runs:
        for suite, by_length in run["scores"].items():
            for length, scores in by_length.items():
                cells.setdefault(suite, {}).setdefault(length, []).extend(scores)
                cells["all"].setdefault(length, []).extend(scores)
    return cells


def cell(scores: Sequence[float]) -> dict:
    from mmprolong.stats import interval95

    return {"accuracy": sum(scores) / len(scores) if scores else None, "n": len(scores),
            "ci95": list(interval95(scores))}


def finding_result(finding: Finding, runs: dict, start_scores: dict, config: ReproduceConfig) -> dict:
    """One finding's tables (every arm label and the starting point, by length, pooled over seeds), its
    comparisons and its verdict."""
    seeds = list(range(config.seed, config.seed + config.seeds))
    pooled = {label: pooled_cells([runs[arm, k] for k in range(config.seeds)])
              for label, arm in finding.arms.items()}
    pooled[START] = pooled_cells([{"scores": start_scores}])
    lengths = scored_lengths(finding, config.lengths, LONG_WINDOW)
    verdict, comparisons = judge(finding, {label: [s for n in lengths for s in pooled[label]["all"].get(n, [])]
                                           for label in finding.arms})
    tables = {view: {label: {str(n): cell(cells.get(view, {}).get(n, [])) for n in config.lengths}
                     for label, cells in pooled.items()} for view in ("all",) + SUITES}
    return {"name": finding.name, "claim": finding.claim, "verdict": verdict, "comparisons": comparisons,
            "scored_lengths": lengths, "arms": tables["all"], "suites": {s: tables[s] for s in SUITES},
            "arm_ids": finding.arms, "seeds": seeds}


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, torch CPU"


# --- the report ------------------------------------------------------------------------------------------


def write_reproduce_report(out: Path, summary: dict) -> None:
    sections = [_overview(summary)] + [_finding_section(out, f, summary) for f in summary["findings"]]
    sections += [_arms_section(summary), _time_section(summary)]
    write_report(out, "mmprolong reproduce: the paper's findings in miniature", sections)


def _fmt_cell(c: dict) -> str:
    if c["accuracy"] is None:
        return "—"
    return f"{100 * c['accuracy']:.1f} [{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f}] (n={c['n']})"


def _fmt_comparison(c: dict) -> str:
    if c["difference"] is None:
        return f"{c['better']} - {c['worse']}: no scores"
    low, high = c["ci95"]
    return (f"{c['better']} - {c['worse']}: {100 * c['difference']:+.1f} points [{100 * low:+.1f}, "
            f"{100 * high:+.1f}] (n={c['n'][0]} vs {c['n'][1]}): {c['verdict']}")


def _lengths_text(lengths: Sequence[int]) -> str:
    return ", ".join(f"{n // 1024}K" for n in lengths)


def _overview(summary: dict) -> Section:
    config = summary["config"]
    s = Section("Overview")
    s.paragraphs.append(
        f"Each finding of the paper tested in miniature on {summary['machine']} ({summary['date']}): every arm is "
        f"LongPT from the same starting point (a mini Qwen2.5-VL that reads at 1K) to the {summary['window']:,}-"
        f"token window, on a mixture drawn from the same {config['docs']}-document large-print pool, with the same "
        f"budget of {config['train_tokens']:,} tokens; {config['seeds']} seed(s) per arm "
        f"({', '.join(str(k) for k in summary['findings'][0]['seeds'])}). Every arm answers the same items: "
        f"needles ({config['niah_items']} per length and depth, 5 depths) and questions about held-out documents "
        f"({HELDOUT_DEPTHS * -(-config['heldout_items'] // HELDOUT_DEPTHS)} per task and length over "
        f"{HELDOUT_DEPTHS} depths, 3 tasks) at {_lengths_text(config['lengths'])}.")
    s.paragraphs.append(
        "Verdict rule: each comparison 'A beats B' pools A's and B's per-item scores over the finding's scored "
        "lengths, both suites and all seeds, and takes the 95% interval of mean(A) - mean(B) (Newcombe's interval "
        "for right/wrong scores, Welch's otherwise). Above 0: agrees; below 0: disagrees; else inconclusive. A "
        "finding agrees when all its comparisons agree and disagrees when any disagrees. Items repeat across seeds "
        "and arms, so the intervals are approximate. A finding that does not reproduce in miniature is a result: "
        "a 2.5M-parameter model at a 4K window is not a 7B model at 128K.")
    rows = [[f["name"], f["verdict"], "; ".join(_fmt_comparison(c) for c in f["comparisons"]),
             _lengths_text(f["scored_lengths"])] for f in summary["findings"]]
    s.tables.append((["finding", "verdict", "comparisons (difference, 95% interval)", "scored at"], rows))
    return s


def _finding_section(out: Path, finding: dict, summary: dict) -> Section:
    from mmprolong.eval.report import plot_accuracy_vs_length

    lengths = [str(n) for n in summary["config"]["lengths"]]
    s = Section(f"Finding: {finding['name']} ({finding['verdict']})", paragraphs=[f"Claim: {finding['claim']}"])
    s.paragraphs.append("Verdict: " + finding["verdict"] + ". " + "; ".join(_fmt_comparison(c)
                                                                           for c in finding["comparisons"]) + ".")
    arms = ", ".join(f"{label} = {arm} ({ARMS[arm].note})" for label, arm in finding["arm_ids"].items())
    s.paragraphs.append(f"Arms: {arms}. Scores in %, with 95% interval and item count, pooled over "
                        f"{len(finding['seeds'])} seed(s); scored at {_lengths_text(finding['scored_lengths'])}.")
    for view, table in (("niah + synth-heldout", finding["arms"]),
                        *((suite, finding["suites"][suite]) for suite in SUITES)):
        rows = [[label] + [_fmt_cell(cells[n]) for n in lengths] for label, cells in table.items()]
        s.tables.append(([f"arm ({view})"] + [f"{int(n) // 1024}K" for n in lengths], rows))
    series = {label: {int(n): c["accuracy"] for n, c in cells.items()} for label, cells in finding["arms"].items()}
    name = f"finding-{finding['name']}.png"
    plot_accuracy_vs_length(series, out / name, title=f"{finding['name']}: niah + synth-heldout",
                            training_length=summary["window"])
    s.images.append((name, f"{finding['name']}: score against length, every arm and the starting point "
                           "(dashed: the LongPT window)"))
    return s


def _arms_section(summary: dict) -> Section:
    keys = ("steps", "tokens", "seconds", "first_loss", "final_loss")
    rows = [[name] + ["" if t.get(k) is None else f"{t[k]:.4g}" if isinstance(t[k], float) else str(t[k])
                      for k in keys] for name, t in summary["arms"].items()]
    return Section("Arms", paragraphs=["LongPT of every arm and seed (OUT/arms/ARM-seedK)."],
                   tables=[(["arm"] + list(keys), rows)])


def _time_section(summary: dict) -> Section:
    rows = [[name, f"{seconds:.0f}"] for name, seconds in summary["timings_s"].items()]
    return Section("Time", paragraphs=["Seconds on this machine, summed over every invocation in this folder."],
                   tables=[(["step", "seconds"], rows)])
