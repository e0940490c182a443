"""Vision features kept between forwards: a least-recently-used store bounded in bytes.

What the vision tower hands the language model for one image (``ModelFamily.image_feature_parts``: the merged
tokens; for Qwen3-VL also one DeepStack tensor per DeepStack block) depends on the image and the tower's weights
only. Where the weights do not change (evaluation; training with the tower and merger frozen) an image seen again
need not be encoded again: the eval backend keys by page, training by the image's pixels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class FeatureCache:
    """``key -> entry`` (a tuple whose first element is a tuple of tensors), oldest use dropped first once the
    tensors pass ``max_bytes``; the newest entry is always kept."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> tuple | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, entry: tuple) -> None:
        if key in self._entries:
            self.bytes -= _bytes(self._entries.pop(key)[0])
        self._entries[key] = entry
        self.bytes += _bytes(entry[0])
        while self.bytes > self.max_bytes and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self.bytes -= _bytes(old[0])

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


def _bytes(parts: tuple) -> int:
    return sum(t.numel() * t.element_size() for t in parts)
