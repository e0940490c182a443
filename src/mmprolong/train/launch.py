"""What a launcher (torchrun, or srun running torchrun) tells each process, and how such a process ends.

Kept apart from the trainer so the CLI and the quickstart read it without importing torch.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

T = TypeVar("T")


def distributed_env() -> dict:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them (one process without them)."""
    return {"rank": int(os.environ.get("RANK", "0")), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "local_rank": int(os.environ.get("LOCAL_RANK", "0"))}


def exit_rank(code: int) -> NoReturn:
    """End one process of a multi-process run with ``code``: flush what it wrote, then leave without the
    interpreter's teardown (``os._exit``), which can abort it.

    Why: a gloo process group's worker threads outlive Python. ``destroy_process_group`` does not stop them (gloo's
    shutdown does nothing, and torch's DTensor caches keep the DeviceMesh, hence the group, alive). Such a worker
    frees each finished collective, and with it tensors whose Python objects torch keeps alive from C++ once Python
    dropped them: ``~AsyncAllgatherWork`` -> ``decref_pyobject``, which takes the GIL (gdb on a 2-process train: 18
    times per run, the last 0.2 s before ``Py_FinalizeEx``). A worker still waiting for the GIL when the main
    thread starts finalizing is ended by CPython (3.11, 3.12) with ``pthread_exit``, whose forced unwinding reaches
    that noexcept destructor and calls ``std::terminate``: "terminate called without an active exception",
    SIGABRT, exit 1 under torchrun. It takes the worker's request to fall after the main thread's last bytecode and
    before finalization, a short stretch unless the busy machine deschedules the main thread in it: the rare CI
    flake of test_fsdp2_on_two_processes_matches_one_process (tests/train/test_launch.py forces it).
    Without the teardown no thread is told to exit. Every output is closed before this (summary, metrics,
    checkpoints, the final model); stdout, stderr and the log handlers are flushed here.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def leader_barrier(env: dict):
    """Under torchrun: a key-value store hosted by rank 0 beside torchrun's own (MASTER_PORT + 1), on which the
    other ranks block until rank 0 has done a step alone (made the data, evaluated), however long that takes;
    None for one process. Keep it alive to the end of the run: rank 0 hosts it."""
    if env["world_size"] == 1:
        return None
    from datetime import timedelta

    from torch.distributed import TCPStore

    return TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500")) + 1,
                    env["world_size"], env["rank"] == 0, timeout=timedelta(days=7), wait_for_workers=False)


def lead(barrier, env: dict, key: str, step: Callable[[], T]) -> T | None:
    """Rank 0 runs ``step`` and then releases ``key`` (with the failure, if it raised: the others fail too instead
    of waiting); the other ranks block until it is released. ``step``'s result on rank 0, None elsewhere."""
    if env["rank"] != 0:
        failed = barrier.get(key).decode()  # blocks until rank 0 sets it
        if failed:
            raise RuntimeError(f"rank 0 failed at {key}: {failed}")
        return None
    try:
        result = step()
    except BaseException as exc:
        if barrier is not None:
            barrier.set(key, f"{type(exc).__name__}: {exc}")
        raise
    if barrier is not None:
        barrier.set(key, "")
    return result
