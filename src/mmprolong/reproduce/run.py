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

The CPU default is the quickstart's miniature (the shipped starting point, LongPT 1K -> 4K). With ``recipe`` and
``model`` (and optionally ``pdfs``) every arm is that recipe with the arm's change, from that checkpoint, at the
recipe's window and budget (``train_tokens`` overrides it), evaluated at 1/2, 1, 2 and 4 times the window: the
paper's ablations at paper scale. Under torchrun, rank 0 makes the data and evaluates, every rank trains each arm
(the other ranks wait for rank 0 at each mixture).
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
from mmprolong.quickstart import LONG_WINDOW, Plan
from mmprolong.report import Section, write_report
from mmprolong.reproduce.findings import ARMS, FINDINGS, Finding, judge, scored_lengths
from mmprolong.synth.config import SynthConfig
from mmprolong.train.launch import distributed_env, lead, leader_barrier
from mmprolong.train.run import shared_process_group

SUITES = ("niah", "synth-heldout")
START = "starting point"  # the reference row of every table
CPU_TRAIN_TOKENS = 65_536  # per arm and seed on the CPU default: 16 steps of one 4K row (sizing below)


# Sizing of the default, measured end to end from a fresh clone on this project's 2-core CPU (2026-12-01, with
# lighter jobs beside it): an arm (its mixture, LongPT of 65,536 tokens on 4K rows, and its evaluation: 5 needles
# and 12 held-out questions at each of 2K, 4K, 8K and 16K) takes 115-225 s, 145 s on average; the starting
# point's evaluation 124 s; corpus, store and decontamination 6 s. The six findings need 11 distinct arms: with 2
# seeds, 22 arms, the run took 55.5 minutes (56.7 with the install), so the full set defaults to 2 seeds. One
# finding alone with 2 seeds would take up to 22 minutes (rope: 4 arms), so fewer findings default to 1 seed
# (rope alone, measured from the same clone: 14.8 minutes with a training job beside it). A rerun of a finished
# folder takes seconds.
@dataclass(kw_only=True)
class ReproduceConfig(Config):
    """What ``mmprolong reproduce`` runs: which findings, how many seeds, the per-arm budget, the evaluation grid,
    and from what: the shipped starting point on a generated corpus (the CPU default), or a recipe with its model
    (and optionally the user's PDFs) at paper scale."""

    findings: list[str] = field(default_factory=lambda: list(FINDINGS),
                                help=f"findings to test: {', '.join(FINDINGS)}")
    seeds: int | None = field(None, help="training seeds per arm (each arm's mixture and data order); scores pool "
                                         "them. Default: 2 for all six findings (38-60 minutes on a 2-core CPU), 1 "
                                         "for fewer (each finding alone within 15 minutes)")
    train_tokens: int | None = field(None, help="LongPT budget of every arm and seed, tokens; default: 65,536 on "
                                                "the CPU default (16 steps of one 4K row), the recipe's own budget "
                                                "with --recipe")
    lengths: list[int] | None = field(None, help="evaluation lengths, tokens; default: 1/2, 1, 2 and 4 times the "
                                                 "LongPT window (2K-16K on the CPU default)")
    niah_items: int = field(1, help="needles per length and depth (5 depths)")
    heldout_items: int = field(4, help="held-out synth questions per task and length (rounded up to a multiple of "
                                       "the 4 depths they are spread over)")
    docs: int = field(24, help="documents in the generated corpus (the shared data pool) when no --pdfs")
    seed: int = field(0, help="seed of the corpus and the evaluation items; arm seeds are seed, seed+1, ...")
    start: str | None = field(None, help="starting point folder on the CPU default; default: the shipped one")
    recipe: str | None = field(None, help="a train config YAML (e.g. recipes/mmprolong-7b.yaml): every arm is "
                                          "that recipe with the arm's change, from --model, on GPUs under torchrun")
    model: str | None = field(None, help="with --recipe: the starting checkpoint, a local folder (default: the "
                                         "recipe's model.path)")
    pdfs: str | None = field(None, help="with --recipe: a folder of your PDFs as the data pool (default: a "
                                        "generated corpus of --docs documents)")

    def validate(self) -> None:
        unknown = [f for f in self.findings if f not in FINDINGS]
        if unknown or not self.findings:
            raise ConfigError("findings", self.findings, f"choose from {', '.join(FINDINGS)}")
        for name in ("seeds", "train_tokens", "niah_items", "heldout_items", "docs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.recipe is None:
            for name in ("model", "pdfs"):
                if getattr(self, name) is not None:
                    raise ConfigError(name, getattr(self, name), "goes with --recipe (the CPU default starts from "
                                                                 "the shipped starting point on a generated corpus)")
            if self.train_tokens is not None and self.train_tokens % (4 * LONG_WINDOW):
                raise ConfigError("train_tokens", self.train_tokens,
                                  f"give a multiple of {4 * LONG_WINDOW} (one step)")
        elif self.start is not None:
            raise ConfigError("start", self.start, "goes with the CPU default: a recipe starts from --model")

    def arms(self) -> list[str]:
        """The distinct arms the chosen findings train, in ARMS order."""
        wanted = {arm for name in self.findings for arm in FINDINGS[name].arms.values()}
        return [arm for arm in ARMS if arm in wanted]


def make_plan(config: ReproduceConfig) -> tuple[Plan, ReproduceConfig]:
    """The run's plan (the CPU default or the recipe's) and the config with its defaults resolved (budget and
    lengths), checked before any work: every finding has a scored length."""
    from mmprolong.quickstart import cpu_plan, recipe_plan, window_grid
    from mmprolong.train.config import TrainConfig

    if config.recipe is None:
        train_tokens = config.train_tokens or CPU_TRAIN_TOKENS
        lengths = config.lengths or window_grid(LONG_WINDOW)
        plan = cpu_plan(docs=config.docs, seed=config.seed, train_tokens=train_tokens, niah_lengths=lengths,
                        niah_items=config.niah_items, heldout_items=config.heldout_items, start=config.start)
    else:
        plan = recipe_plan(config.recipe, model=config.model, pdfs=config.pdfs, docs=config.docs, seed=config.seed,
                           niah_lengths=config.lengths,  # default: 1/2, 1, 2 and 4 times the recipe's window
                           niah_items=config.niah_items, heldout_items=config.heldout_items)
        train_tokens = config.train_tokens or TrainConfig.from_dict(plan.long_train,
                                                                    validate=False).schedule.budget_tokens
        plan = replace(plan, long_train=merge_overrides(plan.long_train, {"schedule.budget_tokens": train_tokens}))
    # both suites on one grid: the held-out questions at every needle length
    plan = replace(plan, heldout_lengths=list(plan.niah_lengths))
    seeds = config.seeds or (2 if set(config.findings) == set(FINDINGS) else 1)
    config = replace(config, train_tokens=train_tokens, lengths=list(plan.niah_lengths), seeds=seeds)
    for name in config.findings:
        if not scored_lengths(FINDINGS[name], config.lengths, plan.window):
            raise ConfigError("lengths", config.lengths, f"finding {name!r} is scored at {FINDINGS[name].scored} "
                                                         f"lengths of the {plan.window:,}-token window: add one")
    return plan, config


def reproduce(out_dir: str | Path, config: ReproduceConfig | None = None, *, show_progress: bool = True) -> dict:
    """Run ``config``'s findings into ``out_dir``; returns the summary also written to reproduce.json (on rank 0;
    under torchrun the other ranks train every arm with it and return ``{"rank": r}``)."""
    from mmprolong.decontam import DecontamConfig
    from mmprolong.quickstart import decontaminate_heldout, make_store
    from mmprolong.startpoint import Clock

    config = config or ReproduceConfig()
    plan, config = make_plan(config)
    env = distributed_env()
    leader = env["rank"] == 0
    show_progress = show_progress and leader
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(out / "timings.json") if leader else None
    barrier = leader_barrier(env)  # kept alive to the end: rank 0 hosts it

    def shared_data() -> tuple:
        pdfs, _ = make_store(out, plan, show_progress, clock.lap)
        # as the quickstart: every arm's mixture leaves out training documents that match a held-out one
        decontam = decontaminate_heldout(out / "store", pdfs, out / "decontam",
                                         SynthConfig(**plan.long_synth).heldout_fraction,
                                         DecontamConfig(**plan.decontam), show_progress=show_progress)
        clock.lap("decontaminate")
        start_scores = {suite: _eval(out / f"eval-start-{suite}", plan.base_model, out, suite, plan, START)
                        for suite in SUITES}
        clock.lap("eval starting point")
        return decontam, start_scores

    decontam, start_scores = lead(barrier, env, "data", shared_data) or (None, None)
    if decontam is not None:
        plan = replace(plan, long_synth={**plan.long_synth, "exclude": decontam["exclusion_list"]})
    start_theta = model_rope_theta(plan.base_model)
    arms = config.arms()
    runs = {}
    with shared_process_group(plan.long_train, env):
        # seed-major: an interrupted run with more seeds has whole findings at the first seeds
        for index, (arm, k) in enumerate((a, k) for k in range(config.seeds) for a in arms):
            if show_progress:
                print(f"reproduce: arm {index + 1}/{len(arms) * config.seeds}: {arm}, seed {config.seed + k}",
                      flush=True)
            runs[arm, k] = run_arm(out / "arms" / f"{arm}-seed{config.seed + k}",
                                   arm_settings(arm, config.seed + k, plan, start_theta), plan, out, env, barrier)
            if leader:
                clock.lap(f"{arm} seed {config.seed + k}")
    if not leader:
        return {"rank": env["rank"]}
    findings = [finding_result(FINDINGS[name], runs, start_scores, config, plan.window) for name in config.findings]
    summary = {"findings": findings, "config": config.to_dict(), "window": plan.window,
               "setup": {"description": plan.description, "miniature": config.recipe is None,
                         "start_rope_theta": start_theta,
                         "pool": f"the {config.docs}-document generated {plan.corpus.get('layout', 'standard')} "
                                 f"corpus" if plan.corpus else f"the PDFs in {plan.pdfs}"},
               "machine": _machine(), "date": time.strftime("%Y-%m-%d"),
               "arms": {f"{arm}-seed{config.seed + k}": run["train"] for (arm, k), run in runs.items()},
               "decontamination": decontam,
               "timings_s": clock.totals}
    write_reproduce_report(out, summary)
    clock.lap("report")
    summary["timings_s"] = clock.totals
    (out / "reproduce.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def model_rope_theta(model: Path) -> float:
    """The RoPE base of the checkpoint at ``model``: the arms' bases are multiples of it."""
    from mmprolong.models.config import ModelConfig
    from mmprolong.models.loading import checkpoint_config

    return float(checkpoint_config(ModelConfig(path=str(model))).text_config.rope_parameters["rope_theta"])


def arm_settings(arm: str, seed: int, plan: Plan, start_theta: float) -> dict:
    """Everything that makes an arm's run: its mixture (SynthConfig fields), its training (TrainConfig fields)
    and the evaluation grid. Equal token budgets: the mixture holds the training budget, and training runs
    exactly ``train_tokens`` (repeating samples if a mixture fell short). The RoPE base is the starting point's
    (``start_theta``) times the arm's factor."""
    spec = ARMS[arm]
    synth = {k: v for k, v in plan.long_synth.items() if k != "store_passes"}
    synth = {**synth, "budget_tokens": plan.long_train["schedule"]["budget_tokens"], "seed": seed}
    synth.update(spec.synth_fields(SynthConfig(**synth).boundaries(), plan.window))
    train = merge_overrides(plan.long_train, {"seed": seed, "data.seed": seed,
                                              "model.rope_theta": start_theta * spec.rope_factor})
    grid = {"lengths": plan.niah_lengths, "niah_items": plan.niah_items, "heldout_items": plan.heldout_items,
            "seed": plan.long_synth["seed"]}
    return {"arm": arm, "seed": seed, "start": str(plan.base_model), "synth": synth, "train": train, "eval": grid}


def run_arm(arm_dir: Path, settings: dict, plan: Plan, out: Path, env: dict, barrier) -> dict | None:
    """Mixture (rank 0), LongPT (every rank) and both evaluations (rank 0) of one arm and seed, each skipped when
    already done; returns the training summary and the per-item scores by suite (None on the other ranks)."""
    from mmprolong import api
    from mmprolong.quickstart import train_stage

    def mixture() -> None:
        _claim(arm_dir, settings)
        if not (arm_dir / "data" / "summary.json").is_file():
            api.synth(out / "store", arm_dir / "data", SynthConfig(**settings["synth"]), show_progress=False)

    lead(barrier, env, f"mixture {arm_dir.name}", mixture)
    trained = train_stage(arm_dir / "train", arm_dir / "data", settings["train"], env, init=plan.base_model)
    if env["rank"] != 0:
        return None
    final = arm_dir / "train" / "final"
    label = f"{settings['arm']} seed {settings['seed']}"
    scores = {suite: _eval(arm_dir / f"eval-{suite}", final, out, suite, plan, label) for suite in SUITES}
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


def finding_result(finding: Finding, runs: dict, start_scores: dict, config: ReproduceConfig,
                   window: int) -> dict:
    """One finding's tables (every arm label and the starting point, by length, pooled over seeds), its
    comparisons and its verdict."""
    seeds = list(range(config.seed, config.seed + config.seeds))
    pooled = {label: pooled_cells([runs[arm, k] for k in range(config.seeds)])
              for label, arm in finding.arms.items()}
    pooled[START] = pooled_cells([{"scores": start_scores}])
    lengths = scored_lengths(finding, config.lengths, window)
    verdict, comparisons = judge(finding, {label: [s for n in lengths for s in pooled[label]["all"].get(n, [])]
                                           for label in finding.arms})
    tables = {view: {label: {str(n): cell(cells.get(view, {}).get(n, [])) for n in config.lengths}
                     for label, cells in pooled.items()} for view in ("all",) + SUITES}
    return {"name": finding.name, "claim": finding.claim, "verdict": verdict, "comparisons": comparisons,
            "scored_lengths": lengths, "arms": tables["all"], "suites": {s: tables[s] for s in SUITES},
            "arm_ids": finding.arms, "seeds": seeds}


def _machine() -> str:
    import torch

    gpus = (f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
            else "no GPU")
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, {gpus}"


# --- the report ------------------------------------------------------------------------------------------


def write_reproduce_report(out: Path, summary: dict) -> None:
    sections = [_overview(summary)] + [_finding_section(out, f, summary) for f in summary["findings"]]
    sections += [_arms_section(summary), _time_section(summary)]
    title = "mmprolong reproduce: the paper's findings" + (" in miniature" if summary["setup"]["miniature"] else "")
    write_report(out, title, sections)


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
    setup = summary["setup"]
    s.paragraphs.append(
        f"Each finding of the paper tested {'in miniature ' if setup['miniature'] else ''}on {summary['machine']} "
        f"({summary['date']}). {setup['description']} The arms' RoPE bases are multiples of the starting point's "
        f"({setup['start_rope_theta']:g}): x4 unless the arm says otherwise. Every arm is LongPT from that starting "
        f"point to the "
        f"{summary['window']:,}-token window, on a mixture drawn from {setup['pool']}, with the same budget of "
        f"{config['train_tokens']:,} tokens; {config['seeds']} seed(s) per arm "
        f"({', '.join(str(k) for k in summary['findings'][0]['seeds'])}). Every arm answers the same items: "
        f"needles ({config['niah_items']} per length and depth, 5 depths) and questions about held-out documents "
        f"({HELDOUT_DEPTHS * -(-config['heldout_items'] // HELDOUT_DEPTHS)} per task and length over "
        f"{HELDOUT_DEPTHS} depths, 3 tasks) at {_lengths_text(config['lengths'])}.")
    s.paragraphs.append(
        "Verdict rule: each comparison 'A beats B' pools A's and B's per-item scores over the finding's scored "
        "lengths, both suites and all seeds, and takes the 95% interval of mean(A) - mean(B) (Newcombe's interval "
        "for right/wrong scores, Welch's otherwise). Above 0: agrees; below 0: disagrees; else inconclusive. A "
        "finding agrees when all its comparisons agree and disagrees when any disagrees. Items repeat across seeds "
        "and arms, so the intervals are approximate."
        + (" A finding that does not reproduce in miniature is a result: a 2.5M-parameter model at a 4K window is "
           "not a 7B model at 128K." if setup["miniature"] else ""))
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
