"""The quickstart's starting point: a mini Qwen2.5-VL that mmprolong itself trained to read at a 1K window.

The paper starts LongPT from Qwen2.5-VL-7B-Instruct, a model that already reads pages well inside its 32K window.
In the miniature that part is played by the ``mini`` preset (a real Qwen2.5-VL of 2.5M parameters) trained by
mmprolong on large-print documents (``corpus.cards``) at 1,024 tokens: first to read (transcribe single pages),
then to answer questions about short documents, then (on a second corpus, ``corpora``) to find a note among other
cards, then (on a third, the quickstart's kind of documents) to answer the questions its LongPT asks. It ships
inside the package (``assets/start``: bf16 safetensors, tokenizer, image processor, model card), so the quickstart
starts from it offline.

    mmprolong start build --recipe recipes/miniature-start.yaml --out runs/start [--install]

rebuilds it: corpus -> ingest -> for each stage, synth then train (each stage continues from the one before; a
stage with a ``mix`` synthesises from more corpora than its own and trains on them all at once, so what one
corpus teaches is not overwritten by a later stage on another)
-> evaluation (niah and held-out synth tasks at 1x, 2x and 4x the window) -> model card. Each step is resumable:
a rerun skips what is done. ``--install`` copies the result into the package (for maintainers).
``--resume-from BUILT`` continues a starting point built earlier (its card's recipe the same but for stages added
after its own): its stages are taken as done, with their records and times from its card, and the build trains
only the stages after them, so a recipe can grow by a stage without hours of rebuilding.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmprolong.config import Config, field, merge_overrides
from mmprolong.errors import ConfigError
from mmprolong.models import DEFAULT_FAMILY

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).parent / "assets" / "start"
CARD_JSON = "card.json"


def shipped_path() -> Path:
    """The starting point inside the package; ConfigError when the installed package lacks it."""
    if not (SHIPPED / "config.json").is_file():
        raise ConfigError("model", str(SHIPPED), "the package has no starting point: rebuild it with `mmprolong "
                                                 "start build --recipe recipes/miniature-start.yaml --install`")
    return SHIPPED


@dataclass(kw_only=True)
class StageConfig(Config):
    """One training stage: the mixture synth builds for it and the training run on it."""

    name: str = field(help="stage name (its folders are OUT/data-NAME and OUT/train-NAME)")
    corpus: str = field("", help="the corpus of the stage's mixture: a name in the recipe's `corpora`, or empty "
                                 "for the recipe's `corpus`")
    synth: dict[str, Any] = field(default_factory=dict, help="SynthConfig fields of the stage's mixture")
    mix: dict[str, dict[str, Any]] = field(default_factory=dict, help="further corpora the stage trains on at the "
                                                                      "same time, by name in the recipe's "
                                                                      "`corpora`: SynthConfig fields of each one's "
                                                                      "mixture (made into OUT/data-NAME-CORPUS); "
                                                                      "the shares are their budget_tokens")
    train: dict[str, Any] = field(default_factory=dict, help="TrainConfig fields (run_dir, data and, after the "
                                                             "first stage, model.path are set by the build)")


EVAL_DEFAULTS = {"niah_items_per_cell": 2, "heldout_items": 10, "depth_steps": 5, "reading_items": 12}


@dataclass(kw_only=True)
class StartRecipe(Config):
    """How the starting point is made, end to end (``recipes/miniature-start.yaml``)."""

    corpus: dict[str, Any] = field(default_factory=dict, help="make_corpus options (docs, seed, min_pages, "
                                                              "max_pages, layout, register_share, specimen_share, "
                                                              "register_gap)")
    corpora: dict[str, dict[str, Any]] = field(default_factory=dict, help="further corpora by name (make_corpus "
                                                                          "options each, made into OUT/corpus-NAME "
                                                                          "and OUT/store-NAME) that stages name in "
                                                                          "their `corpus`; the evaluation's held-out "
                                                                          "documents always come from `corpus`")
    ingest: dict[str, Any] = field(default_factory=dict, help="IngestConfig fields (pixel budget, dpi, workers), "
                                                              "for every corpus")
    window: int = field(1024, help="the starting point's context window, tokens")
    model: dict[str, Any] = field(default_factory=dict, help="ModelConfig fields of the first stage (preset, "
                                                             "seed, rope_theta)")
    stages: list[StageConfig] = field(default_factory=list, help="training stages, in order")
    eval: dict[str, Any] = field(default_factory=dict, help="evaluation of the result: niah_items_per_cell, "
                                                            "heldout_items (per task and length), depth_steps, "
                                                            "reading_items (transcripts of held-out pages)")

    def validate(self) -> None:
        from mmprolong.ingest import IngestConfig
        from mmprolong.synth.config import SynthConfig

        if not self.stages:
            raise ConfigError("stages", self.stages, "give at least one training stage")
        if len({s.name for s in self.stages}) != len(self.stages):
            raise ConfigError("stages", [s.name for s in self.stages], "stage names must be unique")
        if self.window < 256:
            raise ConfigError("window", self.window, "must be at least 256 tokens")
        IngestConfig.from_dict(self.ingest, prefix="ingest.")
        for i, stage in enumerate(self.stages):
            if stage.corpus and stage.corpus not in self.corpora:
                raise ConfigError(f"stages[{i}].corpus", stage.corpus, f"not in corpora ({', '.join(self.corpora)})")
            SynthConfig.from_dict(stage.synth, prefix=f"stages[{i}].synth.")
            for name, synth in stage.mix.items():
                if name not in self.corpora or name == stage.corpus:
                    raise ConfigError(f"stages[{i}].mix.{name}", synth, f"must name one of corpora "
                                                                        f"({', '.join(self.corpora)}) other than "
                                                                        "the stage's own `corpus`")
                SynthConfig.from_dict(synth, prefix=f"stages[{i}].mix.{name}.")
            stage_train_config(self, i, Path("runs/start")).validate_settings()
        for prefix, options in {"corpus": self.corpus, **{f"corpora.{k}": v for k, v in self.corpora.items()}}.items():
            _check_corpus_options(prefix, options)
        used = {name for stage in self.stages for name in stage_corpora(stage)}
        for name in self.corpora:
            if not name.replace("-", "").replace("_", "").isalnum() or name not in used:
                raise ConfigError(f"corpora.{name}", self.corpora[name], "needs a name of letters, digits, - and _ "
                                                                         "that a stage's `corpus` names")
        unknown = set(self.eval) - set(EVAL_DEFAULTS)
        if unknown:
            raise ConfigError(f"eval.{sorted(unknown)[0]}", self.eval, f"known: {', '.join(EVAL_DEFAULTS)}")


def _check_corpus_options(prefix: str, options: Any) -> None:
    """make_corpus options are keyword arguments: an unknown or missing one is refused before any corpus is made."""
    import inspect

    from mmprolong.corpus import make_corpus

    if not isinstance(options, dict):
        raise ConfigError(prefix, options, "must be a mapping of make_corpus options")
    known = set(inspect.signature(make_corpus).parameters) - {"out_dir", "show_progress"}
    unknown, missing = sorted(set(options) - known), sorted({"docs", "seed"} - set(options))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", options[unknown[0]], f"not a corpus option (known: "
                                                                         f"{', '.join(sorted(known))})")
    if missing:
        raise ConfigError(f"{prefix}.{missing[0]}", None, "is required")


def stage_corpora(stage: StageConfig) -> list[str]:
    """The corpora a stage's data comes from: its own (`corpus`, "" for the recipe's main one), then its `mix`."""
    return [stage.corpus, *stage.mix]


def load_recipe(path: str | Path) -> StartRecipe:
    return StartRecipe.from_yaml(path)


def stage_train_config(recipe: StartRecipe, index: int, out: Path, previous: Path | None = None):
    """The TrainConfig of stage ``index``: the recipe's fields, this build's folders, and the model it starts from
    (the preset for the first stage, ``previous`` or else the previous stage's final model after)."""
    from mmprolong.train.config import TrainConfig

    stage = recipe.stages[index]
    model = dict(recipe.model) if index == 0 else {
        **{k: v for k, v in recipe.model.items() if k not in ("preset", "seed")},
        "path": str(previous or out / f"train-{recipe.stages[index - 1].name}" / "final")}
    folders = {"run_dir": str(out / f"train-{stage.name}"), "data.data_dir": str(out / f"data-{stage.name}"),
               "data.mix_dirs": [str(d) for d in mix_data(stage, out).values()], "data.max_seq_len": recipe.window}
    fields = merge_overrides({**stage.train, "model": {**model, **stage.train.get("model", {})}}, folders)
    return TrainConfig.from_dict(fields, prefix=f"stages[{index}].train.", validate=False)


def mix_data(stage: StageConfig, out: Path) -> dict[str, Path]:
    """The synth folders of a stage's `mix`, by corpus name: OUT/data-STAGE-CORPUS."""
    return {name: out / f"data-{stage.name}-{name}" for name in stage.mix}


def resumed_stages(recipe: StartRecipe, built: Path) -> dict:
    """The card of a starting point built earlier, checked to be this recipe's first stages: the same corpus,
    ingest, window and model, its stages the same as this recipe's first ones and their corpora the same. A
    ConfigError names the first field that differs."""
    card_path = Path(built) / CARD_JSON
    if not card_path.is_file():
        raise ConfigError("resume_from", str(built), "not a built starting point (no card.json)")
    card = json.loads(card_path.read_text())
    before, now = card["recipe"], recipe.to_dict()
    # a card written before a stage field existed lacks it: read its stages with today's defaults
    stages = [StageConfig.from_dict(s) for s in before["stages"]]
    before["stages"] = [stage.to_dict() for stage in stages]
    done = len(stages)
    for key in ("corpus", "ingest", "window", "model"):
        if before[key] != now[key]:
            raise ConfigError(key, now[key], f"differs from the resumed build's ({before[key]}): rebuild from scratch")
    if done >= len(now["stages"]) or before["stages"] != now["stages"][:done]:
        raise ConfigError("stages", [s["name"] for s in now["stages"]],
                          f"must begin with the resumed build's stages ({[s['name'] for s in before['stages']]}) "
                          "unchanged and add at least one")
    for name in {name for stage in stages for name in stage_corpora(stage)} - {""}:
        if before["corpora"][name] != now["corpora"].get(name):
            raise ConfigError(f"corpora.{name}", now["corpora"].get(name),
                              f"differs from the resumed build's ({before['corpora'][name]})")
    return card


def build(recipe: StartRecipe, out_dir: str | Path, *, resume_from: str | Path | None = None,
          show_progress: bool = True) -> Path:
    """Make the starting point into ``out_dir`` (resumable); returns the folder of the final model.
    ``resume_from``: a starting point built earlier from this recipe's first stages (``resumed_stages``); only
    the stages after them are trained, from its weights."""
    from mmprolong import api
    from mmprolong.ingest import IngestConfig
    from mmprolong.synth.config import SynthConfig

    recipe.validate()
    built = resumed_stages(recipe, Path(resume_from)) if resume_from is not None else None
    done = len(built["stages"]) if built else 0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(out / "timings.json")
    if built:  # the card's time, once: what the whole build cost
        clock.totals = {**{k: v for k, v in built["seconds"].items() if k != "evaluation"}, **clock.totals}
    needed = {""} | {name for stage in recipe.stages[done:] for name in stage_corpora(stage)}  # "": the eval's
    for name, options in {"": recipe.corpus, **recipe.corpora}.items():
        if name in needed:
            api.make_corpus(_folder(out, "corpus", name), **options, show_progress=show_progress)
            api.ingest(_folder(out, "corpus", name), _folder(out, "store", name),
                       IngestConfig.from_dict(recipe.ingest), show_progress=show_progress)
    clock.lap("corpus and ingest")
    records = list(built["stages"]) if built else []
    for index, stage in enumerate(recipe.stages[done:], start=done):
        data = out / f"data-{stage.name}"
        sources = {stage.corpus: (data, stage.synth)} | {name: (folder, stage.mix[name])
                                                         for name, folder in mix_data(stage, out).items()}
        for corpus, (folder, synth) in sources.items():
            if not (folder / "summary.json").is_file():
                api.synth(_folder(out, "store", corpus), folder, SynthConfig.from_dict(synth),
                          show_progress=show_progress)
        config = stage_train_config(recipe, index, out, Path(resume_from) if built and index == done else None)
        summary_path = Path(config.run_dir) / "summary.json"
        if not (summary_path.is_file() and (Path(config.run_dir) / "final").is_dir()):
            api.train(config)
        records.append(stage_record(stage.name, [json.loads((folder / "summary.json").read_text())
                                                 for folder, _ in sources.values()],
                                    json.loads(summary_path.read_text())))
        clock.lap(f"stage {stage.name}")
    final = out / f"train-{recipe.stages[-1].name}" / "final"
    scores = evaluate_start(final, out, recipe, show_progress=show_progress)
    check = fixed_check(final, out / "check")
    clock.lap("evaluation")
    losses = {r["stage"]: out / f"train-{r['stage']}" / "loss.png" for r in records[done:]}
    if built:
        losses |= {r["stage"]: Path(resume_from) / f"loss-{r['stage']}.png" for r in built["stages"]}
    write_card(final, recipe, records, scores, check, clock.totals, losses, earlier_runs(built) if built else None)
    return final


def continued_runs(card: dict) -> list[dict]:
    """The runs a built starting point's card says its build continued ({stages, date, hardware} each), oldest
    first; a card written before a build could continue one that was itself continued has a single run, a dict."""
    runs = card.get("resumed_from") or []
    return [runs] if isinstance(runs, dict) else list(runs)


def earlier_runs(card: dict) -> list[dict]:
    """The runs that trained a built starting point's stages, oldest first: those its build continued, then its
    own."""
    before = continued_runs(card)
    named = {stage for run in before for stage in run["stages"]}
    own = [r["stage"] for r in card["stages"] if r["stage"] not in named]
    return before + [{"stages": own, "date": card["date"], "hardware": card["hardware"]}]


def stage_record(name: str, data: list[dict], train: dict) -> dict:
    """What the model card keeps of a stage: its data (the synth summaries of its corpora, summed) and its
    training."""
    return {"stage": name, "samples": sum(d["samples"] for d in data), "tokens": sum(d["tokens"] for d in data),
            "steps": train.get("steps"),
            "trained_tokens": train.get("tokens"), "first_loss": train.get("first_loss"),
            "final_loss": train.get("final_loss")}


def _folder(out: Path, kind: str, corpus: str) -> Path:
    """OUT/corpus and OUT/store for the recipe's `corpus` (name ""), OUT/corpus-NAME and OUT/store-NAME for one of
    its `corpora`."""
    return out / (f"{kind}-{corpus}" if corpus else kind)


def evaluate_start(model: Path, out: Path, recipe: StartRecipe, *, show_progress: bool = True) -> dict:
    """niah (single needle) and held-out synth tasks at 1x, 2x and 4x the window, and reading (transcripts of
    held-out pages at half the window, scored by character similarity); the scores, as
    ``scores[suite][task][length] = {accuracy, n, ci95}``."""
    from mmprolong import api
    from mmprolong.eval.config import heldout_config, niah_config

    lengths = [recipe.window, 2 * recipe.window, 4 * recipe.window]
    settings = {**EVAL_DEFAULTS, **recipe.eval}
    heldout = recipe.stages[-1].synth.get("heldout_fraction", 0.05)
    configs = {
        "niah": niah_config(lengths, settings["niah_items_per_cell"], depth_steps=settings["depth_steps"],
                            store_dir=str(out / "store"), label="starting point"),
        "synth-heldout": heldout_config(lengths, settings["heldout_items"], store_dir=str(out / "store"),
                                        heldout_fraction=heldout, label="starting point"),
        # the transcript is part of the length, so max_new_tokens = the length always fits it
        "reading": heldout_config([recipe.window // 2], settings["reading_items"], store_dir=str(out / "store"),
                                  heldout_fraction=heldout, label="starting point", heldout_tasks=["ocr-full"],
                                  max_new_tokens=recipe.window // 2)}
    for suite, config in configs.items():
        api.evaluate(model, out / f"eval-{suite}", config, show_progress=show_progress)
    return {suite: scores_of(out / f"eval-{suite}") for suite in configs}


CHECK_CORPUS = {"docs": 3, "seed": 7, "min_pages": 8, "max_pages": 12, "layout": "large-print"}
CHECK_INGEST = {"max_pixels": DEFAULT_FAMILY.pixels_for_tokens(128), "max_dpi": 72.0, "workers": 1}


def fixed_check(model: str | Path, out: str | Path) -> dict:
    """A small fixed grid that anyone can rerun in a minute: niah at 1K on a 3-document store, greedy answers.
    The build records it in card.json; ``tests/test_startpoint.py`` checks that the shipped model reproduces it
    offline, answer for answer."""
    from mmprolong import api
    from mmprolong.eval.config import niah_config
    from mmprolong.eval.items import read_results
    from mmprolong.ingest import IngestConfig

    out = Path(out)
    api.make_corpus(out / "corpus", **CHECK_CORPUS, show_progress=False)
    api.ingest(out / "corpus", out / "store", IngestConfig(**CHECK_INGEST), show_progress=False)
    config = niah_config([1024], 2, depth_steps=3, store_dir=str(out / "store"), seed=0,
                         cache_dir=str(out / "cache"))
    api.evaluate(model, out / "eval", config, overwrite=True, show_progress=False)
    results = sorted(read_results(out / "eval"), key=lambda r: r.item_id)
    return {"corpus": CHECK_CORPUS, "ingest": CHECK_INGEST, "eval": {"suite": "niah", "lengths": [1024],
                                                                      "depth_steps": 3, "items_per_cell": 2},
            "answers": [r.prediction for r in results], "score": sum(r.score for r in results) / len(results)}


def scores_of(eval_dir: str | Path) -> dict:
    """An eval run's scores per task and length: ``{task: {length: {accuracy, n, ci95}}}`` (the run's table), and
    for needle codes their partial credit, ``in_place`` with ``in_place_ci95`` and ``in_place_by_position`` with
    ``in_place_by_position_ci95``."""
    rows = json.loads((Path(eval_dir) / "table.json").read_text())["rows"]
    scores: dict[str, dict[str, dict]] = {}
    for row in rows:
        if row["depth"] == "all" and row["task"] != "all" and row["score"] is not None:
            scores.setdefault(row["task"], {})[str(row["length"])] = {
                "accuracy": row["score"], "n": row["ok"], "ci95": row["ci95"],
                **{key: row[key] for key in ("in_place", "in_place_ci95", "in_place_by_position",
                                             "in_place_by_position_ci95") if key in row}}
    return scores


def write_card(final: Path, recipe: StartRecipe, stages: list[dict], scores: dict, check: dict,
               seconds: dict[str, float], losses: dict[str, Path], resumed: list[dict] | None = None) -> None:
    """card.json (everything machine-readable) and README.md (the model card) beside the model; ``losses``: each
    stage's loss curve, copied beside it; ``resumed``: the earlier runs this one continued (``earlier_runs``)."""
    from mmprolong.models.config import ModelConfig
    from mmprolong.models.loading import load_model, parameter_counts

    model, _, _ = load_model(ModelConfig(path=str(final)))
    card = {"recipe": recipe.to_dict(), "parameters": parameter_counts(model)["total"],
            "command": "mmprolong start build --recipe recipes/miniature-start.yaml --out runs/start",
            "hardware": f"{platform.machine()}, {platform.processor() or 'cpu'}, {_cores()} cores, torch CPU",
            "date": time.strftime("%Y-%m-%d"), "seconds": seconds, "stages": stages, "scores": scores,
            "check": check, **({"resumed_from": resumed} if resumed else {})}
    (final / CARD_JSON).write_text(json.dumps(card, indent=1, sort_keys=True, default=str) + "\n")
    for stage, loss in losses.items():
        if loss.is_file():
            shutil.copyfile(loss, final / f"loss-{stage}.png")
    (final / "README.md").write_text(model_card(card))


def model_card(card: dict) -> str:
    from mmprolong.eval.report import fmt_in_place, fmt_interval

    recipe = card["recipe"]
    runs = continued_runs(card)
    lines = ["# mmprolong starting point (mini Qwen2.5-VL)", "",
             f"A Qwen2.5-VL of {card['parameters']:,} parameters (the `mini` preset) trained by mmprolong to read "
             f"large-print pages at a {recipe['window']:,}-token window: the miniature of the instruct model the "
             "paper starts LongPT from. The quickstart continues it to 4x the window.", "",
             f"Rebuild: `{card['command']}` ({card['date']}, {card['hardware']}).", "",
             *([f"Built in {len(runs) + 1} runs: "
                + "; ".join(f"stages {', '.join(r['stages'])} on {r['date']} ({r['hardware']})" for r in runs)
                + f"; the others on {card['date']}, each run from the weights of the one before (`--resume-from`); "
                "a rebuild from scratch runs them all.", ""] if runs else []),
             f"Data: the large-print corpus ({recipe['corpus']})"
             + "".join(f"; for the stages that name it, `{name}` ({options})"
                       for name, options in recipe.get("corpora", {}).items())
             + f"; ingested with {recipe['ingest']}.", "",
             "| stage | samples | data tokens | steps | trained tokens | first loss | final loss | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in card["stages"]:
        seconds = card["seconds"].get(f"stage {s['stage']}", 0)
        lines.append(f"| {s['stage']} | {s['samples']:,} | {s['tokens']:,} | {s['steps']} | {s['trained_tokens']:,} "
                     f"| {s['first_loss']:.3f} | {s['final_loss']:.3f} | {seconds:.0f} |")
    lines += ["", "Scores (%, 95% interval, items) on a store of documents it never saw, held out:", "",
              "| suite | task | length | score | code characters in place |", "| --- | --- | --- | --- | --- |"]
    for suite, tasks in card["scores"].items():
        for task, by_length in tasks.items():
            for length, s in sorted(by_length.items(), key=lambda kv: int(kv[0])):
                row = {"score": s["accuracy"], "ci95": s["ci95"], "ok": s["n"], **s}
                lines.append(f"| {suite} | {task} | {int(length):,} | {fmt_interval(row)} | {fmt_in_place(row)} |")
    lines += ["", "reading: transcripts of held-out pages (synth-heldout's ocr-full), scored by character similarity "
              "(1 - normalised edit distance); the others: share of items answered right; niah also the share of the "
              "code's characters in the answer at their place (partial credit).",
              "", "Loss curves: " + ", ".join(f"`loss-{s['stage']}.png`" for s in card["stages"]), ""]
    return "\n".join(lines)


def install(final: str | Path, target: Path = SHIPPED) -> Path:
    """Copy a built starting point into the package (safetensors in bf16, tokenizer, processor, card)."""
    final = Path(final)
    if not (final / CARD_JSON).is_file():
        raise ConfigError("final", str(final), "not a built starting point (no card.json): run `start build` first")
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(final, tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    return target


class Clock:
    """Seconds per step, summed over every invocation in the folder (a resumed build reports its whole cost);
    ``mmprolong reproduce`` keeps its time the same way."""

    def __init__(self, path: Path):
        self.path = path
        self.totals: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}
        self.start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.totals[name] = round(self.totals.get(name, 0.0) + now - self.start, 1)
        self.path.write_text(json.dumps(self.totals, indent=1) + "\n")
        self.start = now


def _cores() -> int:
    import os

    return os.cpu_count() or 1
