"""Entry point of the train stage: ``train(config) -> summary``, as one process or one of many under torchrun.

    mmprolong train --config recipes/debug-cpu.yaml --run-dir runs/debug --data.data-dir data
    torchrun --nproc_per_node 8 -m mmprolong.cli train --config recipes/mmprolong-7b.yaml --run-dir runs/7b ...

The launcher's RANK / WORLD_SIZE / LOCAL_RANK are read by ``mmprolong.train.launch.distributed_env`` and passed
to ``train`` as arguments (MASTER_ADDR / MASTER_PORT are read by torch's process-group init itself).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from mmprolong.errors import ConfigError
from mmprolong.train.config import TrainConfig, micro_batches_per_step

log = logging.getLogger(__name__)


def train(config: TrainConfig, *, rank: int = 0, world_size: int = 1, local_rank: int = 0) -> dict:
    """Continue pre-training ``config.model`` on ``config.data``; returns the summary (also RUN/summary.json).

    Every process of a torchrun job calls this with its own rank. Raises ConfigError before any work for a bad
    config, TrainingDivergedError on a NaN/inf loss (after checkpointing the last good state).
    """
    import torch.distributed as dist

    from mmprolong.train.parallelize import ParallelDims, init_distributed
    from mmprolong.train.trainer import Trainer

    config.validate()
    micro_batches_per_step(config, world_size)
    device = resolve_device(config.device)
    owns_group = world_size > 1 and not dist.is_initialized()
    world = init_distributed(rank, world_size, local_rank, dims=ParallelDims(world_size, config.parallel.sp_degree),
                             device=device, backend=config.parallel.backend)
    trainer = None
    try:
        trainer = Trainer.build(config, world)
        return trainer.train()
    finally:
        if trainer is not None:
            trainer.close()
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def shared_process_group(fields: dict, env: dict) -> Iterator[None]:
    """Under torchrun: one process group for several ``train`` calls in the same processes (``mmprolong
    reproduce`` trains one arm after another). Alone, each ``train`` starts and destroys a group of its own, and
    a group started after a destroyed one was seen to hang the second arm (2 gloo processes, torch 2.13); a group
    that is already there is left in place by ``train``. ``fields``: the TrainConfig fields (device, backend)."""
    import torch.distributed as dist

    from mmprolong.train.parallelize import ParallelDims, init_distributed

    if env["world_size"] == 1 or dist.is_initialized():
        yield
        return
    config = TrainConfig.from_dict(fields, validate=False)
    init_distributed(env["rank"], env["world_size"], env["local_rank"],
                     dims=ParallelDims(env["world_size"], config.parallel.sp_degree),
                     device=resolve_device(config.device), backend=config.parallel.backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", device, "no CUDA device is available: use 'cpu' or 'auto'")
    return device
