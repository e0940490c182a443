"""The page store's rows: one per page, exact vision tokens, images inside the budget, text, content ids."""

import io
import json
import shutil

import pyarrow.parquet as pq
import pytest
from ingest_fixtures import make_pdf
from PIL import Image

from mmprolong.errors import DataError
from mmprolong.ingest import IngestConfig, discover_pdfs, ingest, iter_documents, read_store
from mmprolong.records import PAGE_SCHEMA, PageRecord
from mmprolong.tokens import image_tokens


def test_one_row_per_page_with_exact_tokens_text_and_size(corpus, small_config, tmp_path):
    markers, folder = corpus
    config = small_config()
    summary = ingest(folder, tmp_path / "store", config, show_progress=False)

    table = read_store(tmp_path / "store")
    assert table.num_rows == summary.pages == sum(len(m) for m in markers.values()) == 15
    assert summary.documents == summary.files == 5 and summary.skipped == 0
    assert summary.vision_tokens == sum(table.column("vision_tokens").to_pylist())
    for row in table.to_pylist():
        record = PageRecord.from_row(row)
        image = Image.open(io.BytesIO(record.image))
        assert image.format == "PNG" and image.size == (record.width, record.height)
        assert record.width * record.height <= config.max_pixels
        assert record.vision_tokens == image_tokens(record.height, record.width, min_pixels=config.min_pixels,
                                                    max_pixels=config.max_pixels)
        assert markers[record.source][record.page_index] in record.text
        assert "\r" not in record.text
        assert record.page_count == 3


def test_doc_id_is_the_content_hash(tmp_path, small_config):
    import hashlib

    folder = tmp_path / "pdfs"
    make_pdf(folder / "a.pdf", 2)
    (folder / "sub").mkdir()
    shutil.copy(folder / "a.pdf", folder / "sub" / "copy.PDF")
    ingest(folder, tmp_path / "store", small_config(), show_progress=False)

    documents = list(iter_documents(tmp_path / "store"))
    assert [doc[0].source for doc in documents] == ["a.pdf", "sub/copy.PDF"]
    expected = hashlib.sha256((folder / "a.pdf").read_bytes()).hexdigest()[:16]
    assert {page.doc_id for doc in documents for page in doc} == {expected}
    assert [[p.page_index for p in doc] for doc in documents] == [[0, 1], [0, 1]]


def test_store_files_read_as_they_are(corpus, small_config, tmp_path):
    import datasets

    _, folder = corpus
    store = tmp_path / "store"
    summary = ingest(folder, store, small_config(), show_progress=False)

    shards = sorted(store.glob("shard-*.parquet"))
    assert [p.name for p in shards] == ["shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]
    assert pq.read_schema(shards[0]).equals(PAGE_SCHEMA, check_metadata=True)
    loaded = datasets.load_dataset("parquet", data_files=str(store / "shard-*.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == summary.pages
    data = json.loads((store / "summary.json").read_text())
    for key in ("documents", "pages", "skipped", "vision_tokens", "seconds", "pages_per_second", "config",
                "schema_version"):
        assert key in data
    assert data["config"]["max_pixels"] == small_config().max_pixels
    assert (store / "errors.jsonl").read_text() == ""


def test_jpeg_and_dpi_cap(tmp_path):
    folder = tmp_path / "pdfs"
    make_pdf(folder / "small.pdf", 1, pagesize=(144, 72))  # 2 x 1 in: far under the pixel budget
    config = IngestConfig(image_format="jpeg", jpeg_quality=80, max_dpi=100)
    ingest(folder, tmp_path / "store", config, show_progress=False)
    row = read_store(tmp_path / "store").to_pylist()[0]
    assert (row["width"], row["height"], row["image_format"]) == (200, 100, "jpeg")  # 100 dpi, not the budget
    assert Image.open(io.BytesIO(row["image"])).format == "JPEG"


def test_read_store_columns_and_incomplete_store(corpus, small_config, tmp_path):
    _, folder = corpus
    store = tmp_path / "store"
    ingest(folder, store, small_config(), show_progress=False)
    table = read_store(store, columns=["doc_id", "vision_tokens"])
    assert table.column_names == ["doc_id", "vision_tokens"]
    (store / "summary.json").unlink()
    with pytest.raises(DataError, match="not a complete page store"):
        read_store(store)


def test_missing_or_empty_folder_is_a_clear_error(tmp_path, small_config):
    with pytest.raises(DataError, match="no such folder"):
        ingest(tmp_path / "nope", tmp_path / "store", small_config(), show_progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a pdf")
    with pytest.raises(DataError, match=r"no \*\.pdf files"):
        ingest(tmp_path / "empty", tmp_path / "store", small_config(), show_progress=False)


def test_discovery_is_recursive_case_insensitive_and_sorted(tmp_path):
    for rel in ["b.pdf", "A.PDF", "sub/c.Pdf", "sub/deeper/a.pdf", "x.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"%PDF-")
    assert [rel for rel, _ in discover_pdfs(tmp_path)] == ["A.PDF", "b.pdf", "sub/c.Pdf", "sub/deeper/a.pdf"]
