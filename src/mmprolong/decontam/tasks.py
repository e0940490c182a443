"""The two kinds of task ingest's executors run for decontamination (local processes or Ray, as ingest):

- ``fingerprint_eval``: read and fingerprint a chunk of evaluation documents (every page image is hashed);
- ``scan_store``: fingerprint the pages of a run of store shards and match each document against the
  evaluation index, which the task loads once.

Each task writes its output (a pickle, a JSON report) under a temporary name and renames it, so its presence
marks the task done and a rerun resumes. ``isolate`` is the executors' retry after a crashed worker: these tasks
run no native code that crashes on bad input (PIL and pyarrow raise), so the retry simply runs them again.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

from mmprolong.decontam.config import DecontamConfig
from mmprolong.decontam.fingerprints import WORD, MinHasher, is_textless, page_print
from mmprolong.decontam.index import EvalDocPrint, EvalIndex
from mmprolong.decontam.match import TrainDoc, match_document
from mmprolong.decontam.sources import EvalDoc, read_pages
from mmprolong.errors import DataError

_PROGRESS_EVERY_PAGES = 64


@dataclass(frozen=True, slots=True)
class EvalTaskSpec:
    index: int
    docs: tuple[EvalDoc, ...]
    out_path: str  # pickle: {"prints": [EvalDocPrint], "errors": [...]}
    config: DecontamConfig


@dataclass(frozen=True, slots=True)
class StoreTaskSpec:
    index: int
    shards: tuple[str, ...]  # store shard files, whole (a document never spans two)
    index_path: str  # the pickled EvalIndex
    out_path: str  # JSON report with the pair records
    config: DecontamConfig
    hash_all_pages: bool  # hash every page image, not only those of text-less documents


def fingerprint_eval(spec: EvalTaskSpec, *, isolate: bool = False, progress=None) -> dict:
    """Fingerprint the chunk's evaluation documents; a document that cannot be read is reported, not fatal."""
    config = spec.config
    prints, errors = [], []
    for doc in spec.docs:
        try:
            sha256, pages = read_pages(doc, max_pixels=config.render_max_pixels)
            page_prints = tuple(page_print(p.text, p.image, shingle_words=config.shingle_words,
                                           hash_size=config.hash_size) for p in pages)
        except (DataError, OSError) as exc:  # PIL's UnidentifiedImageError is an OSError
            errors.append({"source": doc.source, "name": doc.name, "reason": str(exc)})
            continue
        prints.append(EvalDocPrint(source=doc.source, name=doc.name, kind=doc.kind, sha256=sha256,
                                   doc_id=sha256[:16] if sha256 else doc.doc_id, pages=page_prints))
        if progress:
            progress(len(page_prints))
    _write_atomic(Path(spec.out_path), pickle.dumps({"prints": prints, "errors": errors},
                                                    protocol=pickle.HIGHEST_PROTOCOL))
    return {"index": spec.index, "documents": len(prints), "errors": len(errors)}


def read_eval_output(path: str | Path) -> dict:
    with open(path, "rb") as handle:
        return pickle.load(handle)


def scan_store(spec: StoreTaskSpec, *, isolate: bool = False, progress=None) -> dict:
    """Match every document of the task's shards; returns (and writes) the report with the pair records."""
    start, cpu_start = time.perf_counter(), time.process_time()
    config = spec.config
    index = EvalIndex.load(spec.index_path)
    minhasher = MinHasher(config.num_perm)
    report = {"index": spec.index, "documents": 0, "pages": 0, "text_pages": 0, "image_pages": 0, "pairs": []}
    unreported = 0
    for shard in spec.shards:
        for doc_id, source, texts, images in _shard_documents(shard, config, spec.hash_all_pages):
            pages = tuple(page_print(text, image, shingle_words=config.shingle_words, hash_size=config.hash_size)
                          for text, image in zip(texts, images))
            report["pairs"] += match_document(TrainDoc(doc_id=doc_id, source=source, pages=pages), index, minhasher,
                                              config)
            report["documents"] += 1
            report["pages"] += len(pages)
            report["text_pages"] += sum(p.words >= config.min_page_words for p in pages)
            report["image_pages"] += sum(image is not None for image in images)
            unreported += len(pages)
            if progress and unreported >= _PROGRESS_EVERY_PAGES:
                progress(unreported)
                unreported = 0
    if progress and unreported:
        progress(unreported)
    report["seconds"] = round(time.perf_counter() - start, 3)
    report["cpu_seconds"] = round(time.process_time() - cpu_start, 3)  # the figure that scales with cores
    _write_atomic(Path(spec.out_path), (json.dumps(report, sort_keys=True) + "\n").encode())
    return report


def _shard_documents(shard: str, config: DecontamConfig, hash_all_pages: bool):
    """(doc_id, source, page texts, page image bytes or None) per document of a store shard, in store order.

    Images are hashed for every page (``hash_all_pages``) or only for text-less documents (text on under half
    their pages: scans): a text PDF's cover or figure page needs no hash, its document matches by text. Only
    the row groups holding such pages have their image column read, so a text-only scan reads no image bytes.
    """
    import pyarrow.parquet as pq

    file = pq.ParquetFile(shard)
    table = file.read(columns=["doc_id", "source", "text"])
    doc_ids, sources, texts = (table[c].to_pylist() for c in ("doc_id", "source", "text"))
    has_text = [len(WORD.findall(t)) >= config.min_page_words for t in texts]
    bounds, start = [], 0
    for end in range(1, len(texts) + 1):
        if end == len(texts) or (doc_ids[end], sources[end]) != (doc_ids[start], sources[start]):
            bounds.append((start, end))
            start = end
    wanted = set()
    for start, end in bounds:
        if hash_all_pages or is_textless(sum(has_text[start:end]), end - start):
            wanted.update(range(start, end))
    images = _read_images(file, wanted)
    for start, end in bounds:
        yield doc_ids[start], sources[start], texts[start:end], [images.get(r) for r in range(start, end)]


def _read_images(file, rows: set[int]) -> dict[int, bytes]:
    """{row: image bytes} for ``rows`` of a Parquet file, reading only the row groups that hold them."""
    images, first = {}, 0
    for group in range(file.metadata.num_row_groups):
        count = file.metadata.row_group(group).num_rows
        needed = [r for r in range(first, first + count) if r in rows]
        if needed:
            column = file.read_row_group(group, columns=["image"])["image"]
            images.update((r, column[r - first].as_py()) for r in needed)
        first += count
    return images


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
