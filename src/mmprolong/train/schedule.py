"""The token-budget schedule: how many steps a run has and the learning rate of each.

    steps = ceil(budget_tokens / global_batch_tokens)      # paper: 5 * 2^30 / (32 * 131072) = 1280
    warm-up: round(warmup_fraction * steps) steps, lr rising linearly to the peak (step 0 already at peak/warmup)
    then cosine or linear from the peak down to min_lr at the last step, or constant at the peak.

``LRSchedule`` sets the learning rate of an optimizer step by step; its state is the number of steps taken, so a
resumed run continues the same curve.
"""

from __future__ import annotations

import math
from typing import Literal


def total_steps(budget_tokens: int, global_batch_tokens: int) -> int:
    """Optimizer steps of a run: ceil(budget_tokens / global_batch_tokens)."""
    if budget_tokens <= 0 or global_batch_tokens <= 0:
        raise ValueError("budget_tokens and global_batch_tokens must be positive")
    return -(-budget_tokens // global_batch_tokens)


def lr_at(step: int, *, peak_lr: float, min_lr: float, total: int, warmup: int,
          decay: Literal["cosine", "linear", "constant"]) -> float:
    """Learning rate of the 0-based optimizer ``step`` of a ``total``-step run."""
    if not 0 <= step < total:
        raise ValueError(f"step {step} is outside the run's {total} steps")
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    if decay == "constant":
        return peak_lr
    span = total - warmup - 1
    progress = (step - warmup) / span if span > 0 else 1.0
    if decay == "cosine":
        return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    if decay == "linear":
        return peak_lr + (min_lr - peak_lr) * progress
    raise ValueError(f"unknown decay {decay!r}")


class LRSchedule:
    """Sets ``optimizer``'s learning rate before each step: ``apply()`` then ``optimizer.step()`` then ``step()``."""

    def __init__(self, optimizer, *, peak_lr: float, min_lr: float, total: int, warmup: int,
                 decay: Literal["cosine", "linear", "constant"]):
        self.optimizer = optimizer
        self.peak_lr, self.min_lr, self.total, self.warmup, self.decay = peak_lr, min_lr, total, warmup, decay
        self.steps_taken = 0

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return lr_at(min(self.steps_taken, self.total - 1), peak_lr=self.peak_lr, min_lr=self.min_lr,
                     total=self.total, warmup=self.warmup, decay=self.decay)

    def apply(self) -> float:
        lr = self.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def step(self) -> None:
        self.steps_taken += 1

    def state_dict(self) -> dict:
        return {"steps_taken": self.steps_taken, "peak_lr": self.peak_lr, "min_lr": self.min_lr,
                "total": self.total, "warmup": self.warmup, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.steps_taken = int(state["steps_taken"])
