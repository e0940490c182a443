"""Intervals for scores computed on a few dozen items, where a bare percentage says little.

``interval95(scores)``: a 95% interval for the mean of per-item scores in [0, 1]. All-binary scores (right or
wrong) get the Wilson score interval, which stays inside [0, 1] and is sensible at 0/n and n/n, where the normal
approximation collapses to a point. Fractional scores (F1, share of needles found, ANLS) get the Student-t
interval of the mean, clipped to [0, 1].

``difference95(a, b)``: a 95% interval for mean(a) - mean(b) of two independent samples: Newcombe's hybrid score
interval (method 10) for binary scores, Welch's t interval otherwise.

``mean_of_means95(groups)``: a 95% interval for the unweighted mean of several groups' means (a suite's score is
the mean of its tasks' scores): the normal interval with the variance sum of the group means, clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n``; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _t95(dof: int) -> float:
    """Two-sided 95% Student-t quantile (exact table to 30 degrees of freedom, then a close approximation)."""
    table = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
             2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
             2.045, 2.042)
    return table[dof - 1] if dof <= len(table) else Z95 + 2.4 / dof


def _binary(scores: Sequence[float]) -> bool:
    return all(s in (0, 1) for s in scores)


def _mean_and_var(scores: Sequence[float]) -> tuple[float, float]:
    n = len(scores)
    mean = sum(scores) / n
    var = sum((s - mean) ** 2 for s in scores) / (n - 1) if n > 1 else 0.0
    return mean, var


def interval95(scores: Sequence[float]) -> tuple[float, float]:
    """95% interval for the mean of ``scores`` (each in [0, 1]); (0, 1) when there are none."""
    n = len(scores)
    if n == 0:
        return 0.0, 1.0
    if _binary(scores):
        return wilson(sum(scores), n)
    if n == 1:
        return 0.0, 1.0
    mean, var = _mean_and_var(scores)
    half = _t95(n - 1) * math.sqrt(var / n)
    return max(0.0, mean - half), min(1.0, mean + half)


def difference95(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """95% interval for mean(a) - mean(b); (-1, 1) when either side is empty."""
    if not a or not b:
        return -1.0, 1.0
    if _binary(a) and _binary(b):
        pa, pb = sum(a) / len(a), sum(b) / len(b)
        la, ua = wilson(sum(a), len(a))
        lb, ub = wilson(sum(b), len(b))
        diff = pa - pb
        return (diff - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2),
                diff + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2))
    (ma, va), (mb, vb) = _mean_and_var(a), _mean_and_var(b)
    se2 = va / len(a) + vb / len(b)
    if se2 == 0:
        return ma - mb, ma - mb
    dof = se2 ** 2 / (((va / len(a)) ** 2 / max(1, len(a) - 1)) + ((vb / len(b)) ** 2 / max(1, len(b) - 1)))
    half = _t95(max(1, int(dof))) * math.sqrt(se2)
    return ma - mb - half, ma - mb + half


def mean_of_means95(groups: Sequence[Sequence[float]]) -> tuple[float, float]:
    """95% interval for the mean over groups of each group's mean score; empty groups are left out."""
    groups = [g for g in groups if g]
    if not groups:
        return 0.0, 1.0
    if len(groups) == 1:
        return interval95(groups[0])
    k = len(groups)
    mean = sum(sum(g) / len(g) for g in groups) / k
    variance = sum(_mean_and_var(g)[1] / len(g) if len(g) > 1 else 0.25 / len(g) for g in groups) / (k * k)
    half = Z95 * math.sqrt(variance)
    return max(0.0, mean - half), min(1.0, mean + half)
