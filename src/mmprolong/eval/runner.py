"""evaluate(): build a suite's items, answer them through a backend (cached), score, tabulate, plot.

Layout of ``OUT``::

    config.json            resolved EvalConfig, backend identity, generation settings, fingerprint
    items.jsonl            every item (an item that could not be built carries its error)
    needles/               generated needle pages (docvqa's rendered PDF pages live in its render cache)
    cache/                 one answer per file (unless cache_dir points elsewhere)
    judge_cache/           llm_scoring's replies, one per request (unless judge_cache_dir points elsewhere)
    results.partial.jsonl  progress, one line per finished item (appended + fsynced)
    results.jsonl/.parquet every item's result, in item order (written at the end, atomically)
    table.json, table.md   scores per suite x task x length x depth; table.md ends with the accounting
    summary.json           per task and length: records, not_sampled, scored, errors by reason, score
    accuracy_vs_length.png, needle_heatmap.png (niah)
    run.json               counts, timing, items/s; written last: marks the run complete

Resuming: rerun the same call. Answers already in the cache are not recomputed (no model call), so an
interrupted run continues where it stopped and ends with the results an uninterrupted run gives. A folder
holding a run with other items or another model is refused (ResumeError) unless ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from mmprolong.errors import ConfigError, ResumeError
from mmprolong.eval.backends import Answer, AnswerCache, Backend, GenerationSettings, counting_family, make_backend
from mmprolong.eval.config import EvalConfig, parse_lengths
from mmprolong.eval.items import EvalItem, EvalResult, JsonlAppender, write_items, write_results
from mmprolong.eval.pages import ImageLoader, store_pixel_budget
from mmprolong.eval.scoring import details_json, score_item
from mmprolong.models import DEFAULT_FAMILY, ModelFamily

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunStats:
    items: int = 0
    ok: int = 0
    errors: int = 0
    cached: int = 0  # answers taken from the cache
    generated: int = 0  # answers the backend produced in this call
    generate_seconds: float = 0.0  # backend time spent in this call


def evaluate(model, suite: str | None = None, *, lengths=None, out_dir, config: EvalConfig | None = None,
             api_key: str | None = None, judge_api_key: str | None = None, overwrite: bool = False,
             show_progress: bool = False, vision_features=None) -> dict:
    """Evaluate ``model`` on ``suite`` at ``lengths`` into ``out_dir``; returns the run summary (run.json).

    ``model``: a Backend, a ``ModelConfig``, a local checkpoint folder (str or Path), or None (the tiny preset);
    a ModelConfig or folder is loaded by ``config.backend`` with ``config.rope_scaling`` applied before loading.
    ``suite`` and ``lengths`` ("8k,16k" or ints) override the config's. ``api_key`` is for the openai backend,
    ``judge_api_key`` for the endpoint of ``config.llm_scoring``. ``vision_features``: a ``FeatureCache`` shared
    by the evaluations given it (hf backend): a model whose vision tower another of them already ran (byte for
    byte: LongPT keeps it frozen) reuses that one's features instead of encoding the pages again.
    """
    config = _resolve_config(config, suite, lengths)
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, Backend):
        if config.rope_scaling != "none":
            raise ConfigError("rope_scaling", config.rope_scaling, "applies when evaluate() loads the model; a "
                                                                   "ready Backend must be built with it")
        backend, owned = model, False
    else:
        backend, owned = make_backend(model, config, api_key=api_key, vision_features=vision_features), True
    try:
        return _run(backend, config, out, overwrite=overwrite, start=start, show_progress=show_progress,
                    model_path=getattr(model, "path", model if isinstance(model, str) else None),
                    judge_api_key=judge_api_key)
    finally:
        if owned:
            backend.close()


def _resolve_config(config: EvalConfig | None, suite: str | None, lengths) -> EvalConfig:
    data = config.to_dict() if config is not None else {}
    if suite is not None:
        data["suite"] = suite
    if lengths is not None:
        data["lengths"] = parse_lengths(lengths)
    return EvalConfig.from_dict(data)


def _run(backend: Backend, config: EvalConfig, out: Path, *, overwrite: bool, start: float, show_progress: bool,
         model_path, judge_api_key: str | None = None) -> dict:
    from mmprolong.eval.suites import build_items
    from mmprolong.eval.suites.common import SuiteContext
    from mmprolong.template import ChatTemplate

    settings = GenerationSettings(max_new_tokens=config.max_new_tokens)
    tokenizer = backend.tokenizer or _counting_tokenizer(config, model_path)
    family = backend_family(backend, config, model_path)
    min_pixels, max_pixels = pixel_budget(backend, config, family)
    label = config.label or backend.label()
    record = {"config": config.to_dict(), "backend": backend.identity(), "settings": settings.describe(),
              "pixels": [min_pixels, max_pixels], "tokenizer_size": len(tokenizer), "label": label}
    record["family"] = family.name
    keys = ["backend", "settings", "pixels", "tokenizer_size"]
    if family.name != DEFAULT_FAMILY.name:  # only then, so runs made before families existed keep their fingerprints
        keys.append("family")
    fingerprint = hashlib.sha256(json.dumps({k: record[k] for k in keys} | {"items": config.item_fields()},
                                            sort_keys=True, default=str).encode()).hexdigest()[:16]
    _check_resume(out, fingerprint, overwrite)
    _write_json(out / "config.json", {**record, "fingerprint": fingerprint})

    ctx = SuiteContext(config, ChatTemplate(tokenizer, family=family), min_pixels, max_pixels, out)
    items = build_items(ctx)
    write_items(out / "items.jsonl", items)
    log.info("%s: %d items (%d could not be built)", config.suite, len(items), sum(1 for i in items if i.error))

    cache = AnswerCache(config.cache_dir or out / "cache")
    progress_path = out / "results.partial.jsonl"
    progress_path.unlink(missing_ok=True)
    progress = JsonlAppender(progress_path)
    try:
        results, stats = run_items(items, backend, settings=settings, cache=cache, loader=ImageLoader(),
                                   batch_size=config.batch_size, max_model_len=_limit(backend, config),
                                   progress=progress, show_progress=show_progress)
    finally:
        progress.close()
    extra = {}
    if config.llm_scoring != "none":  # the answers are final; the LLM rescores them (its replies cached too)
        from mmprolong.eval.judge import LLMScorer

        scorer = LLMScorer(config, out, api_key=judge_api_key, show_progress=show_progress)
        results = scorer.rescore(items, results)
        stats.ok = sum(r.status == "ok" for r in results)
        stats.errors = len(results) - stats.ok
        extra["llm_scoring"] = scorer.summary()
    write_results(out, results)
    from mmprolong.eval.report import write_report
    from mmprolong.eval.summary import account, markdown

    accounting = account(results, ctx.records)
    _write_json(out / "summary.json", {"label": label, "suite": config.suite, "rows": accounting})
    files = write_report(out, results, label=label, questions_md=markdown(accounting))
    files["summary_json"] = str(out / "summary.json")
    seconds = time.perf_counter() - start
    summary = {"label": label, "suite": config.suite, "lengths": config.lengths, **dataclasses.asdict(stats),
               "summary": accounting,
               "seconds": round(seconds, 3), "items_per_second": round(stats.items / seconds, 3) if seconds else 0.0,
               "generated_per_second": round(stats.generated / stats.generate_seconds, 3)
               if stats.generate_seconds else 0.0, "fingerprint": fingerprint, "files": files, **extra}
    _write_json(out / "run.json", summary)
    progress_path.unlink(missing_ok=True)
    return summary


def backend_family(backend: Backend, config: EvalConfig, model_path=None) -> ModelFamily:
    """The family items are built for: the backend's model's (``config.family`` must agree), else
    ``counting_family``."""
    if backend.family is None:
        return counting_family(config, model_path if isinstance(model_path, str) else None)
    if config.family not in ("auto", backend.family.name):
        raise ConfigError("family", config.family, f"the model is a {backend.family.name}: set family to "
                                                   f"{backend.family.name} or auto")
    return backend.family


def pixel_budget(backend: Backend, config: EvalConfig, family: ModelFamily = DEFAULT_FAMILY) -> tuple[int, int]:
    """The backend's image processor budget; else the config's; else the store's; else the family's defaults.
    ConfigError when it cannot hold one of the family's tokens."""
    budget = backend.pixel_budget()
    if budget is not None:
        for name, ours, theirs in (("min_pixels", config.min_pixels, budget[0]),
                                   ("max_pixels", config.max_pixels, budget[1])):
            if ours is not None and ours != theirs:
                raise ConfigError(name, ours, f"the model's image processor uses {theirs}: set it on the model "
                                              "(ModelConfig) or leave it unset")
        return budget
    store = store_pixel_budget(config.store_dir) if config.store_dir else None
    budget = (config.min_pixels or (store[0] if store else family.min_pixels),
              config.max_pixels or (store[1] if store else family.max_pixels))
    try:
        family.check_pixel_budget(*budget)
    except ValueError as exc:
        raise ConfigError("max_pixels", budget[1], str(exc)) from None
    return budget


def _counting_tokenizer(config: EvalConfig, model_path):
    from mmprolong.tokenizer import load_tokenizer

    folder = config.tokenizer or (model_path if isinstance(model_path, str) else None)
    return load_tokenizer(folder) if folder else load_tokenizer()


def _limit(backend: Backend, config: EvalConfig) -> int | None:
    limits = [x for x in (backend.max_model_len, config.max_model_len if config.max_model_len > 0 else None) if x]
    return min(limits) if limits else None


def _check_resume(out: Path, fingerprint: str, overwrite: bool) -> None:
    path = out / "config.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text()).get("fingerprint")
    if old == fingerprint:
        return
    if not overwrite:
        raise ResumeError(f"{out} holds an eval run with other items, model or settings (fingerprint {old}, now "
                          f"{fingerprint}): pass overwrite=True (--overwrite) or choose a new out_dir")
    for name in ("results.jsonl", "results.parquet", "results.partial.jsonl", "run.json", "table.json", "table.md",
                 "items.jsonl", "summary.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "needles", ignore_errors=True)


def _write_json(path: Path, data: dict) -> None:
    from mmprolong.eval.items import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


# --- the loop ----------------------------------------------------------------------------------------------


def run_items(items: Sequence[EvalItem], backend: Backend, *, settings: GenerationSettings, cache: AnswerCache,
              loader: ImageLoader, batch_size: int = 1, max_model_len: int | None = None,
              progress: JsonlAppender | None = None, show_progress: bool = False) -> tuple[list[EvalResult], RunStats]:
    """Every item's result, in order. Cached answers are reused; the rest go to the backend ``batch_size`` at a
    time and are cached as soon as a batch returns. Per-item failures become error results."""
    identity = backend.identity()
    stats = RunStats(items=len(items))
    results: list[EvalResult | None] = [None] * len(items)
    pending: list[tuple[int, str]] = []

    def done(i: int, result: EvalResult) -> None:
        results[i] = result
        stats.ok += result.status == "ok"
        stats.errors += result.status != "ok"
        if progress is not None:
            progress.append(result.to_row())

    def flush() -> None:
        if not pending:
            return
        batch = [items[i] for i, _ in pending]
        t0 = time.perf_counter()
        answers = backend.generate(batch, loader, settings)
        stats.generate_seconds += time.perf_counter() - t0
        if len(answers) != len(batch):
            raise RuntimeError(f"backend {backend.name} returned {len(answers)} answers for {len(batch)} items")
        for (i, key), answer in zip(pending, answers):
            if isinstance(answer, BaseException):
                done(i, _error(items[i], f"{type(answer).__name__}: {answer}"))
                continue
            cache.put(key, answer, item_id=items[i].item_id)
            stats.generated += 1
            done(i, _scored(items[i], answer))
        pending.clear()

    for i, item in enumerate(items):
        if item.error:
            done(i, _error(item, item.error))
            continue
        need = item.prompt_tokens + settings.max_new_tokens
        if max_model_len is not None and need > max_model_len:
            done(i, _error(item, f"too long for the model: the item needs {need} tokens (prompt "
                                 f"{item.prompt_tokens} + max_new_tokens {settings.max_new_tokens}), more than "
                                 f"max_model_len={max_model_len}"))
            continue
        key = cache.key(item, identity, settings)
        cached = cache.get(key)
        if cached is not None:
            stats.cached += 1
            done(i, _scored(item, cached))
            continue
        pending.append((i, key))
        if len(pending) >= batch_size:
            flush()
        if show_progress and (i + 1) % 10 == 0:
            log.info("eval: %d/%d items", i + 1, len(items))
    flush()
    return [r for r in results if r is not None], stats


def _base(item: EvalItem) -> dict:
    return {"item_id": item.item_id, "suite": item.suite, "task": item.task, "length": item.length,
            "depth": item.depth, "tokens": item.tokens, "achieved_depth": item.achieved_depth}


def _error(item: EvalItem, message: str) -> EvalResult:
    return EvalResult(**_base(item), status="error", error=message)


def _scored(item: EvalItem, answer: Answer) -> EvalResult:
    try:
        score, details = score_item(item, answer.text)
    except (ValueError, TypeError) as exc:
        return EvalResult(**_base(item), status="error", prediction=answer.text, seconds=answer.seconds,
                          error=f"scoring failed: {exc}")
    details["output_tokens"] = answer.output_tokens
    return EvalResult(**_base(item), status="ok", prediction=answer.text, score=round(float(score), 6),
                      seconds=answer.seconds, metadata=details_json(details))

