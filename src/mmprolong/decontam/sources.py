"""The evaluation documents named by ``--against SOURCE``, and reading their pages.

A SOURCE is one of:

- a page store (``summary.json`` + ``shard-*.parquet``): each document, with its doc_id, text layer and images;
- a docvqa data folder (what ``eval --suite docvqa`` reads: sub-folders named after the datasets): every PDF
  under it, plus the page-image documents the docvqa suite's own loaders find (LongDocURL's ``<doc>_<i>.png``,
  SlideVQA's slide decks), so pages are grouped into documents exactly as the benchmark groups them;
- a folder: every ``*.pdf`` under it is a document, and the page images (png, jpg, jpeg, tif, tiff, webp, bmp)
  of each sub-folder form one document, ordered by the numbers in their names;
- one PDF file.

PDFs are read with ingest's reader and renderer (same limits, same text extraction, so a page's text is
byte-identical to a stored copy's). A file that cannot be read is reported per source and left out.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mmprolong.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class EvalDoc:
    """One evaluation document to fingerprint."""

    source: str  # the SOURCE argument it came from
    name: str  # shown in the report: its path relative to the source (or the store's source path)
    kind: Literal["pdf", "images", "store"]
    paths: tuple[str, ...]  # pdf: (the file,); images: the page files in order; store: (the shard holding it,)
    doc_id: str = ""  # store: the document's doc_id


@dataclass(frozen=True, slots=True)
class EvalPage:
    text: str
    image: bytes | None  # encoded image; None when the page could not be rendered


def discover(source: str | Path, scratch: Path) -> tuple[list[EvalDoc], dict]:
    """The documents of one SOURCE and a description of it ({"source", "kind", "documents"})."""
    path = Path(source)
    name = str(source)
    if path.is_file():
        if path.suffix.lower() != ".pdf":
            raise DataError(f"--against {source}: a file source must be a PDF")
        docs = [EvalDoc(source=name, name=path.name, kind="pdf", paths=(str(path.resolve()),))]
        kind = "pdf"
    elif not path.is_dir():
        raise DataError(f"--against {source}: no such file or folder")
    elif (path / "summary.json").is_file() and any(path.glob("shard-*.parquet")):
        docs, kind = _store_documents(path, name), "page-store"
    elif _docvqa_datasets(path):
        docs = [d for d in _folder_documents(path, name) if d.kind == "pdf"] + _docvqa_image_documents(path, name,
                                                                                                        scratch)
        kind = "docvqa"
    else:
        docs, kind = _folder_documents(path, name), "folder"
    if not docs:
        raise DataError(f"--against {source}: no documents found (PDFs, page images, a page store or a docvqa "
                        "data folder)")
    return docs, {"source": name, "kind": kind, "documents": len(docs)}


def _store_documents(store: Path, source: str) -> list[EvalDoc]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    docs = {}
    for shard in sorted(store.glob("shard-*.parquet")):
        table = pq.read_table(shard, columns=["doc_id", "source"])
        pairs = pc.unique(pc.binary_join_element_wise(table["doc_id"], table["source"], "\0")).to_pylist()
        for pair in sorted(pairs):
            doc_id, rel = pair.split("\0", 1)
            docs.setdefault(doc_id, EvalDoc(source=source, name=rel, kind="store", paths=(str(shard.resolve()),),
                                            doc_id=doc_id))  # a byte-identical copy under another name: once
    return list(docs.values())


def _folder_documents(folder: Path, source: str) -> list[EvalDoc]:
    docs, images = [], {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for file_name in sorted(names):
            path = Path(root) / file_name
            suffix = path.suffix.lower()
            rel = path.relative_to(folder).as_posix()
            if suffix == ".pdf":
                docs.append(EvalDoc(source=source, name=rel, kind="pdf", paths=(str(path.resolve()),)))
            elif suffix in IMAGE_SUFFIXES:
                images.setdefault(Path(rel).parent.as_posix(), []).append(path)
    for rel_dir, paths in sorted(images.items()):
        ordered = sorted(paths, key=page_order)
        docs.append(EvalDoc(source=source, name=rel_dir if rel_dir != "." else folder.name, kind="images",
                            paths=tuple(str(p.resolve()) for p in ordered)))
    return docs


def page_order(path: Path) -> tuple:
    """Natural order of page files: slide-2 before slide-10."""
    return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(path.name))


def _docvqa_datasets(folder: Path) -> list[str]:
    from mmprolong.eval.suites.docvqa_sources import LOADERS, dataset_root

    found = []
    for dataset in LOADERS:
        try:
            dataset_root(folder, dataset)
        except DataError:
            continue
        found.append(dataset)
    return found


def _docvqa_image_documents(data_dir: Path, source: str, scratch: Path) -> list[EvalDoc]:
    """Page-image documents as the docvqa suite's loaders group them (``docvqa_sources.load_dataset``, the one
    call into the suite). Documents the loader reads from a PDF (their page images would land under our scratch
    folder) are left to the PDF itself, which also gives the text layer and the exact hash."""
    from mmprolong.eval.pdf_pages import PdfPages
    from mmprolong.eval.suites.docvqa_sources import Sources, load_dataset
    from mmprolong.models import DEFAULT_FAMILY

    docs = []
    work = Path(tempfile.mkdtemp(prefix="docvqa-", dir=scratch))
    try:
        # Only page sizes are read (nothing is rendered): the smallest budget costs nothing.
        budget = DEFAULT_FAMILY.min_pixels
        pages = PdfPages(work, family=DEFAULT_FAMILY, max_dpi=9.0, min_pixels=budget, max_pixels=budget)
        src = Sources(DEFAULT_FAMILY, budget, budget, pages, work)
        for dataset in _docvqa_datasets(data_dir):
            try:
                bench = load_dataset(dataset, data_dir, src)
            except (DataError, OSError, ValueError) as exc:
                raise DataError(f"--against {source}: cannot read {dataset}: {exc}") from None
            for name, doc in sorted(bench.docs.items()):
                paths = [Path(page.path) for page in doc.pages]
                if doc.error:
                    log.warning("%s/%s left out: %s", dataset, name, doc.error)
                elif paths and not any(p.is_relative_to(work.resolve()) for p in paths):
                    docs.append(EvalDoc(source=source, name=f"{dataset}/{name}", kind="images",
                                        paths=tuple(str(p) for p in paths)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return docs


def read_pages(doc: EvalDoc, *, max_pixels: int) -> tuple[str, list[EvalPage]]:
    """(sha256 hex of the document's bytes, or "" for page images and store documents; its pages).

    DataError when the document cannot be read at all; a page pdfium cannot render keeps its text."""
    if doc.kind == "pdf":
        return _pdf_pages(Path(doc.paths[0]), max_pixels)
    if doc.kind == "images":
        return "", [EvalPage(text="", image=Path(p).read_bytes()) for p in doc.paths]
    return "", list(_store_pages(doc))


def _pdf_pages(path: Path, max_pixels: int) -> tuple[str, list[EvalPage]]:
    import hashlib

    from mmprolong.ingest.config import IngestConfig
    from mmprolong.ingest.pdf import SkipReport, read_pdf_bytes, render_document

    config = IngestConfig(max_pixels=max_pixels)
    config.validate()  # fills the family's min_pixels
    data = read_pdf_bytes(path, config)
    if isinstance(data, str):
        raise DataError(f"{path}: {data}")
    pages = []
    for item in render_document(data, path.name, config):
        if isinstance(item, SkipReport) and item.page is None:
            raise DataError(f"{path}: {item.reason}")
        pages.append(EvalPage(text="", image=None) if isinstance(item, SkipReport) else
                      EvalPage(text=item.text, image=item.image))
    return hashlib.sha256(data).hexdigest(), pages


def _store_pages(doc: EvalDoc) -> Iterator[EvalPage]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(doc.paths[0], columns=["doc_id", "source", "page_index", "text", "image"])
    mask = pc.and_(pc.equal(table["doc_id"], doc.doc_id), pc.equal(table["source"], doc.name))
    rows = sorted(table.filter(mask).to_pylist(), key=lambda r: r["page_index"])
    for row in rows:
        yield EvalPage(text=row["text"], image=row["image"])
