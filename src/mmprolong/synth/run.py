"""The synth run: plan, build units in parallel, write shards resumably, then summarise and plot.

Output folder (DATA_DIR):
  manifest.json            the resolved config, the store it read and the planned units; a resume with
                           other settings is refused
  <unit>.parquet           the samples of one unit (SAMPLE_SCHEMA); its presence marks the unit done
  stats/<unit>.json        that unit's counters (drops by reason, tokens)
  summary.json             planned vs achieved, written last
  mixture.png              length histogram and task mix
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mmprolong.decontam.exclusion import load_exclusion
from mmprolong.errors import DataError, MissingDependencyError, ResumeError
from mmprolong.records import SAMPLE_SCHEMA, SAMPLE_SCHEMA_VERSION, PageRef
from mmprolong.split import heldout_split
from mmprolong.synth.build import build_unit
from mmprolong.synth.config import PAPER_BUDGET_TOKENS, SynthConfig
from mmprolong.synth.layout import evidence_offsets
from mmprolong.synth.plan import Bucket, Unit, bucket_weights, make_buckets, plan_units, planned_shares
from mmprolong.synth.store import load_documents, read_store_summary, store_family

log = logging.getLogger(__name__)


def synth(store_dir: str | Path, out_dir: str | Path, config: SynthConfig, *, overwrite: bool = False,
          show_progress: bool = True, api_key: str | None = None) -> dict:
    """Build the mixture ``config`` describes from the page store; returns the summary (also summary.json)."""
    start = time.perf_counter()
    store_dir, out_dir = Path(store_dir).resolve(), Path(out_dir)
    store_summary = read_store_summary(store_dir)
    truth_dir = config.truth_dir or store_summary.get("pdf_dir")
    docs, held_out, exclusion = training_documents(load_documents(store_dir, truth_dir=truth_dir), config)
    if not docs:
        raise DataError(f"page store {store_dir} has no complete document outside the held-out split "
                        f"(heldout_fraction={config.heldout_fraction}, {len(held_out)} held out) and the exclusion "
                        f"list ({exclusion['documents_excluded']} excluded)")
    log.info("%d documents, %d more held out for eval (heldout_fraction=%g), %d excluded (%s)", len(docs),
             len(held_out), config.heldout_fraction, exclusion["documents_excluded"], exclusion["source"] or "no list")
    units = make_plan(config, docs)
    manifest = {"config": config.to_dict(), "store": str(store_dir), "truth_dir": truth_dir,
                "store_pages": sum(d.page_count for d in docs), "units": [_unit_json(u) for u in units],
                "heldout_doc_ids": held_out, "exclusion": exclusion, "schema_version": SAMPLE_SCHEMA_VERSION}
    _prepare(out_dir, manifest, overwrite)
    pending = [u for u in units if not (out_dir / f"{u.name}.parquet").exists()]
    log.info("plan: %d units, %d tokens; %d to build", len(units), sum(u.tokens for u in units), len(pending))
    _execute(pending, store_dir, truth_dir, out_dir, config, show_progress, api_key)
    summary = summarise(out_dir, units, store_dir, store_summary, time.perf_counter() - start,
                        heldout={"heldout_fraction": config.heldout_fraction, "heldout_documents": len(held_out),
                                 "exclusion": exclusion})
    from mmprolong.synth.report import plot_mixture

    plot_mixture(out_dir / "samples_lengths.json", summary, out_dir / "mixture.png")
    return summary


def training_documents(docs: list, config: SynthConfig) -> tuple[list, list[str], dict]:
    """(documents synth may use, doc_ids held out for eval's synth-heldout suite, the exclusion list applied).

    Documents on the exclusion list (``config.exclude``, e.g. decontaminate's exclude.txt) are dropped first, so
    they are neither a sample's document nor a filler; the held-out split is taken from the rest."""
    exclusion = load_exclusion(config.exclude)
    kept = [d for d in docs if d.doc_id not in exclusion.doc_ids]
    held = set(heldout_split([d.doc_id for d in kept], config.heldout_fraction)[1])
    return [d for d in kept if d.doc_id not in held], sorted(held), exclusion.describe(len(docs) - len(kept))


def make_plan(config: SynthConfig, docs) -> list[Unit]:
    buckets = make_buckets(config.boundaries())
    native = None
    if config.distribution == "native":
        lengths = [sum(t + 2 for t in d.page_tokens) for d in docs]
        native = [sum(n for n in lengths if n in b) for b in buckets]
    weights = bucket_weights(config.distribution, buckets, target_share=config.target_share,
                             custom=config.bucket_weights, native_tokens=native)
    if config.short_share:
        buckets = [Bucket(1, config.short_tokens)] + buckets
        weights = [config.short_share] + [w * (1 - config.short_share) for w in weights]
    store_tokens = sum(sum(t + 2 for t in d.page_tokens) for d in docs)
    budget = config.budget_tokens or min(PAPER_BUDGET_TOKENS, round(store_tokens * config.store_passes))
    return plan_units(buckets, weights, config.tasks(), budget, config.unit_tokens)


def _unit_json(u: Unit) -> dict:
    return {"name": u.name, "bucket": [u.bucket.low, u.bucket.high], "task": u.task, "index": u.index,
            "tokens": u.tokens}


def _unit_from_json(d: dict) -> Unit:
    return Unit(Bucket(*d["bucket"]), d["task"], d["index"], d["tokens"])


def _prepare(out_dir: Path, manifest: dict, overwrite: bool) -> None:
    path = out_dir / "manifest.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != manifest:
            if not overwrite:
                changed = sorted(k for k in manifest if old.get(k) != manifest[k])
                raise ResumeError(f"{out_dir} holds a synth run with other settings ({', '.join(changed)} "
                                  "differ): use another --out, or --overwrite to discard it")
            for f in list(out_dir.glob("*.parquet")) + list((out_dir / "stats").glob("*.json")):
                f.unlink()
    (out_dir / "stats").mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- execution: one process pool or a Ray cluster; each worker loads the store once ---------------------

def _load_state(store_dir: str, truth_dir: str | None, config_dict: dict, api_key: str | None) -> dict:
    """What building a unit needs: the documents, the generator and the template (loaded once per process)."""
    from mmprolong.synth.generators.factory import make_generator
    from mmprolong.template import ChatTemplate
    from mmprolong.tokenizer import load_tokenizer

    config = SynthConfig.from_dict(config_dict)
    docs, _, _ = training_documents(load_documents(store_dir, truth_dir=truth_dir), config)
    family = store_family(read_store_summary(store_dir))  # the layout of the model the store counts for
    return {"config": config, "docs": docs,
            "template": ChatTemplate(load_tokenizer(config.tokenizer), family=family),
            "generator": make_generator(config, api_key=api_key)}


# A pool worker keeps its state here between tasks; only _init_worker writes it, and only in workers.
_WORKER: dict = {}


def _init_worker(*args) -> None:
    _WORKER.update(_load_state(*args))


def _run_unit_in_worker(unit_json: dict, out_dir: str) -> tuple[str, int, int]:
    return _run_unit(unit_json, out_dir, _WORKER)


def _run_unit(unit_json: dict, out_dir: str, state: dict) -> tuple[str, int, int]:
    unit = _unit_from_json(unit_json)
    config = state["config"]
    before = Counter(state["generator"].stats)
    result = build_unit(unit, state["docs"], state["generator"], state["template"], seed=config.seed,
                        max_attempts=config.max_attempts, questions=config.questions_per_sample,
                        depth_power=config.depth_power)
    generator_stats = Counter(state["generator"].stats)
    generator_stats.subtract(before)
    stats = {"unit": unit_json, "stats": dict(sorted(result.stats.items())),
             "generator": {k: v for k, v in sorted(generator_stats.items()) if v},
             "drop_reasons": dict(sorted(result.drop_reasons.items())),
             "samples": len(result.samples), "tokens": sum(s.tokens for s in result.samples)}
    out = Path(out_dir)
    _write_atomic(out / "stats" / f"{unit.name}.json", json.dumps(stats, indent=1, sort_keys=True) + "\n")
    table = pa.Table.from_pylist([s.to_row() for s in result.samples], schema=SAMPLE_SCHEMA)
    tmp = out / f".{unit.name}.parquet.tmp"
    pq.write_table(table, tmp, compression="zstd", row_group_size=1024)
    os.replace(tmp, out / f"{unit.name}.parquet")  # the unit is done once its shard exists
    return unit.name, stats["samples"], stats["tokens"]


def _execute(pending: list[Unit], store_dir: Path, truth_dir, out_dir: Path, config: SynthConfig,
             show_progress: bool, api_key: str | None) -> None:
    if not pending:
        return
    args = (str(store_dir), truth_dir, config.to_dict(), api_key)
    jobs = [_unit_json(u) for u in pending]
    if config.executor == "ray":
        _execute_ray(jobs, args, str(out_dir), config.workers)
        return
    from tqdm import tqdm

    bar = tqdm(total=sum(u.tokens for u in pending), unit="tok", unit_scale=True, desc="synth",
               disable=not show_progress)
    if config.workers == 1:
        state = _load_state(*args)
        for job in jobs:
            _run_unit(job, str(out_dir), state)
            bar.update(job["tokens"])
    else:
        with ProcessPoolExecutor(config.workers, initializer=_init_worker, initargs=args) as pool:
            futures = {pool.submit(_run_unit_in_worker, job, str(out_dir)): job for job in jobs}
            for future in as_completed(futures):
                future.result()
                bar.update(futures[future]["tokens"])
    bar.close()


def _execute_ray(jobs: list[dict], args: tuple, out_dir: str, workers: int) -> None:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray") from None

    @ray.remote
    def run_chunk(chunk: list[dict]) -> int:
        state = _load_state(*args)
        return sum(_run_unit(job, out_dir, state)[1] for job in chunk)

    chunks = [jobs[i::workers] for i in range(workers) if jobs[i::workers]]
    ray.get([run_chunk.remote(chunk) for chunk in chunks])


# --- summary ------------------------------------------------------------------------------------------


def summarise(out_dir: Path, units: list[Unit], store_dir: Path, store_summary: dict, seconds: float,
              heldout: dict) -> dict:
    """Planned vs achieved, from the shard files themselves (so a resumed run is summarised whole)."""
    names = [u.name for u in units]
    columns = ["tokens", "bucket", "task", "depth", "pages", "evidence", "followups"]
    tables = [pq.read_table(out_dir / f"{n}.parquet", columns=columns) for n in names]
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    stats, reasons, generator = Counter(), Counter(), Counter()
    for n in names:
        data = json.loads((out_dir / "stats" / f"{n}.json").read_text())
        stats.update(data["stats"])
        reasons.update(data["drop_reasons"])
        generator.update(data["generator"])
    tokens = sum(r["tokens"] for r in rows)
    by_bucket, by_task = Counter(), Counter()
    for r in rows:
        by_bucket[r["bucket"]] += r["tokens"]
        by_task[r["task"]] += r["tokens"]
    planned = planned_shares(units)
    evidence = [(r["evidence"], *(f["evidence"] for f in r["followups"] or ())) for r in rows]  # per question
    offsets = [evidence_offsets([PageRef(**p) for p in r["pages"]], e) for r, e in zip(rows, evidence)]
    summary = {
        "samples": len(rows), "tokens": tokens,
        "questions": len(rows) + stats.get("followups", 0),  # with follow-ups (questions_per_sample), more
        "tokens_by_bucket": {b: by_bucket.get(b, 0) for b in planned["share_by_bucket"]},
        "tokens_by_task": {t: by_task.get(t, 0) for t in planned["share_by_task"]},
        "share_by_bucket": {b: by_bucket.get(b, 0) / max(tokens, 1) for b in planned["share_by_bucket"]},
        "share_by_task": {t: by_task.get(t, 0) / max(tokens, 1) for t in planned["share_by_task"]},
        "samples_by_bucket": {b: sum(r["bucket"] == b for r in rows) for b in planned["share_by_bucket"]},
        "planned": planned,
        "error_by_bucket": plan_error(by_bucket, tokens, planned["tokens_by_bucket"], planned["tokens"]),
        "error_by_task": plan_error(by_task, tokens, planned["tokens_by_task"], planned["tokens"]),
        "dropped_unverified": stats.get("dropped_unverified", 0),
        "dropped_length": stats.get("dropped_length", 0),
        "no_candidate": stats.get("no_candidate", 0),
        **evidence_by_place(rows, offsets, units),
        "questions_without_evidence": sum(not pages for e in evidence for pages in e),
        "drop_reasons": dict(sorted(reasons.items())),
        "generator_stats": dict(sorted(generator.items())),
        "units": len(units), "seconds": round(seconds, 3),
        "samples_per_second": round(len(rows) / seconds, 3) if seconds else None,
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        "store": str(store_dir),
        "family": store_family(store_summary).name,
        "min_pixels": store_summary.get("config", {}).get("min_pixels"),
        "max_pixels": store_summary.get("config", {}).get("max_pixels"),
        "schema_version": SAMPLE_SCHEMA_VERSION,
        **heldout,
    }
    lengths = {"tokens": [r["tokens"] for r in rows], "bucket": [r["bucket"] for r in rows],
               "task": [r["task"] for r in rows], "depth": [r["depth"] for r in rows], "evidence_offsets": offsets}
    _write_atomic(out_dir / "samples_lengths.json", json.dumps(lengths) + "\n")
    _write_atomic(out_dir / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def evidence_by_place(rows: list[dict], offsets: list[list[int]], units: list[Unit]) -> dict:
    """Where the pages the answers need sit: every evidence page's offset (``layout.evidence_offsets``) counted by
    the plan's length buckets (a page past 3K tokens is read only in a sample that long) and by fifths of its own
    sample's length. A balanced mixture spreads them about evenly within samples, so few sit far into the longest
    bucket's range."""
    edges = sorted({0, *(u.bucket.low for u in units), *(u.bucket.high for u in units)})
    by_offset, by_fifth = [0] * (len(edges) - 1), [0] * 5
    for row, found in zip(rows, offsets):
        for offset in found:
            by_offset[min(len(by_offset) - 1, bisect.bisect_right(edges, offset) - 1)] += 1
            by_fifth[min(4, 5 * offset // row["tokens"])] += 1
    return {"evidence_pages_by_offset": {"edges": edges, "pages": by_offset}, "evidence_pages_by_fifth": by_fifth}


def plan_error(achieved: dict, achieved_total: int, planned: dict, planned_total: int) -> dict:
    """Achieved minus planned, per bucket or task: in tokens, and in share points (percent of all tokens)."""
    return {k: {"tokens": achieved.get(k, 0) - tokens,
                "share_points": round(100 * (achieved.get(k, 0) / max(achieved_total, 1) - tokens / planned_total), 3)}
            for k, tokens in planned.items()}
