"""Decide whether a training document matches an evaluation document, and which pages did.

Candidates come from the index (same doc_id, an LSH hit on any page or on the whole text, or a page image within
its limit);
each candidate pair is then scored exactly:

- exact: the same doc_id (the first 16 hex digits of the SHA-256 of the PDF's bytes);
- text: shared shingles / shingles of the smaller document >= text_threshold. Measured on whole documents, so
  pages reordered, dropped, split into another file or re-paginated keep a score near 1, while documents of
  one template with other content share only boilerplate (<= 0.5 in our measurements);
- image: a share >= image_coverage of either document's hashed pages has a page within image_distance bits in
  the other, and at least min_image_pages pages on each side do. A shared cover or contents page (every
  document of a template has one) stays far below the share.

Pairs that fail but reach half a threshold are kept as near misses: the report lists them, so a threshold can
be judged on the data at hand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from mmprolong.decontam.config import DecontamConfig
from mmprolong.decontam.fingerprints import EMPTY, MinHasher, PagePrint
from mmprolong.decontam.index import EvalIndex

NEAR_MISS = 0.5  # pairs that reach this share of a threshold are reported as near misses
MATCHED_PAGE_SHARE = 0.5  # a page is reported as matched when an evaluation page holds this share of its shingles


@dataclass(frozen=True, slots=True)
class TrainDoc:
    doc_id: str
    source: str
    pages: tuple[PagePrint, ...]


def match_document(doc: TrainDoc, index: EvalIndex, minhasher: MinHasher, config: DecontamConfig) -> list[dict]:
    """The pair records (matches and near misses) of one training document against the evaluation index."""
    exact = set(index.by_doc_id.get(doc.doc_id, ()))
    text = index.text_candidates([minhasher(p.shingles) for p in doc.pages if p.words >= config.min_page_words],
                                 minhasher)
    images = _image_pairs(doc, index)
    shingles = np.unique(np.concatenate([p.shingles for p in doc.pages])) if doc.pages else EMPTY
    records = []
    for e in sorted(exact | text | set(images)):
        record = _score(doc, shingles, e, e in exact, images.get(e, []), index, config)
        if record is not None:
            records.append(record)
    return records


def _image_pairs(doc: TrainDoc, index: EvalIndex) -> dict[int, list[tuple[int, int, int]]]:
    """{evaluation document: [(training page, evaluation page, distance)]} of the page images that match."""
    hashed = [(i, page.image) for i, page in enumerate(doc.pages) if page.image is not None]
    pairs = defaultdict(list)
    if not hashed or not len(index.image_hashes):
        return pairs
    for (t, _), near in zip(hashed, index.image_matches(np.stack([h for _, h in hashed]))):
        for e, p, distance in near.tolist():
            pairs[e].append((t, p, distance))
    return pairs


def _score(doc: TrainDoc, shingles: np.ndarray, e: int, exact: bool, image_pairs: list, index: EvalIndex,
           config: DecontamConfig) -> dict | None:
    info = index.docs[e]
    text = None
    smaller = min(len(shingles), info.shingles)
    if smaller >= config.min_shingles:
        text = len(np.intersect1d(shingles, index.doc_shingles[e], assume_unique=True)) / smaller
    image, image_pages = None, 0
    train_hashed = sum(p.image is not None for p in doc.pages)
    if image_pairs and info.image_pages and train_hashed:
        matched_train = len({t for t, _, _ in image_pairs})
        matched_eval = len({p for _, p, _ in image_pairs})
        image = max(matched_train / train_hashed, matched_eval / info.image_pages)
        image_pages = min(matched_train, matched_eval)
    kinds = [k for k, ok in (("text", text is not None and text >= config.text_threshold),
                             ("image", image is not None and image >= config.image_coverage
                              and image_pages >= config.min_image_pages)) if ok]
    kind = "exact" if exact else "+".join(kinds)
    near = ((text or 0) >= NEAR_MISS * config.text_threshold or (image or 0) >= NEAR_MISS * config.image_coverage)
    if not kind and not near:
        return None
    record = {"doc_id": doc.doc_id, "source": doc.source, "pages": len(doc.pages), "eval": e, "kind": kind,
              "text": None if text is None else round(text, 4), "image": None if image is None else round(image, 4),
              "image_pages": image_pages}
    if kind:
        record["similarity"] = 1.0 if exact else max(v for k, v in (("text", text), ("image", image)) if k in kinds)
        record["matched_pages"] = _matched_pages(doc, e, exact, "text" in kinds, image_pairs, index, config)
    return record


def _matched_pages(doc: TrainDoc, e: int, exact: bool, by_text: bool, image_pairs: list, index: EvalIndex,
                   config: DecontamConfig) -> list[list]:
    """[training page, evaluation page (both 1-based), "exact" | "text" | "image", similarity], by training page:
    for text, the evaluation page holding the largest share of the page's shingles (at least MATCHED_PAGE_SHARE);
    for images, the nearest page (similarity = 1 - distance / bits)."""
    if exact:
        return [[i + 1, i + 1, "exact", 1.0] for i in range(len(doc.pages))]
    found: dict[int, list] = {}
    if by_text:
        eval_pages = index.page_shingles[e]
        sizes = np.array([len(s) for s in eval_pages])
        pooled = np.concatenate(eval_pages) if eval_pages else EMPTY
        owner = np.repeat(np.arange(len(eval_pages)), sizes)
        for t, page in enumerate(doc.pages):
            if page.words < config.min_page_words:
                continue
            shared = np.bincount(owner[np.isin(pooled, page.shingles)], minlength=len(eval_pages))
            share = shared / np.maximum(np.minimum(sizes, len(page.shingles)), 1)
            best = int(np.argmax(share))
            if share[best] >= MATCHED_PAGE_SHARE:
                found[t] = [t + 1, best + 1, "text", round(float(share[best]), 4)]
    bits = config.hash_size ** 2
    for t, p, distance in sorted(image_pairs, key=lambda x: (x[0], x[2], x[1])):
        if t not in found:
            found[t] = [t + 1, p + 1, "image", round(1 - distance / bits, 4)]
    return [found[t] for t in sorted(found)]
