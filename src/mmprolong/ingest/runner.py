"""ingest(): find the PDFs, check or record the manifest, run the shards that are not done, write the summary."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from mmprolong.errors import DataError, ResumeError
from mmprolong.ingest.config import IngestConfig
from mmprolong.ingest.executors import run_local, run_ray
from mmprolong.ingest.pdf import process_file
from mmprolong.ingest.shard import FileProcessor, ShardSpec, run_shard
from mmprolong.ingest.store import (
    ERRORS,
    MANIFEST,
    SHARD_REPORTS,
    SUMMARY,
    remove_temp_files,
    shard_report_path,
    write_json,
)
from mmprolong.records import PAGE_SCHEMA_VERSION

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class IngestSummary:
    """Totals of a finished page store (``OUT/summary.json``)."""

    files: int  # PDFs found under pdf_dir
    documents: int  # files with at least one page stored
    pages: int  # pages stored (rows)
    skipped: int  # files with no page stored; each has lines in errors.jsonl
    pages_skipped: int  # single pages left out of otherwise kept documents
    vision_tokens: int  # sum of the pages' vision tokens
    shards: int
    shards_resumed: int  # shards already done before this call
    seconds: float  # wall time of the call that finished the store
    pages_per_second: float  # pages rendered by that call / seconds
    schema_version: str
    out_dir: str
    pdf_dir: str  # the ingested folder, resolved: synth looks there for ground truth beside the PDFs
    config: dict


def ingest(pdf_dir: str | Path, out_dir: str | Path, config: IngestConfig, *, overwrite: bool = False,
           show_progress: bool = True, processor: FileProcessor = process_file) -> IngestSummary:
    """Render every PDF under ``pdf_dir`` into a page store in ``out_dir``; resumes an interrupted run.

    ``overwrite`` discards a store made from other inputs or settings instead of raising ResumeError.
    ``processor`` turns one file into records (a module-level function, so worker processes can import it).
    """
    config.validate()
    start = time.perf_counter()
    pdf_dir, out_dir = Path(pdf_dir), Path(out_dir)
    inputs = discover_pdfs(pdf_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _store_lock(out_dir):
        prepare_store(out_dir, inputs, config, overwrite=overwrite)
        specs = plan_shards(pdf_dir, out_dir, inputs, config)
        todo = [spec for spec in specs if not shard_report_path(out_dir, spec.index).is_file()]
        if not todo and (out_dir / SUMMARY).is_file():
            logger.info("%s is complete: nothing to do", out_dir)
            return IngestSummary(**json.loads((out_dir / SUMMARY).read_text()))
        logger.info("ingest %d PDFs from %s into %d shards (%d already done), %s executor, %d workers",
                    len(inputs), pdf_dir, len(specs), len(specs) - len(todo), config.executor, config.workers)
        pages = _run_shards(todo, config, show_progress, processor)
        summary = write_summary(out_dir, specs, config, seconds=time.perf_counter() - start, pages_run=pages,
                                shards_resumed=len(specs) - len(todo))
    logger.info("ingest done: %d documents, %d pages, %d files skipped, %.1f pages/s", summary.documents,
                summary.pages, summary.skipped, summary.pages_per_second)
    return summary


def discover_pdfs(pdf_dir: Path) -> list[tuple[str, int]]:
    """(relative posix path, size in bytes) of every ``*.pdf`` (any case) under ``pdf_dir``, sorted by path."""
    if not pdf_dir.is_dir():
        raise DataError(f"pdf_dir {pdf_dir}: no such folder")
    found = []
    for root, dirs, names in os.walk(pdf_dir):
        dirs.sort()
        for name in names:
            path = Path(root) / name
            if name.lower().endswith(".pdf") and path.is_file():
                found.append((path.relative_to(pdf_dir).as_posix(), path.stat().st_size))
    if not found:
        raise DataError(f"pdf_dir {pdf_dir}: no *.pdf files in it or its subfolders")
    return sorted(found)


def prepare_store(out_dir: Path, inputs: list[tuple[str, int]], config: IngestConfig, *, overwrite: bool) -> None:
    """Record the manifest of a new store, or check that an existing one was made from the same inputs."""
    manifest = {"schema_version": PAGE_SCHEMA_VERSION, "config": config.output_fields(),
                "config_fingerprint": _fingerprint(config.output_fields()), "files": [list(f) for f in inputs]}
    manifest_path = out_dir / MANIFEST
    if overwrite:
        _clear_store(out_dir)
    elif manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        changes = _describe_changes(old, manifest)
        if changes:
            raise ResumeError(f"{out_dir} holds a page store made from other inputs or settings ({changes}): "
                              "use a new output folder, or overwrite=True (--overwrite) to discard it")
    elif any(out_dir.glob("shard-*.parquet")):
        raise ResumeError(f"{out_dir} holds shards but no {MANIFEST}, so a resume cannot be checked: "
                          "use a new output folder, or overwrite=True (--overwrite) to discard them")
    remove_temp_files(out_dir)
    if not manifest_path.is_file():
        write_json(manifest_path, manifest)


def plan_shards(pdf_dir: Path, out_dir: Path, inputs: list[tuple[str, int]], config: IngestConfig) -> list[ShardSpec]:
    """Shard k holds documents [k * docs_per_shard, (k + 1) * docs_per_shard) of the sorted inputs."""
    step = config.docs_per_shard
    files = [rel for rel, _ in inputs]
    return [ShardSpec(index=k, files=tuple(files[k * step:(k + 1) * step]), pdf_dir=str(pdf_dir.resolve()),
                      out_dir=str(out_dir.resolve()), config=config) for k in range((len(files) + step - 1) // step)]


def write_summary(out_dir: Path, specs: list[ShardSpec], config: IngestConfig, *, seconds: float, pages_run: int,
                  shards_resumed: int) -> IngestSummary:
    """Rebuild errors.jsonl and summary.json from every shard's report (so both are whole after a resume)."""
    reports = [json.loads(shard_report_path(out_dir, spec.index).read_text()) for spec in specs]
    write_json(out_dir / ERRORS, [error for report in reports for error in report["errors"]], lines=True)
    totals = {key: sum(report[key] for report in reports)
              for key in ("files", "documents", "pages", "skipped", "pages_skipped", "vision_tokens")}
    summary = IngestSummary(**totals, shards=len(specs), shards_resumed=shards_resumed, seconds=round(seconds, 3),
                            pages_per_second=round(pages_run / seconds, 2) if seconds > 0 else 0.0,
                            schema_version=PAGE_SCHEMA_VERSION, out_dir=str(out_dir),
                            pdf_dir=specs[0].pdf_dir if specs else "", config=config.to_dict())
    write_json(out_dir / SUMMARY, dataclasses.asdict(summary))  # written last: marks the store complete
    return summary


def _run_shards(specs: list[ShardSpec], config: IngestConfig, show_progress: bool, processor: FileProcessor) -> int:
    """Run the shards with a pages/s progress bar; returns the pages they stored."""
    from tqdm.auto import tqdm

    stored = 0
    with tqdm(desc="ingest", unit="page", disable=not show_progress, postfix={"shards": f"0/{len(specs)}"}) as bar:
        done = 0

        def on_shard(report: dict) -> None:
            nonlocal stored, done
            stored += report["pages"]
            done += 1
            bar.set_postfix(shards=f"{done}/{len(specs)}", refresh=False)

        on_pages = bar.update if show_progress else None
        task = functools.partial(run_shard, processor=processor)
        if config.executor == "ray":
            run_ray(specs, workers=config.workers, on_shard=on_shard, on_pages=on_pages, task=task)
        else:
            run_local(specs, workers=config.workers, memory_limit_bytes=config.max_worker_memory_bytes,
                      on_shard=on_shard, on_pages=on_pages, task=task)
    return stored


def _describe_changes(old: dict, new: dict) -> str:
    parts = []
    if old.get("schema_version") != new["schema_version"]:
        parts.append(f"schema version {old.get('schema_version')} -> {new['schema_version']}")
    old_config, new_config = old.get("config", {}), new["config"]
    for key in sorted(set(old_config) | set(new_config)):
        if old_config.get(key) != new_config.get(key):
            parts.append(f"config {key}: {old_config.get(key)!r} -> {new_config.get(key)!r}")
    old_files = {path: size for path, size in old.get("files", [])}
    new_files = {path: size for path, size in new["files"]}
    for label, paths in (("added", sorted(set(new_files) - set(old_files))),
                         ("removed", sorted(set(old_files) - set(new_files))),
                         ("changed size", sorted(p for p in set(old_files) & set(new_files)
                                                 if old_files[p] != new_files[p]))):
        if paths:
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            parts.append(f"{len(paths)} file(s) {label}: {shown}")
    return "; ".join(parts)


def _fingerprint(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _clear_store(out_dir: Path) -> None:
    """Delete what ingest writes (and nothing else) from ``out_dir``."""
    for path in out_dir.glob("shard-*.parquet"):
        path.unlink()
    for name in (MANIFEST, SUMMARY, ERRORS):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / SHARD_REPORTS, ignore_errors=True)


@contextlib.contextmanager
def _store_lock(out_dir: Path):
    """Hold an exclusive lock on ``out_dir`` so two runs never write one store (released even on kill -9)."""
    with open(out_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResumeError(f"{out_dir} is being written by another ingest run; wait for it or use another "
                              "output folder") from None
        yield
