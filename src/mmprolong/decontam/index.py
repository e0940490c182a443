"""The evaluation side, indexed once and sent to every task: exact ids, MinHash LSH over text pages and over
whole texts, and a matrix of page-image hashes.

The evaluation side is small (a few thousand documents) and the training side large, so the small side is
indexed and the large side streamed past it: each training page costs one LSH query and, when it has an image
hash, one exact Hamming scan of the evaluation hashes (numpy popcount: 1.6 ms for 50,000 evaluation pages of
1,024 bits, under the 7 ms of decoding a page image at the paper's budget, so an approximate image index would
save little).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmprolong.decontam.config import DecontamConfig
from mmprolong.decontam.fingerprints import EMPTY, MinHasher, PagePrint, hamming, is_textless

_HAMMING_BATCH = 32  # training pages per Hamming scan: 32 x 50,000 distances, 13 MB of temporaries a word


@dataclass(frozen=True, slots=True)
class EvalDocPrint:
    """An evaluation document's fingerprints (what an evaluation task returns)."""

    source: str
    name: str
    kind: str  # pdf, images, store
    sha256: str  # of the PDF's bytes; "" for page images and page-store documents
    doc_id: str  # first 16 hex digits of sha256 (the page store's doc_id); "" for page images
    pages: tuple[PagePrint, ...]


@dataclass(frozen=True, slots=True)
class EvalDocInfo:
    """What the report says about an evaluation document."""

    source: str
    name: str
    kind: str
    sha256: str
    doc_id: str
    pages: int
    text_pages: int  # pages with at least min_page_words words
    image_pages: int  # pages with an image hash (not blank, rendered)
    shingles: int


def distinct_limits(hashes: np.ndarray, owner: np.ndarray, distance: int, margin: float) -> np.ndarray:
    """Per evaluation page image, the largest distance at which a training page matches it: ``distance``, lowered
    to ``margin`` times the distance to the nearest page of another evaluation document. A layout the evaluation
    set itself repeats (pages of one template, near-empty pages) identifies no document, so a training page must
    be clearly nearer than the evaluation set's own look-alikes. Costs (pages)^2 popcounts, once per run."""
    limits = np.full(len(hashes), distance, dtype=np.int64)
    for start in range(0, len(hashes), _HAMMING_BATCH):
        block = hamming(hashes[start:start + _HAMMING_BATCH], hashes)
        block[owner[start:start + _HAMMING_BATCH, None] == owner[None, :]] = np.iinfo(np.int32).max
        limits[start:start + len(block)] = np.minimum(distance, np.floor(margin * block.min(axis=1).astype(float)))
    return limits


class EvalIndex:
    """Every evaluation document's fingerprints, indexed for the training pages' queries."""

    def __init__(self, prints: list[EvalDocPrint], config: DecontamConfig):
        from datasketch import MinHashLSH

        self.min_page_words = config.min_page_words
        minhasher = MinHasher(config.num_perm)
        self.lsh = MinHashLSH(threshold=config.lsh_threshold, num_perm=config.num_perm)  # pages: (doc, page) keys
        self.doc_lsh = MinHashLSH(threshold=config.lsh_threshold, num_perm=config.num_perm)  # documents: doc keys
        self.docs: list[EvalDocInfo] = []
        self.by_doc_id: dict[str, list[int]] = {}
        self.page_shingles: list[list[np.ndarray]] = []  # per document, per page
        self.doc_shingles: list[np.ndarray] = []
        image_rows, image_owner = [], []  # hash words; (document, page)
        for d, doc in enumerate(prints):
            page_minhashes = []
            for p, page in enumerate(doc.pages):
                if page.words >= config.min_page_words:
                    page_minhashes.append(minhasher(page.shingles))
                    self.lsh.insert((d, p), page_minhashes[-1])
                if page.image is not None:
                    image_rows.append(page.image)
                    image_owner.append((d, p))
            if page_minhashes:
                self.doc_lsh.insert(d, minhasher.union(page_minhashes))
            text_pages = len(page_minhashes)
            shingles = [page.shingles for page in doc.pages]
            self.page_shingles.append(shingles)
            self.doc_shingles.append(np.unique(np.concatenate(shingles)) if shingles else EMPTY)
            if doc.doc_id:
                self.by_doc_id.setdefault(doc.doc_id, []).append(d)
            self.docs.append(EvalDocInfo(source=doc.source, name=doc.name, kind=doc.kind, sha256=doc.sha256,
                                         doc_id=doc.doc_id, pages=len(doc.pages), text_pages=text_pages,
                                         image_pages=sum(page.image is not None for page in doc.pages),
                                         shingles=len(self.doc_shingles[-1])))
        words = config.hash_size ** 2 // 64
        self.image_hashes = np.stack(image_rows) if image_rows else np.zeros((0, words), dtype=np.uint64)
        self.image_owner = np.array(image_owner, dtype=np.int64).reshape(-1, 2)
        self.image_limit = distinct_limits(self.image_hashes, self.image_owner[:, 0], config.image_distance,
                                           config.image_margin)

    @property
    def textless_documents(self) -> int:
        """Evaluation documents with text on under half their pages (page images, scans): a training copy with
        a text layer can match them only by its page images. (A text PDF's cover or figure page without text
        needs no such care: its training copy lacks text there too, so that page is hashed anyway.)"""
        return sum(is_textless(doc.text_pages, doc.pages) for doc in self.docs)

    def text_candidates(self, page_minhashes: list, minhasher: MinHasher) -> set[int]:
        """Evaluation documents with a page, or a whole text, whose estimated Jaccard similarity to one of the
        training document's pages, or to its whole text, passes the LSH threshold."""
        if not page_minhashes:
            return set()
        found = set(self.doc_lsh.query(minhasher.union(page_minhashes)))
        for minhash in page_minhashes:
            found.update(d for d, _ in self.lsh.query(minhash))
        return found

    def image_matches(self, hashes: np.ndarray) -> list[np.ndarray]:
        """For each row of ``hashes`` (training pages), the (document, page, distance) rows of the evaluation
        pages within their limit (see ``distinct_limits``)."""
        out = []
        for start in range(0, len(hashes), _HAMMING_BATCH):
            distances = hamming(hashes[start:start + _HAMMING_BATCH], self.image_hashes)
            for row in distances:
                near = np.flatnonzero(row <= self.image_limit)
                out.append(np.column_stack([self.image_owner[near], row[near]]))
        return out

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            pickle.dump(self, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    @staticmethod
    def load(path: str | Path) -> EvalIndex:
        """Read an index this package wrote (pickle: only ever load one from a folder you trust)."""
        with open(path, "rb") as handle:
            return pickle.load(handle)
