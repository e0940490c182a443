"""Read a page store into DocumentViews (texts and token counts, no image bytes) for the synth stage."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import pyarrow.dataset as ds

from mmprolong.errors import DataError
from mmprolong.ingest.store import PageStore
from mmprolong.models import DEFAULT_FAMILY, ModelFamily, get_family
from mmprolong.synth.documents import DocumentView, Section

log = logging.getLogger(__name__)

STORE_COLUMNS = ["doc_id", "source", "page_index", "page_count", "vision_tokens", "text"]


def read_store_summary(store_dir: str | Path) -> dict:
    path = Path(store_dir) / "summary.json"
    if not path.is_file():
        raise DataError(f"{store_dir} is not a page store: no summary.json (run `mmprolong ingest` first)")
    return json.loads(path.read_text())


def store_family(summary: dict) -> ModelFamily:
    """The model family whose vision tokens a store counts (stores made before families: Qwen2.5-VL)."""
    return get_family(summary.get("config", {}).get("family", DEFAULT_FAMILY.name))


def load_documents(store_dir: str | Path, *, truth_dir: str | Path | None = None) -> list[DocumentView]:
    """Every document of the store, ordered by doc_id; ground truth attached where a truth file exists."""
    store_dir = Path(store_dir)
    shards = sorted(store_dir.glob("*.parquet"))
    if not shards:
        raise DataError(f"page store {store_dir} holds no *.parquet shards")
    table = ds.dataset([str(p) for p in shards], format="parquet").to_table(columns=STORE_COLUMNS)
    rows = sorted(table.to_pylist(), key=lambda r: (r["doc_id"], r["source"], r["page_index"]))
    by_doc: dict[str, list[dict]] = {}
    for row in rows:
        pages = by_doc.setdefault(row["doc_id"], [])
        if not pages or pages[0]["source"] == row["source"]:  # byte-identical copies: keep the first path
            pages.append(row)
    images = LazyPageImages(store_dir, {(r["doc_id"], r["page_index"]) for r in rows})
    docs, incomplete = [], 0
    for doc_id, pages in by_doc.items():
        if [p["page_index"] for p in pages] != list(range(pages[0]["page_count"])):
            # Pages that failed to render are missing: renumbering would break anchors, so skip the document.
            incomplete += 1
            continue
        truth = _load_truth(truth_dir, pages[0]["source"]) if truth_dir else None
        docs.append(DocumentView(
            doc_id=doc_id, source=pages[0]["source"], page_texts=tuple(p["text"] for p in pages),
            page_tokens=tuple(p["vision_tokens"] for p in pages),
            sections=_sections(truth), truth=truth, load_image=partial(images.image_bytes, doc_id)))
    duplicates = len({(r["doc_id"], r["source"]) for r in rows}) - len(by_doc)
    if incomplete or duplicates:
        log.warning("%s: %d documents with pages missing and %d duplicate copies left out of synth",
                    store_dir, incomplete, duplicates)
    return docs


def _load_truth(truth_dir: str | Path, source: str):
    from mmprolong.corpus import load_truth, truth_path
    from mmprolong.synth.generators.truth import TruthOracle

    pdf = Path(truth_dir) / source
    if not truth_path(pdf).is_file():
        return None
    return TruthOracle(load_truth(pdf))


def _sections(truth) -> tuple[Section, ...]:
    if truth is None:
        return ()
    return tuple(Section(title=s.title, level=s.level, start_page=s.start_page, end_page=s.end_page)
                 for s in truth.document.sections)


class LazyPageImages:
    """Page images for generators that show pages to a model; the store's index is built on first use only,
    since offline generators never ask."""

    def __init__(self, store_dir: Path, pages: set[tuple[str, int]]):
        self.store_dir, self.pages, self._store = store_dir, pages, None

    def image_bytes(self, doc_id: str, page_index: int) -> bytes:
        if self._store is None:
            self._store = PageStore(self.store_dir, self.pages)
        return self._store.image_bytes(doc_id, page_index)
