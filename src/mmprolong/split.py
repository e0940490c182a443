"""The train / held-out document split, shared by synth (which leaves held-out documents out of the mixture)
and eval's synth-heldout suite (which asks questions only about them).

A document is held out when the first 8 bytes of sha256("mmprolong-heldout-v1:" + doc_id), read as a big-endian
integer and divided by 2**64, fall below ``fraction``. doc_id is the SHA-256 prefix of the PDF's bytes, so the
split is the same on every machine, for every store holding the document, whatever its file name, and a smaller
fraction holds out a subset of a larger one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SPLIT_SALT = "mmprolong-heldout-v1"
DEFAULT_HELDOUT_FRACTION = 0.05


def heldout_score(doc_id: str) -> float:
    """The document's position in [0, 1) of the split (uniform over doc_ids)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_heldout(doc_id: str, fraction: float = DEFAULT_HELDOUT_FRACTION) -> bool:
    """True when ``doc_id`` belongs to the held-out share ``fraction`` (training leaves it out)."""
    return heldout_score(doc_id) < fraction


def heldout_split(doc_ids: Iterable[str], fraction: float = DEFAULT_HELDOUT_FRACTION) -> tuple[list[str], list[str]]:
    """(train, held_out) doc_ids, each sorted."""
    train, held = [], []
    for doc_id in sorted(doc_ids):
        (held if is_heldout(doc_id, fraction) else train).append(doc_id)
    return train, held
