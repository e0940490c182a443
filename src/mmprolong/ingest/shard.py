"""One shard task: render its documents, write ``shard-K.parquet`` and ``_shards/K.json``.

A task knows nothing of its executor; it runs the same in a local worker process and on a Ray worker.
In ``isolate`` mode (the retry after a worker crash) each file is processed in a child process of its own,
so a file that crashes pdfium is reported instead of taking the shard down again.
"""

from __future__ import annotations

import logging
import os
import resource
import select
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mmprolong.ingest.config import IngestConfig
from mmprolong.ingest.pdf import SkipReport, process_file
from mmprolong.ingest.store import ShardWriter, shard_path, shard_report_path, write_json
from mmprolong.records import PageRecord

logger = logging.getLogger(__name__)

FileProcessor = Callable[[str, str, IngestConfig], Iterator[PageRecord | SkipReport]]
Progress = Callable[[int], None]
CRASH_REASON = "the worker process crashed on this file (e.g. a segfault or out of memory in pdfium)"
_PROGRESS_EVERY_PAGES = 16


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """Shard ``index``: the documents ``files`` (relative posix paths, in order) of ``pdf_dir``."""

    index: int
    files: tuple[str, ...]
    pdf_dir: str
    out_dir: str
    config: IngestConfig


def run_shard(spec: ShardSpec, *, isolate: bool = False, progress: Progress | None = None,
              processor: FileProcessor = process_file) -> dict:
    """Render the shard's documents into its Parquet file and write its report; returns the report."""
    start = time.perf_counter()
    out_dir = Path(spec.out_dir)
    writer = ShardWriter(shard_path(out_dir, spec.index))
    report = {"shard": spec.index, "files": len(spec.files), "documents": 0, "pages": 0, "vision_tokens": 0,
              "skipped": 0, "pages_skipped": 0, "errors": []}
    try:
        for rel in spec.files:
            items = _isolated(processor, spec, rel) if isolate else processor(spec.pdf_dir, rel, spec.config)
            _add_document(items, writer, report, progress)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    report["seconds"] = round(time.perf_counter() - start, 3)
    write_json(shard_report_path(out_dir, spec.index), report)  # written last: marks the shard done
    logger.debug("shard %d: %d pages, %d files skipped", spec.index, report["pages"], report["skipped"])
    return report


def _add_document(items, writer: ShardWriter, report: dict, progress: Progress | None) -> None:
    kept = unreported = 0
    file_skipped = False
    for item in items:
        if isinstance(item, SkipReport):
            report["errors"].append(item.to_json())
            if item.page is None:
                report["skipped"] += 1
                file_skipped = True
            else:
                report["pages_skipped"] += 1
            continue
        writer.add(item)
        kept += 1
        report["pages"] += 1
        report["vision_tokens"] += item.vision_tokens
        unreported += 1
        if progress and unreported == _PROGRESS_EVERY_PAGES:
            progress(unreported)
            unreported = 0
    if progress and unreported:
        progress(unreported)
    if kept:
        report["documents"] += 1
    elif not file_skipped:
        report["skipped"] += 1  # every page of it was skipped


def _isolated(processor: FileProcessor, spec: ShardSpec, rel: str) -> list[PageRecord | SkipReport]:
    """Run ``processor`` on one file in a fresh child process; a crash becomes a SkipReport."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(1, mp_context=mp_context(), initializer=init_worker,
                             initargs=(spec.config.max_worker_memory_bytes, os.getpid())) as pool:
        try:
            return pool.submit(_collect, processor, spec.pdf_dir, rel, spec.config).result()
        except BrokenProcessPool:
            logger.warning("%s: worker process crashed; file skipped", rel)
            return [SkipReport(rel, CRASH_REASON)]


def _collect(processor: FileProcessor, pdf_dir: str, rel: str, config: IngestConfig) -> list:
    return list(processor(pdf_dir, rel, config))


def mp_context():
    """forkserver: workers start from a clean process (no inherited threads or pdfium state), cheaply."""
    import multiprocessing

    return multiprocessing.get_context("forkserver")


def init_worker(memory_limit_bytes: int, parent_pid: int) -> None:
    """Worker initializer: cap the address space (a runaway page fails instead of swapping the machine), and exit
    as soon as ``parent_pid`` (the run) dies, so a run killed with SIGKILL leaves no workers behind."""
    if memory_limit_bytes > 0:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit_bytes if hard == resource.RLIM_INFINITY else min(memory_limit_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if hasattr(os, "pidfd_open"):  # Linux >= 5.3; elsewhere orphans finish their task and idle
        try:
            parent = os.pidfd_open(parent_pid)
        except ProcessLookupError:
            os._exit(1)
        threading.Thread(target=_exit_when_readable, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_when_readable(fd: int) -> None:
    select.select([fd], [], [])  # a pidfd turns readable when its process ends
    os._exit(1)
