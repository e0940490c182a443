"""The whole recipe on the embedded default, sized for a laptop CPU, with a report of what it achieved.

Steps (each resumable; rerunning the command skips what is done):
  1. corpus   generated PDFs with ground truth             RUN/corpus
  2. ingest   small pages (about 130 vision tokens each)   RUN/store
  3. synth    a short mixture (the starting point's) and the balanced 8:2 long mixture up to 4K tokens
  4. train    the tiny preset at 1K with RoPE base 1e4 (a short-context starting point), then LongPT at 4K
              with the base raised 4x (the paper's 1e6 -> 4e6, scaled down)
  5. eval     both models on niah at 1K..16K (4x the training window) and on held-out synth tasks
  6. report   RUN/report.md and RUN/report.html with every figure beside them; nothing typed by hand

With a recipe (``recipe=recipes/mmprolong-7b.yaml, model=PATH``) the same steps are the paper's run: the
documents are the user's PDFs (or a generated corpus of 20-200 pages each), pages are rendered at the model's
pixel budget, the mixture is synth's default fitted to the recipe's window, the given model is the starting
point and is trained by the recipe, and both are evaluated at 1/2, 1, 2 and 4 times the window.
Under torchrun, rank 0 makes the data while the other ranks wait, every rank trains, and rank 0 evaluates.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from mmprolong.errors import ConfigError
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.train.launch import distributed_env

log = logging.getLogger(__name__)

SHORT_WINDOW, LONG_WINDOW = 1024, 4096
BASE_THETA, LONG_THETA = 10_000.0, 40_000.0
NIAH_LENGTHS = [1024, 2048, 4096, 8192, 16384]
INGEST = {"max_pixels": DEFAULT_FAMILY.pixels_for_tokens(128), "max_dpi": 72.0, "workers": 2}  # the tiny preset's
HELDOUT_FRACTION = 0.3  # of the documents, kept out of both mixtures for the synth-heldout eval
SHORT_SYNTH = {"target_tokens": SHORT_WINDOW, "buckets": [256, 512, 768, SHORT_WINDOW + 1], "store_passes": 6.0,
               "heldout_fraction": HELDOUT_FRACTION}
LONG_SYNTH = {"target_tokens": LONG_WINDOW, "buckets": [1024, 2048, 3072, LONG_WINDOW + 1], "store_passes": 8.0,
              "heldout_fraction": HELDOUT_FRACTION}
EVAL_LABELS = {"base": "starting point", "trained": "after LongPT"}


@dataclass
class Plan:
    """What one run does: the CPU default (``cpu_plan``) or a training recipe (``recipe_plan``)."""

    corpus: dict | None  # make_corpus options; None: the user's PDFs in ``pdfs``
    pdfs: Path | None
    ingest: dict
    long_synth: dict
    short_synth: dict | None  # the starting point's mixture; None: the starting point is ``base_model``
    base_model: Path | None
    long_train: dict  # TrainConfig fields (run_dir and data_dir are set by the run)
    base_train: dict | None
    window: int
    niah_lengths: list[int]
    heldout_lengths: list[int]
    heldout_items: int
    description: str  # the training paragraph of the report


def cpu_plan(*, docs: int, seed: int, train_tokens: int, niah_lengths: list[int] | None,
             heldout_items: int) -> Plan:
    def tiny(window: int, theta: float, budget: int) -> dict:
        return {"seed": seed, "device": "cpu",
                "model": {"rope_theta": theta, "max_position_embeddings": window, "seed": seed,
                          "max_pixels": INGEST["max_pixels"]},  # the budget the store was rendered at
                "data": {"max_seq_len": window, "seed": seed},
                "optim": {"lr": 2e-3, "weight_decay": 0.1},
                "schedule": {"budget_tokens": budget, "global_batch_tokens": window * 4, "warmup_fraction": 0.1,
                             "min_lr": 2e-4},
                "checkpoint": {"interval_steps": 50, "keep_last": 1}}

    return Plan(
        corpus={"docs": docs, "seed": seed, "min_pages": 20, "max_pages": 60}, pdfs=None, ingest=INGEST,
        long_synth={**LONG_SYNTH, "seed": seed, "workers": 2},
        short_synth={**SHORT_SYNTH, "seed": seed, "workers": 2}, base_model=None,
        long_train=tiny(LONG_WINDOW, LONG_THETA, train_tokens), base_train=tiny(SHORT_WINDOW, BASE_THETA,
                                                                                 train_tokens // 2),
        window=LONG_WINDOW, niah_lengths=niah_lengths or NIAH_LENGTHS, heldout_lengths=[2048, LONG_WINDOW],
        heldout_items=heldout_items,
        description=f"Starting point: the tiny preset trained at {SHORT_WINDOW} tokens with RoPE base "
                    f"{BASE_THETA:g}. LongPT: continued at {LONG_WINDOW} tokens with the base raised to "
                    f"{LONG_THETA:g}, loss on answers only, packed sequences.")


def recipe_plan(recipe: str | Path, *, model: str | Path | None, pdfs: str | Path | None, docs: int, seed: int,
                niah_lengths: list[int] | None, heldout_items: int) -> Plan:
    """The paper's run (or any recipe): the given model is the starting point, trained as the recipe says."""
    import yaml

    from mmprolong.config import merge_overrides
    from mmprolong.models.loading import model_pixel_budget
    from mmprolong.train.config import TrainConfig, micro_batches_per_step

    recipe = Path(recipe)
    if not recipe.is_file():
        raise ConfigError("recipe", str(recipe), "file not found")
    fields = merge_overrides(yaml.safe_load(recipe.read_text()) or {}, {"model.path": os.fspath(model)} if model
                             else {})
    config = TrainConfig.from_dict(fields, validate=False)
    config.validate_settings()  # refuse a bad recipe now, not after the data is made
    micro_batches_per_step(config, distributed_env()["world_size"])
    if not config.model.path:
        raise ConfigError("model", None, "a recipe run trains a checkpoint: give --model PATH (a local folder)")
    if not Path(config.model.path).is_dir():
        raise ConfigError("model", config.model.path, "not a folder: give a local checkpoint folder")
    if pdfs is not None and not Path(pdfs).is_dir():
        raise ConfigError("pdfs", os.fspath(pdfs), "not a folder of PDFs")
    window, workers = config.data.max_seq_len, os.cpu_count() or 1
    family, min_pixels, max_pixels = model_pixel_budget(config.model)  # pages are counted as the model sees them
    return Plan(
        corpus=None if pdfs else {"docs": docs, "seed": seed, "min_pages": 20, "max_pages": 200},
        pdfs=Path(pdfs) if pdfs else None,
        ingest={"family": family.name, "min_pixels": min_pixels, "max_pixels": max_pixels, "workers": workers},
        long_synth={"target_tokens": window, "seed": seed, "workers": workers}, short_synth=None,
        base_model=Path(config.model.path), long_train=fields, base_train=None, window=window,
        niah_lengths=niah_lengths or [window // 2, window, 2 * window, 4 * window],
        heldout_lengths=[window // 2, window], heldout_items=heldout_items,
        description=f"Starting point: {config.model.path}. LongPT: {recipe.name} at {window:,} tokens with RoPE base "
                    f"{config.model.rope_theta:g}, loss on answers only, packed sequences.")


def quickstart(out_dir: str | Path, *, docs: int = 10, seed: int = 0, train_tokens: int = 1_200_000,
               niah_lengths: list[int] | None = None, heldout_items: int = 6, recipe: str | Path | None = None,
               model: str | Path | None = None, pdfs: str | Path | None = None, show_progress: bool = True) -> dict:
    """Run every step into ``out_dir``; returns the summary also written to quickstart.json.

    ``train_tokens``: LongPT's token budget (the starting point gets half); ``niah_lengths``: needle lengths
    (default 1K..16K); ``heldout_items``: held-out synth items per task and length. Smaller values give a
    faster, noisier run of the same steps. ``recipe`` (a train config YAML) with ``model`` (its starting
    checkpoint) and optionally ``pdfs`` (the user's documents) runs that recipe instead of the CPU default;
    ``train_tokens`` is then the recipe's own budget."""
    if recipe is not None:
        plan = recipe_plan(recipe, model=model, pdfs=pdfs, docs=docs, seed=seed, niah_lengths=niah_lengths,
                           heldout_items=heldout_items)
    elif model is not None or pdfs is not None:
        raise ConfigError("recipe", None, "--model and --pdfs go with --recipe (the default trains the tiny preset)")
    else:
        plan = cpu_plan(docs=docs, seed=seed, train_tokens=train_tokens, niah_lengths=niah_lengths,
                        heldout_items=heldout_items)
    return run_plan(Path(out_dir), plan, show_progress=show_progress)


def run_plan(out: Path, plan: Plan, *, show_progress: bool = True) -> dict:
    from mmprolong import api

    env = distributed_env()
    out.mkdir(parents=True, exist_ok=True)
    # seconds per step in this invocation, and summed over every invocation in this folder (kept on disk after
    # each step), so a quickstart that was interrupted and resumed still reports what its work cost
    timings: dict[str, float] = {}
    totals_path = out / "timings.json"
    totals: dict[str, float] = json.loads(totals_path.read_text()) if totals_path.is_file() else {}
    clock = time.perf_counter()
    leader = env["rank"] == 0

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        if leader:
            totals[name] = round(totals.get(name, 0.0) + timings[name], 1)
            totals_path.write_text(json.dumps(totals, indent=1) + "\n")
        clock = time.perf_counter()

    barrier = _data_barrier(env)  # kept alive to the end: rank 0 hosts it
    if leader:
        store, short, long = _make_data(out, plan, show_progress, lap, barrier)
    else:
        _wait_for_data(barrier)
        store = short = long = None
    runs = {}
    if plan.base_train is not None:
        runs["base"] = _train(out / "train-base", out / "data-short", plan.base_train, env)
    base_model = plan.base_model or out / "train-base" / "final"
    runs["trained"] = _train(out / "train-long", out / "data-long", plan.long_train, env,
                             init=None if plan.base_model else base_model)
    lap("train")
    if not leader:  # rank 0 evaluates and reports alone
        return {"rank": env["rank"], "final_loss": runs["trained"].get("final_loss")}
    evals = {}  # run summaries, kept in the facts for the record
    for name, model in (("base", base_model), ("trained", out / "train-long" / "final")):
        evals[name] = {suite: _evaluate(out / f"eval-{name}-{suite}", model, out / "store", suite, plan,
                                        EVAL_LABELS[name]) for suite in ("niah", "synth-heldout")}
    comparisons = {}
    for suite, name in (("niah", "compare-niah"), ("synth-heldout", "compare-heldout")):
        api.compare([out / f"eval-base-{suite}", out / f"eval-trained-{suite}"], out / name,
                    training_length=plan.window)
        comparisons[suite] = json.loads((out / name / "compare.json").read_text())
    lap("eval")
    facts = {"store": api.brief(store), "short": short, "long": long, "runs": runs, "evals": evals,
             "comparisons": comparisons, "timings": timings, "totals": totals, "plan": plan}
    write_report(out, facts)
    lap("report")
    summary = {"report": str(out / "report.md"), "timings_s": timings, "total_s": round(sum(timings.values()), 1),
               "total_all_invocations_s": round(sum(totals.values()), 1),
               "final_loss": runs["trained"].get("final_loss"), "samples": long["samples"]}
    (out / "quickstart.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def _make_data(out: Path, plan: Plan, show_progress: bool, lap, barrier) -> tuple:
    from mmprolong import api
    from mmprolong.ingest import IngestConfig
    from mmprolong.synth.config import SynthConfig

    try:
        pdfs = plan.pdfs
        if plan.corpus is not None:
            pdfs = out / "corpus"
            api.make_corpus(pdfs, **plan.corpus, show_progress=show_progress)
        lap("corpus")
        store = api.ingest(pdfs, out / "store", IngestConfig(**plan.ingest), show_progress=show_progress)
        lap("ingest")
        short = None
        if plan.short_synth is not None:
            short = api.synth(out / "store", out / "data-short", SynthConfig(**plan.short_synth),
                              show_progress=show_progress)
        long = api.synth(out / "store", out / "data-long", SynthConfig(**plan.long_synth),
                         show_progress=show_progress)
        lap("synth")
    except BaseException as exc:  # tell the waiting ranks, then fail as usual
        if barrier is not None:
            barrier.set("data", f"{type(exc).__name__}: {exc}")
        raise
    if barrier is not None:
        barrier.set("data", "")
    return store, short, long


def _data_barrier(env: dict):
    """Under torchrun: a key-value store hosted by rank 0 beside torchrun's own (MASTER_PORT + 1), on which the
    other ranks block until rank 0 has made the data, however long that takes; None for one process."""
    if env["world_size"] == 1:
        return None
    from datetime import timedelta

    from torch.distributed import TCPStore

    return TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500")) + 1,
                    env["world_size"], env["rank"] == 0, timeout=timedelta(days=7), wait_for_workers=False)


def _wait_for_data(barrier) -> None:
    failed = barrier.get("data").decode()  # blocks until rank 0 sets it
    if failed:
        raise RuntimeError(f"rank 0 could not make the data: {failed}")


def _train(run_dir: Path, data_dir: Path, fields: dict, env: dict, init: Path | None = None) -> dict:
    from mmprolong.config import merge_overrides
    from mmprolong.train.config import TrainConfig
    from mmprolong.train.run import train

    overrides = {"run_dir": str(run_dir), "data.data_dir": str(data_dir)}
    if init is not None:
        overrides["model.path"] = str(init)
    config = TrainConfig.from_dict(merge_overrides(fields, overrides))
    summary_path = run_dir / "summary.json"
    if summary_path.is_file() and (run_dir / "final").is_dir():
        return json.loads(summary_path.read_text())
    return train(config, **env)


def _evaluate(run_dir: Path, model: Path, store: Path, suite: str, plan: Plan, label: str) -> dict:
    from mmprolong import api
    from mmprolong.eval import EvalConfig
    from mmprolong.synth.config import SynthConfig

    seed = plan.long_synth["seed"]
    if suite == "niah":
        config = EvalConfig(suite="niah", lengths=plan.niah_lengths, depth_steps=5, needles=[1], items_per_cell=1,
                            store_dir=str(store), max_new_tokens=12, seed=seed, label=label)
    else:
        config = EvalConfig(suite="synth-heldout", lengths=plan.heldout_lengths, store_dir=str(store),
                            heldout_fraction=SynthConfig(**plan.long_synth).heldout_fraction,
                            items_per_cell=plan.heldout_items, max_new_tokens=24, seed=seed, label=label)
    return api.evaluate(model, run_dir, config, show_progress=False)


# --- the report: one structure, rendered as Markdown and as HTML ------------------------------------------


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (file beside the report, caption)


def write_report(out: Path, facts: dict) -> None:
    images = _collect_images(out)
    sections = [_data_section(facts, images), _train_section(facts, images), _eval_section(facts, images),
                _timing_section(facts)]
    title = "mmprolong quickstart report"
    (out / "report.md").write_text(render_markdown(title, sections))
    (out / "report.html").write_text(render_html(title, sections))


def _collect_images(out: Path) -> dict[str, str]:
    """Copy each figure next to the report under a stable name; returns name -> file name."""
    sources = {"mixture": out / "data-long" / "mixture.png", "loss_base": out / "train-base" / "loss.png",
               "loss_trained": out / "train-long" / "loss.png",
               "heatmap_base": out / "eval-base-niah" / "needle_heatmap.png",
               "heatmap_trained": out / "eval-trained-niah" / "needle_heatmap.png",
               "accuracy": out / "compare-niah" / "accuracy_vs_length.png",
               "accuracy_heldout": out / "compare-heldout" / "accuracy_vs_length.png"}
    found = {}
    for name, path in sources.items():
        if path.is_file():
            shutil.copyfile(path, out / f"{name}.png")
            found[name] = f"{name}.png"
    return found


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _data_section(facts: dict, images: dict) -> Section:
    store, long = facts["store"], facts["long"]
    s = Section("Data")
    s.paragraphs.append(
        f"Corpus: {store['documents']} {'generated ' if facts['plan'].corpus else ''}documents, "
        f"{store['pages']} pages, "
        f"{store['vision_tokens']:,} vision tokens; {store['skipped']} files skipped; "
        f"{long['heldout_documents']} documents held out of training for the held-out eval. "
        f"LongPT mixture: {long['samples']} samples, {long['tokens']:,} tokens; "
        f"{long['dropped_unverified']} candidates dropped because their answer did not follow from the evidence.")
    rows = [[b, _pct(long["planned"]["share_by_bucket"][b]), _pct(long["share_by_bucket"][b]),
             str(long["samples_by_bucket"][b])] for b in long["planned"]["share_by_bucket"]]
    s.tables.append((["length bucket", "planned tokens", "achieved tokens", "samples"], rows))
    rows = [[t, _pct(long["planned"]["share_by_task"][t]), _pct(long["share_by_task"][t])]
            for t in long["planned"]["share_by_task"]]
    s.tables.append((["task", "planned tokens", "achieved tokens"], rows))
    if "mixture" in images:
        s.images.append((images["mixture"], "Length histogram and task mix of the LongPT data, planned vs achieved"))
    return s


def _train_section(facts: dict, images: dict) -> Section:
    s = Section("Training", paragraphs=[facts["plan"].description])
    keys = ["steps", "tokens", "seconds", "tokens_per_s", "first_loss", "final_loss", "packing_efficiency"]
    rows = [[name] + [_fmt(run.get(k)) for k in keys] for name, run in facts["runs"].items()]
    s.tables.append((["run"] + keys, rows))
    for name, caption in (("loss_base", "Loss of the starting point"), ("loss_trained", "Loss of LongPT")):
        if name in images:
            s.images.append((images[name], caption))
    return s


def _score(score, errors) -> str:
    text = "n/a" if score is None else f"{100 * score:.1f}"
    return text + (f" ({errors} errors)" if errors else "")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _eval_section(facts: dict, images: dict) -> Section:
    s = Section("Evaluation")
    lengths, window = facts["evals"]["base"]["niah"]["lengths"], facts["plan"].window
    s.paragraphs.append(
        f"Needle-in-a-haystack at {', '.join(f'{n // 1024}K' for n in lengths)} tokens (up to "
        f"{max(lengths) / window:g}x the {window:,}-token training window) and held-out synth tasks, "
        "for the starting point and the trained model. Scores are whatever the models achieve.")
    for comparison in facts["comparisons"].values():
        runs = comparison["runs"]
        rows = [[e["suite"], e["task"], f"{e['length'] // 1024}K"]
                + [_score(e["scores"][r], e["errors"][r]) for r in runs] for e in comparison["rows"]]
        s.tables.append((["suite", "task", "length"] + [f"{r} (%)" for r in runs], rows))
    for name, caption in (("accuracy", "Needle accuracy against length (dashed: training window)"),
                          ("heatmap_base", "Needle heatmap, starting point"),
                          ("heatmap_trained", "Needle heatmap, trained model"),
                          ("accuracy_heldout", "Held-out synth tasks against length")):
        if name in images:
            s.images.append((images[name], caption))
    return s


def _timing_section(facts: dict) -> Section:
    rows = [[name, f"{facts['totals'][name]:.1f}", f"{seconds:.1f}"] for name, seconds in facts["timings"].items()]
    return Section("Time", paragraphs=["Seconds on this machine, summed over every invocation that worked in this "
                                       "folder, and in this one (a rerun skips the steps it finds done)."],
                   tables=[(["step", "all invocations (s)", "this invocation (s)"], rows)])


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for p in s.paragraphs:
            lines += [p, ""]
        for header, rows in s.tables:
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + " --- |" * len(header))
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
            lines.append("")
        for path, caption in s.images:
            lines += [f"![{caption}]({path})", f"*{caption}*", ""]
    return "\n".join(lines)


def render_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}</style>", f"<h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        parts += [f"<p>{e(p)}</p>" for p in s.paragraphs]
        for header, rows in s.tables:
            parts.append("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        parts += [f"<figure><img src='{e(path)}' alt='{e(caption)}'><figcaption>{e(caption)}</figcaption></figure>"
                  for path, caption in s.images]
    return "\n".join(parts) + "\n"
