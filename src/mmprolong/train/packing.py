"""Pack samples into rows of a fixed token capacity: first-fit decreasing, never splitting a sample.

Pure functions on lengths. ``pack_first_fit_decreasing`` is deterministic: items are placed longest first
(ties by index), each into the lowest-numbered row it fits in. A segment tree over the rows' free space finds
that row in O(log rows), so planning an epoch of 60K samples takes well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmprolong.errors import DataError


def pack_first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Rows of item indices: each row's lengths sum to at most ``capacity``; every item is in exactly one row.

    Rows are numbered in the order they were opened (the first holds the longest item); inside a row, indices
    are in placement order (longest first). Raises DataError naming the first item longer than ``capacity``
    (callers drop such samples beforehand and count them) and ValueError for a non-positive capacity or length.
    """
    if capacity <= 0:
        raise ValueError(f"capacity={capacity}: must be a positive number of tokens")
    for index, length in enumerate(lengths):
        if length <= 0:
            raise ValueError(f"item {index} has length {length}: lengths must be positive")
        if length > capacity:
            raise DataError(f"item {index} has {length} tokens, more than the row capacity of {capacity}: "
                            "skip it before packing (it is never cut)")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    tree = _FreeSpaceTree(len(lengths), capacity)
    rows: list[list[int]] = []
    for index in order:
        row = tree.first_fit(lengths[index])
        if row == len(rows):
            rows.append([])
        rows[row].append(index)
        tree.take(row, lengths[index])
    return rows


def packing_efficiency(bins: Sequence[Sequence[int]], lengths: Sequence[int], capacity: int) -> float:
    """Share of the rows' token slots that hold sample tokens (1.0 = no padding); 1.0 for no rows."""
    if not bins:
        return 1.0
    used = sum(lengths[i] for row in bins for i in row)
    return used / (len(bins) * capacity)


class _FreeSpaceTree:
    """Max segment tree over the free space of ``size`` rows (unopened rows have ``capacity`` free)."""

    def __init__(self, size: int, capacity: int):
        self.leaves = 1
        while self.leaves < max(size, 1):
            self.leaves *= 2
        self.free = [capacity] * (2 * self.leaves)

    def first_fit(self, length: int) -> int:
        """Index of the lowest-numbered row with at least ``length`` free (an unopened one if none is open)."""
        node = 1
        while node < self.leaves:
            node = 2 * node if self.free[2 * node] >= length else 2 * node + 1
        return node - self.leaves

    def take(self, row: int, length: int) -> None:
        node = row + self.leaves
        self.free[node] -= length
        node //= 2
        while node:
            self.free[node] = max(self.free[2 * node], self.free[2 * node + 1])
            node //= 2
