"""The quickstart's LongPT step on a CPU: what its time is spent on, and what the DataLoader's workers and the vision
tower's patch embedding change in it.

    mmprolong quickstart --out runs/quickstart          # first: the data and the training config
    python benchmarks/longpt_step.py --run runs/quickstart [--workers 0 1 2] [--warmup 10] [--steps 40]
                                     [--out benchmarks/results/longpt-step.json]

Each variant builds the quickstart's trainer afresh (RUN/train-long/config.yaml, the shipped starting point, an
empty feature memo), runs ``--warmup`` steps, then times ``--steps`` more: the mean step, and within it the frozen
vision tower's share (``train.frozen_vision``: the pages not yet memoised, encoded one by one) with the number of
pages it encoded. Variants: DataLoader workers (``data.num_workers``; 0 makes the rows in the training process) x
the patch embedding as the matmul it is (``models.patch_embed``, what mmprolong runs) or as transformers'
``nn.Conv3d`` (before 2026-12-06). The steps train the same rows in every variant (the loader's rows do not depend
on its workers), so the variants differ in speed only. The early steps encode more pages than the late ones (the
memo fills): the tower's share over a whole run is smaller (the quickstart's summary: ``vision_features``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from common import report

from mmprolong.startpoint import SHIPPED
from mmprolong.train.config import TrainConfig
from mmprolong.train.loss import answer_loss_sum
from mmprolong.train.parallelize import ParallelDims, init_distributed
from mmprolong.train.trainer import Trainer


class TimedTower:
    """The trainer's feature memo, timed: seconds spent in it (the tower runs inside for the pages not memoised)."""

    def __init__(self, features):
        self.features, self.seconds = features, 0.0

    def __call__(self, model, batch):
        start = time.perf_counter()
        try:
            return self.features(model, batch)
        finally:
            self.seconds += time.perf_counter() - start


def measure(run: Path, workers: int, patch_embedding: str, *, warmup: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        config = TrainConfig.from_yaml(run / "train-long" / "config.yaml", {
            "run_dir": work, "model.path": str(SHIPPED), "data.data_dir": str(run / "data-long"),
            "data.num_workers": workers, "checkpoint.resume": "never", "logging.progress_bar": False,
            "logging.tensorboard": False, "logging.plot": False})
        config.validate()
        world = init_distributed(0, 1, 0, dims=ParallelDims(1, 1), device=torch.device("cpu"), backend="auto")
        trainer = Trainer.build(config, world)
        try:
            if patch_embedding == "conv3d":
                trainer.model.model.visual.patch_embed.proj.__class__ = torch.nn.Conv3d
            tower = TimedTower(trainer.vision_features)
            trainer.loss_fn = partial(answer_loss_sum, images=tower)
            trainer.metrics.open(0)
            for _ in range(warmup):
                trainer.train_step()
            tower.seconds, encoded = 0.0, trainer.vision_features.encoded
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
            seconds = time.perf_counter() - start
            encoded = trainer.vision_features.encoded - encoded
        finally:
            trainer.close()
    return {"workers": workers, "patch embedding": patch_embedding, "steps": steps,
            "step s": round(seconds / steps, 3), "tower s a step": round(tower.seconds / steps, 3),
            "pages encoded a step": round(encoded / steps, 1),
            "tower ms a page": round(1e3 * tower.seconds / encoded, 1) if encoded else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a quickstart's output folder")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader workers to compare")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=40, help="timed steps")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/longpt-step.json"))
    args = parser.parse_args()
    if not (args.run / "train-long" / "config.yaml").is_file():
        sys.exit(f"{args.run} holds no train-long/config.yaml: run `mmprolong quickstart --out {args.run}` first")
    rows = [measure(args.run, workers, embedding, warmup=args.warmup, steps=args.steps)
            for embedding in ("matmul", "conv3d") for workers in args.workers]
    report(rows, args.out, run=str(args.run), threads=torch.get_num_threads(), warmup=args.warmup)


if __name__ == "__main__":
    main()
