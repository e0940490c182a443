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
    """Cut the budget into cells (``plan_cells``), then each cell into units of at most ``unit_tokens``."""
    cells = plan_cells(buckets, weights, task_mix, budget_tokens)
    units = []
    for bucket in buckets:
        for task in task_mix:
            cell_tokens = cells[bucket, task]
            if cell_tokens <= 0:
                continue
            # A unit holds whole samples: never less than two of the bucket's longest.
            size = max(unit_tokens, 2 * bucket.high)
            count = math.ceil(cell_tokens / size)
            base, extra = divmod(cell_tokens, count)
            units += [Unit(bucket, task, i, base + (1 if i < extra else 0)) for i in range(count)]
    return units


def plan_cells(buckets: Sequence[Bucket], weights: Sequence[float], task_mix: dict[str, float],
               budget_tokens: int) -> dict[tuple[Bucket, str], int]:
    """Tokens per (bucket, task) cell: ``budget x weight`` per bucket, split by task share, every cell either 0
    or at least one sample long (``bucket.low``), so that its unit can fill it to within a fraction of a sample.

    A cell smaller than one sample (20% reasoning of a 64K-128K bucket holding 2 samples) cannot be met by
    whole samples; rounding it to 0 or to one sample moves tokens off or onto its task, and that difference is
    carried to the same task in the next shorter bucket, whose samples are finer. Bucket totals are exact, and
    so are task totals, except what the shortest bucket cannot take (less than half of its shortest sample).
    """
    totals = apportion(budget_tokens, weights)
    carry = dict.fromkeys(task_mix, 0.0)
    cells = {}
    for i in sorted(range(len(buckets)), key=lambda i: buckets[i].low, reverse=True):
        want = {task: totals[i] * share + carry[task] for task, share in task_mix.items()}
        got = _fillable_split(want, totals[i], buckets[i].low)
        carry = {task: want[task] - got[task] for task in want}
        cells.update({(buckets[i], task): got[task] for task in task_mix})
    return cells


def _fillable_split(want: dict[str, float], total: int, low: int) -> dict[str, int]:
    """``total`` split over the tasks close to ``want``, each part 0 or >= ``low``."""
    order = sorted(want, key=lambda t: (-want[t], t))
    kept = [t for t in order if want[t] >= low / 2] or order[:1]
    while len(kept) > 1 and low * len(kept) > total:  # not room for one sample each: drop the smallest
        kept.pop()
    spare = total - low * len(kept)
    if spare < 0:  # less than one sample in the whole bucket: all of it to the task that wants most
        return {t: total if t == kept[0] else 0 for t in want}
    above = [max(want[t] - low, 0.0) for t in kept]
    parts = apportion(spare, above if sum(above) > 0 else [1.0] * len(kept))
    got = dict.fromkeys(want, 0)
    got.update({t: low + part for t, part in zip(kept, parts)})
    return got


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split into integers proportional to ``weights`` that sum to it (largest remainders first)."""
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def planned_shares(units: Sequence[Unit]) -> dict:
    """The plan as tokens and shares, the same keys as the achieved summary, so the two compare directly."""
    total = sum(u.tokens for u in units) or 1
    by_bucket: dict[str, int] = {}
    by_task: dict[str, int] = {}
    for u in units:
        by_bucket[u.bucket.label] = by_bucket.get(u.bucket.label, 0) + u.tokens
        by_task[u.task] = by_task.get(u.task, 0) + u.tokens
    samples = {b: round(tokens / units_mean(units, b)) for b, tokens in by_bucket.items()}
    return {"tokens": total, "tokens_by_bucket": by_bucket, "tokens_by_task": by_task,
            "share_by_bucket": {b: t / total for b, t in by_bucket.items()},
            "share_by_task": {t: n / total for t, n in by_task.items()}, "samples_by_bucket": samples}


def units_mean(units: Sequence[Unit], label: str) -> float:
    return next(u.bucket.mean for u in units if u.bucket.label == label)
