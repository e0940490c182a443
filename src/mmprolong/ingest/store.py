"""The page store on disk: deterministic Parquet shards of PAGE_SCHEMA, per-shard reports, manifest, summary.

Layout of ``OUT``::

    manifest.json          inputs (path, bytes) + output config, written before any work
    shard-00000.parquet    pages of documents [0, docs_per_shard) of the sorted input list
    _shards/00000.json     that shard's counts and skipped files/pages; its presence marks the shard done
    errors.jsonl           every skipped file and page, rebuilt from _shards/ at the end
    summary.json           totals; written last, so its presence marks the store complete

Every file is written to a temp file and renamed into place, so a killed run leaves either nothing or a
whole file. Parquet bytes depend only on the rows: fixed row groups, zstd, no timestamps.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmprolong.errors import DataError
from mmprolong.records import PAGE_SCHEMA, PAGE_SCHEMA_VERSION, PageRecord

ROW_GROUP_PAGES = 64  # ~20 MB of PNG pages per row group at the default pixel budget
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
ERRORS = "errors.jsonl"
SHARD_REPORTS = "_shards"
_DICTIONARY_COLUMNS = ["doc_id", "source", "image_format"]
_STATISTICS_COLUMNS = ["doc_id", "source", "page_index", "page_count", "width", "height", "vision_tokens"]


def shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / f"shard-{index:05d}.parquet"


def shard_report_path(out_dir: Path, index: int) -> Path:
    return out_dir / SHARD_REPORTS / f"{index:05d}.json"


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_json(path: Path, data, *, lines: bool = False) -> None:
    """Write JSON (sorted keys) or JSON lines atomically: temp file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if lines:
        text = "".join(json.dumps(item, sort_keys=True) + "\n" for item in data)
    else:
        text = json.dumps(data, sort_keys=True, indent=2) + "\n"
    tmp = temp_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def remove_temp_files(out_dir: Path) -> None:
    """Delete the temp files a killed run left behind."""
    for folder in (out_dir, out_dir / SHARD_REPORTS):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


class ShardWriter:
    """Writes PageRecords to one Parquet shard in fixed row groups; ``commit()`` renames it into place."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = temp_path(path)
        self.rows: list[dict] = []
        self.writer = pq.ParquetWriter(
            self.tmp, PAGE_SCHEMA, compression="zstd", use_dictionary=_DICTIONARY_COLUMNS,
            write_statistics=_STATISTICS_COLUMNS, store_schema=True,
        )

    def add(self, record: PageRecord) -> None:
        self.rows.append(record.to_row())
        if len(self.rows) == ROW_GROUP_PAGES:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=PAGE_SCHEMA), row_group_size=ROW_GROUP_PAGES)
            self.rows = []

    def commit(self) -> None:
        self._flush()
        self.writer.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


def shard_files(store_dir: str | Path) -> list[Path]:
    """The store's shard files, in order; DataError if the folder is not a complete page store."""
    store = Path(store_dir)
    if not (store / SUMMARY).is_file():
        raise DataError(f"{store} is not a complete page store (no {SUMMARY}): run ingest on it again to finish it")
    return sorted(store.glob("shard-*.parquet"))


def read_store(store_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """The whole store as one Arrow table (pass ``columns`` to leave the image bytes on disk)."""
    tables = [_read_shard(path, columns) for path in shard_files(store_dir)]
    if not tables:
        schema = PAGE_SCHEMA if columns is None else pa.schema([PAGE_SCHEMA.field(c) for c in columns])
        return schema.empty_table()
    return pa.concat_tables(tables)


def iter_documents(store_dir: str | Path) -> Iterator[list[PageRecord]]:
    """Each stored document's pages, in store order, one shard in memory at a time."""
    for path in shard_files(store_dir):
        pages: list[PageRecord] = []
        for row in _read_shard(path, None).to_pylist():
            record = PageRecord.from_row(row)
            if pages and record.source != pages[-1].source:
                yield pages
                pages = []
            pages.append(record)
        if pages:
            yield pages


def _read_shard(path: Path, columns: list[str] | None) -> pa.Table:
    metadata = pq.read_schema(path).metadata or {}
    version = metadata.get(b"mmprolong.schema_version", b"").decode()
    if version != PAGE_SCHEMA_VERSION:
        raise DataError(f"{path}: page-store schema version {version or '(none)'}, this mmprolong reads "
                        f"{PAGE_SCHEMA_VERSION}: ingest the PDFs again with this version")
    return pq.read_table(path, columns=columns)


class PageStore:
    """Page images by (doc_id, page_index), read on demand from the page store's Parquet shards.

    The index is built from the ``doc_id`` and ``page_index`` columns only, and only for the pages asked for;
    images are read one row group at a time (``image`` and ``image_format`` columns) through a small LRU cache,
    which suits samples made of consecutive pages.
    """

    def __init__(self, store_dir: str | Path, pages: set[tuple[str, int]], *, cached_row_groups: int = 4):
        self.store_dir = Path(store_dir)
        self.files = sorted(self.store_dir.glob("*.parquet"))
        if not self.files:
            raise DataError(f"page store {self.store_dir} holds no *.parquet shards")
        self.cached_row_groups = cached_row_groups
        self.location: dict[tuple[str, int], tuple[int, int, int]] = {}  # -> (file, row group, row in group)
        docs = pa.array(sorted({doc for doc, _ in pages}), type=pa.string())
        for f, path in enumerate(self.files):
            meta = pq.ParquetFile(path).metadata
            starts = [0]
            for g in range(meta.num_row_groups):
                starts.append(starts[-1] + meta.row_group(g).num_rows)
            table = pq.read_table(path, columns=["doc_id", "page_index"])
            rows = pc.indices_nonzero(pc.is_in(table.column("doc_id"), value_set=docs))
            picked = table.take(rows)
            group = 0
            for row, doc, page in zip(rows.to_pylist(), picked.column("doc_id").to_pylist(),
                                      picked.column("page_index").to_pylist()):
                if (doc, page) in pages:
                    while starts[group + 1] <= row:
                        group += 1
                    self.location.setdefault((doc, page), (f, group, row - starts[group]))
        self._cache: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.location

    def image_bytes(self, doc_id: str, page_index: int) -> bytes:
        """The page's encoded image (PNG or JPEG bytes, as stored)."""
        if (doc_id, page_index) not in self.location:
            raise DataError(f"page {page_index} of document {doc_id} is not in the page store {self.store_dir}")
        f, group, row = self.location[(doc_id, page_index)]
        return self._row_group(f, group).column("image")[row].as_py()

    def image(self, doc_id: str, page_index: int):
        """The page as a decoded PIL image."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.image_bytes(doc_id, page_index)))
        image.load()
        return image

    def _row_group(self, f: int, group: int) -> pa.Table:
        key = (f, group)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        table = pq.ParquetFile(self.files[f]).read_row_group(group, columns=["image", "image_format"])
        self._cache[key] = table
        while len(self._cache) > self.cached_row_groups:
            self._cache.popitem(last=False)
        return table

    def __getstate__(self):  # workers start with an empty cache
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state
