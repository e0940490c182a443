"""decontaminate(): fingerprint the evaluation documents, index them, stream the page store past the index,
write the report and the exclusion list.

Output folder (REPORT_DIR):
  manifest.json        inputs (store shards, evaluation files with sizes) and settings; a rerun with the same
                       ones resumes, other ones start over
  _eval/NNNNN.pkl      fingerprints of a chunk of evaluation documents (a finished task)
  eval_index.pkl       the evaluation index every store task loads
  _store/NNNNN.json    the pair records of a run of store shards (a finished task)
  report.json, report.md, exclude.txt
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

from mmprolong.decontam.config import DecontamConfig
from mmprolong.decontam.index import EvalIndex
from mmprolong.decontam.report import build_report, write_report
from mmprolong.decontam.sources import EvalDoc, discover
from mmprolong.decontam.tasks import EvalTaskSpec, StoreTaskSpec, fingerprint_eval, read_eval_output, scan_store
from mmprolong.errors import DataError
from mmprolong.ingest.executors import run_local, run_ray
from mmprolong.ingest.store import shard_files, write_json

log = logging.getLogger(__name__)

EVAL_DOCS_PER_TASK = 16
INDEX = "eval_index.pkl"


def decontaminate(store_dir: str | Path, sources: list[str | Path], out_dir: str | Path, config: DecontamConfig,
                  *, show_progress: bool = True) -> dict:
    """Match the page store's documents against every evaluation document in ``sources``; returns the summary."""
    config.validate()
    start = time.perf_counter()
    store_dir, out_dir = Path(store_dir).resolve(), Path(out_dir)
    shards = shard_files(store_dir)
    if not sources:
        raise DataError("give at least one evaluation source (--against SOURCE)")
    out_dir.mkdir(parents=True, exist_ok=True)
    docs, described = [], []
    for source in sources:
        found, info = discover(source, out_dir)
        docs += found
        described.append(info)
    step = shards_per_task(store_dir, shards, config)
    _prepare(out_dir, _manifest(config, shards, docs) | {"shards_per_task": step})
    index = _index_evaluation(docs, described, out_dir, config, show_progress)
    policy = image_policy(config, index)
    log.info("evaluation: %d documents (%d without a text layer), %d pages; training page images hashed: %s",
             len(index.docs), index.textless_documents, sum(d.pages for d in index.docs), policy["policy"])
    reports = _scan_store(shards, step, out_dir, config, policy["policy"] == "all", show_progress)
    training = {k: sum(r[k] for r in reports) for k in ("documents", "pages", "text_pages", "image_pages",
                                                        "cpu_seconds")}
    report = build_report(store=str(store_dir), sources=described, docs=index.docs,
                          pairs=[p for r in reports for p in r["pairs"]], training=training, image_policy=policy,
                          config=config.to_dict(), seconds=time.perf_counter() - start)
    summary = write_report(out_dir, report)
    log.info("decontaminate: %d matches (%s), %d training documents excluded -> %s", summary["matches"],
             summary["matches_by_kind"], summary["excluded_documents"], summary["exclusion_list"])
    return summary


def _index_evaluation(docs: list[EvalDoc], described: list[dict], out_dir: Path, config: DecontamConfig,
                      show_progress: bool) -> EvalIndex:
    """Fingerprint the evaluation documents in tasks, index them, save the index for the store tasks; the
    documents that could not be read are listed under their source (``described[i]["skipped"]``)."""
    specs = [EvalTaskSpec(k, tuple(docs[i:i + EVAL_DOCS_PER_TASK]), str(out_dir / "_eval" / f"{k:05d}.pkl"), config)
             for k, i in enumerate(range(0, len(docs), EVAL_DOCS_PER_TASK))]
    _run([s for s in specs if not Path(s.out_path).is_file()], fingerprint_eval, config, "evaluation pages",
         show_progress)
    outputs = [read_eval_output(s.out_path) for s in specs]
    prints = [p for o in outputs for p in o["prints"]]
    errors = [e for o in outputs for e in o["errors"]]
    for info in described:
        info["skipped"] = [e for e in errors if e["source"] == info["source"]]
    if not prints:
        raise DataError(f"no evaluation document could be read: {errors[:3]}")
    index = EvalIndex(prints, config)
    index.save(out_dir / INDEX)
    return index


def _scan_store(shards: list[Path], step: int, out_dir: Path, config: DecontamConfig, hash_all_pages: bool,
                show_progress: bool) -> list[dict]:
    """Run the store tasks (``step`` shards each) that are not done; returns every task's report, in order."""
    specs = [StoreTaskSpec(k, tuple(str(p) for p in shards[i:i + step]), str(out_dir / INDEX),
                           str(out_dir / "_store" / f"{k:05d}.json"), config, hash_all_pages)
             for k, i in enumerate(range(0, len(shards), step))]
    _run([s for s in specs if not Path(s.out_path).is_file()], scan_store, config, "training pages", show_progress)
    return [json.loads(Path(s.out_path).read_text()) for s in specs]


def image_policy(config: DecontamConfig, index: EvalIndex) -> dict:
    """Which training pages get an image hash, and why."""
    if config.image_pages != "auto":
        return {"policy": config.image_pages, "why": f"image_pages={config.image_pages}"}
    if index.textless_documents:
        return {"policy": "all", "why": f"{index.textless_documents} evaluation documents have text on under half "
                                        "their pages, so a training copy with text can match them only by its images"}
    return {"policy": "textless", "why": "every evaluation document has a text layer; the pages of training "
                                         "documents without one (scans) are hashed"}


def shards_per_task(store_dir: Path, shards: list[Path], config: DecontamConfig) -> int:
    """Consecutive whole shards of about ``pages_per_task`` pages a task (by the store's mean pages per shard,
    read from its summary rather than from every shard's footer), fewer so that every worker gets 4 tasks when
    the store has the shards for it."""
    summary = json.loads((store_dir / "summary.json").read_text())
    per_shard = max(1, summary.get("pages", 0)) / max(1, len(shards))
    return max(1, min(math.floor(config.pages_per_task / per_shard), math.ceil(len(shards) / (4 * config.workers))))


def _run(specs: list, task, config: DecontamConfig, desc: str, show_progress: bool) -> None:
    if not specs:
        return
    from tqdm.auto import tqdm

    with tqdm(desc=desc, unit="page", disable=not show_progress) as bar:
        on_pages = bar.update if show_progress else None
        if config.executor == "ray":
            run_ray(specs, workers=config.workers, on_shard=_ignore, on_pages=on_pages, task=task)
        else:  # no address-space cap: ingest's guards pdfium, and these tasks hold the index (numpy, scipy)
            run_local(specs, workers=config.workers, memory_limit_bytes=0, on_shard=_ignore, on_pages=on_pages,
                      task=task)


def _ignore(report: dict) -> None:
    """Tasks write their outputs themselves; the runner reads them back in order once all are done."""


def _manifest(config: DecontamConfig, shards: list[Path], docs: list[EvalDoc]) -> dict:
    return {"config": config.match_fields(),
            "store": [[p.name, p.stat().st_size] for p in shards],
            "evaluation": [[d.source, d.name, d.kind, d.doc_id, [[p, Path(p).stat().st_size] for p in d.paths]]
                           for d in docs]}


def _prepare(out_dir: Path, manifest: dict) -> None:
    """Keep finished tasks when the inputs and settings are those of the run that made them; else start over."""
    path = out_dir / "manifest.json"
    if path.is_file() and json.loads(path.read_text()) == manifest:
        return
    if path.is_file():
        log.info("%s holds a run with other inputs or settings: starting over", out_dir)
    for folder in ("_eval", "_store"):
        shutil.rmtree(out_dir / folder, ignore_errors=True)
    (out_dir / INDEX).unlink(missing_ok=True)
    write_json(path, manifest)
