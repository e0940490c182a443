"""The mixture plan: how many tokens of which task land in which length bucket, before anything is built.

Pure functions. A plan is a list of cells (bucket x task) with a token target each, cut into work
units of at most ``unit_tokens`` so the build parallelises and resumes by unit; every unit's samples
depend only on (seed, cell, unit), never on worker count or order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mmprolong.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Bucket:
    low: int  # tokens, inclusive
    high: int  # tokens, exclusive

    @property
    def label(self) -> str:
        return f"{format_tokens(self.low)}-{format_tokens(self.high)}"

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def __contains__(self, tokens: int) -> bool:
        return self.low <= tokens < self.high


@dataclass(frozen=True, slots=True)
class Unit:
    bucket: Bucket
    task: str
    index: int  # unit number within its cell
    tokens: int  # planned tokens of this unit

    @property
    def name(self) -> str:
        return f"{self.bucket.low}-{self.bucket.high}.{self.task}.{self.index:05d}"


def format_tokens(n: int) -> str:
    """8192 -> "8K", 131072 -> "128K", 1000 -> "1000"."""
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return str(n)


def default_boundaries(target_tokens: int, buckets: int = 4) -> list[int]:
    """Doubling buckets that end at the target: 128K -> 8K, 16K, 32K, 64K, 128K (+1: the target fits)."""
    if target_tokens < 2 ** buckets:
        raise ConfigError("target_tokens", target_tokens, f"too small for {buckets} doubling buckets")
    edges = [target_tokens >> (buckets - i) for i in range(buckets + 1)]
    edges[-1] = target_tokens + 1  # a sample of exactly target_tokens belongs to the last bucket
    return edges


def make_buckets(boundaries: Sequence[int]) -> list[Bucket]:
    if len(boundaries) < 2 or any(b <= a for a, b in zip(boundaries, boundaries[1:])) or boundaries[0] <= 0:
        raise ConfigError("buckets", list(boundaries), "need >= 2 strictly increasing positive token boundaries")
    return [Bucket(a, b) for a, b in zip(boundaries, boundaries[1:])]


def bucket_weights(distribution: str, buckets: Sequence[Bucket], *, target_share: float = 0.8,
                   custom: Sequence[float] | None = None, native_tokens: Sequence[float] | None = None) -> list[float]:
    """Token share per bucket.

    balanced: equal tokens per bucket (the paper's winner). target: ``target_share`` in the last bucket,
    the rest equal. custom: the user's table, normalised. native: the store's own documents' lengths.
    """
    n = len(buckets)
    if distribution == "balanced":
        weights = [1.0] * n
    elif distribution == "target":
        weights = [(1 - target_share) / (n - 1)] * (n - 1) + [target_share] if n > 1 else [1.0]
    elif distribution == "custom":
        if custom is None or len(custom) != n or any(w < 0 for w in custom) or sum(custom) <= 0:
            raise ConfigError("bucket_weights", custom, f"need {n} non-negative weights, one per bucket, not all 0")
        weights = list(custom)
    elif distribution == "native":
        if not native_tokens or sum(native_tokens) <= 0:
            raise ConfigError("distribution", "native", "no document of the store falls inside any bucket")
        weights = list(native_tokens)
    else:
        raise ConfigError("distribution", distribution, "expected balanced, target, native or custom")
    total = sum(weights)
    return [w / total for w in weights]


def plan_units(buckets: Sequence[Bucket], weights: Sequence[float], task_mix: dict[str, float],
               budget_tokens: int, unit_tokens: int) -> list[Unit]:
    """Cut the budget into cells (bucket x task, tokens = budget x weight x share), then into units."""
    units = []
    for bucket, weight in zip(buckets, weights):
        for task, share in task_mix.items():
            cell_tokens = round(budget_tokens * weight * share)
            if cell_tokens <= 0:
                continue
            # A unit holds whole samples: never less than two of the bucket's longest.
            size = max(unit_tokens, 2 * bucket.high)
            count = math.ceil(cell_tokens / size)
            base, extra = divmod(cell_tokens, count)
            units += [Unit(bucket, task, i, base + (1 if i < extra else 0)) for i in range(count)]
    return units


def planned_shares(units: Sequence[Unit]) -> dict:
    """The plan as shares, the same keys as the achieved summary, so the two can be compared directly."""
    total = sum(u.tokens for u in units) or 1
    by_bucket: dict[str, float] = {}
    by_task: dict[str, float] = {}
    for u in units:
        by_bucket[u.bucket.label] = by_bucket.get(u.bucket.label, 0) + u.tokens / total
        by_task[u.task] = by_task.get(u.task, 0) + u.tokens / total
    samples = {b: round(sum(u.tokens for u in units if u.bucket.label == b) / units_mean(units, b))
               for b in by_bucket}
    return {"tokens": total, "share_by_bucket": by_bucket, "share_by_task": by_task, "samples_by_bucket": samples}


def units_mean(units: Sequence[Unit], label: str) -> float:
    return next(u.bucket.mean for u in units if u.bucket.label == label)
