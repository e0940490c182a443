"""Where shard tasks run: local worker processes or a Ray cluster. Executors only decide that.

A task is ``task(spec, *, isolate, progress) -> report`` for any spec with an ``index``: ingest's
``run_shard`` (bound to its file processor) and decontamination's fingerprinting tasks both run here.
Both executors retry the shards a crashed worker took down in ``isolate`` mode (ingest then gives each file a
child process of its own, so the file that crashed pdfium is reported and every other page is kept).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence

from mmprolong.errors import DataError, MissingDependencyError
from mmprolong.ingest.shard import init_worker, mp_context

logger = logging.getLogger(__name__)

OnShard = Callable[[dict], None]  # called with each finished shard's report
OnPages = Callable[[int], None]  # called as pages are rendered
ShardTask = Callable[..., dict]  # task(spec, *, isolate: bool, progress: OnPages | None) -> the shard's report
_POLL_S = 0.2


def run_local(specs: Sequence, *, workers: int, memory_limit_bytes: int, on_shard: OnShard,
              on_pages: OnPages | None, task: ShardTask) -> None:
    """Run ``task`` on each spec on ``workers`` local processes."""
    crashed = _run_pool(specs, workers, memory_limit_bytes, False, on_shard, on_pages, task)
    if crashed:
        logger.warning("a worker crashed: redoing %d shard(s) in isolate mode", len(crashed))
        crashed = _run_pool(crashed, workers, memory_limit_bytes, True, on_shard, on_pages, task)
    if crashed:
        raise DataError(f"shards {[s.index for s in crashed]}: the worker crashed outside any file's processing "
                        "(too small max_worker_memory_bytes?); finished shards are kept, rerun to resume")


def _run_pool(specs, workers, memory_limit_bytes, isolate, on_shard, on_pages, task) -> list:
    """Run ``specs`` on a process pool; the specs a crashed worker took down are returned."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = mp_context()
    crashed = []
    with contextlib.ExitStack() as stack:
        # Pages/s reach the parent through a manager queue; without a listener, skip its ~0.15 s start.
        queue = stack.enter_context(context.Manager()).Queue() if on_pages else None
        pool = ProcessPoolExecutor(min(workers, len(specs)), mp_context=context, initializer=init_worker,
                                   initargs=(memory_limit_bytes, os.getpid()))
        stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        progress = _QueueProgress(queue) if queue is not None else None
        futures = {pool.submit(task, spec, isolate=isolate, progress=progress): spec for spec in specs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            _drain(queue, on_pages)
            for future in sorted(done, key=lambda f: futures[f].index):
                try:
                    on_shard(future.result())
                except BrokenProcessPool:
                    crashed.append(futures[future])
        _drain(queue, on_pages)
    return sorted(crashed, key=lambda s: s.index)


class _QueueProgress:
    """Picklable progress callback: a worker puts page counts on a manager queue the parent drains."""

    def __init__(self, queue):
        self.queue = queue

    def __call__(self, pages: int) -> None:
        self.queue.put(pages)


def _drain(queue, on_pages: OnPages | None) -> None:
    import queue as queue_module

    while queue is not None:
        try:
            on_pages(queue.get_nowait())
        except queue_module.Empty:
            return


def run_ray(specs: Sequence, *, workers: int, on_shard: OnShard, on_pages: OnPages | None, task: ShardTask) -> None:
    """Run ``task`` on each spec as Ray tasks (1 CPU each, at most ``workers`` in flight) on the current Ray cluster.

    The inputs and the output folder must be on a filesystem every Ray node sees. Connects to the cluster
    Ray finds (``ray.init()``: RAY_ADDRESS or a new local instance) unless Ray is already initialised.
    """
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray") from None

    started = not ray.is_initialized()
    if started:
        ray.init()
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        crashed = _run_ray_tasks(ray, remote, task, specs, workers, False, on_shard, on_pages)
        if crashed:
            logger.warning("a Ray worker crashed: redoing %d shard(s) in isolate mode", len(crashed))
            crashed = _run_ray_tasks(ray, remote, task, crashed, workers, True, on_shard, on_pages)
        if crashed:
            raise DataError(f"shards {[s.index for s in crashed]}: the Ray worker crashed outside any file's "
                            "processing; finished shards are kept, rerun to resume")
    finally:
        if started:
            ray.shutdown()


def _call(task: ShardTask, spec, isolate: bool) -> dict:
    """The Ray remote function: Ray wraps functions, not the partials ``task`` may be."""
    return task(spec, isolate=isolate, progress=None)


def _run_ray_tasks(ray, remote, task, specs, workers, isolate, on_shard, on_pages) -> list:
    waiting = list(specs)
    in_flight = {}
    crashed = []
    while waiting or in_flight:
        while waiting and len(in_flight) < workers:
            spec = waiting.pop(0)
            in_flight[remote.remote(task, spec, isolate)] = spec
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            spec = in_flight.pop(ref)
            try:
                report = ray.get(ref)
            except ray.exceptions.WorkerCrashedError:
                crashed.append(spec)
                continue
            if on_pages:
                on_pages(report["pages"])  # Ray tasks report progress when they finish
            on_shard(report)
    return sorted(crashed, key=lambda s: s.index)
