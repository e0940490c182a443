"""Bad input never stops a run and never passes silently: each bad file or page is skipped and reported."""

import json

from ingest_fixtures import make_image_bomb, make_pdf, segfaulting_processor

from mmprolong.ingest import ingest, read_store


def errors_by_path(store):
    lines = (store / "errors.jsonl").read_text().splitlines()
    return {error["path"]: error for error in map(json.loads, lines)}, len(lines)


def test_each_bad_file_is_reported_and_good_pages_kept(tmp_path, small_config):
    folder = tmp_path / "pdfs"
    good = make_pdf(folder / "good.pdf", 3)
    make_pdf(folder / "long.pdf", 6)
    make_pdf(folder / "locked.pdf", 2, encrypt="secret")
    make_pdf(folder / "giant.pdf", 1, pagesize=(20000, 600))
    make_image_bomb(folder / "bomb.pdf")
    whole = (folder / "good.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "notes.pdf").write_text("just some text, renamed to .pdf\n" * 10)

    store = tmp_path / "store"
    summary = ingest(folder, store, small_config(max_pages=5, workers=2), show_progress=False)

    table = read_store(store)
    assert table.column("source").to_pylist() == ["good.pdf"] * 3
    assert all(marker in text for marker, text in zip(good, table.column("text").to_pylist()))
    assert (summary.files, summary.documents, summary.pages, summary.skipped) == (8, 1, 3, 7)
    errors, lines = errors_by_path(store)
    assert lines == 7
    expected = {
        "long.pdf": "6 pages, over max_pages=5",
        "locked.pdf": "encrypted",
        "giant.pdf": "page size 20000x600 pt outside",
        "bomb.pdf": "embedded image of 40000x40000 px",
        "truncated.pdf": "truncated",
        "empty.pdf": "empty file (0 bytes)",
        "notes.pdf": "not a PDF: no %PDF- header",
    }
    assert set(errors) == set(expected)
    for path, reason in expected.items():
        assert reason in errors[path]["reason"], errors[path]
    assert errors["giant.pdf"]["page"] == 0 and errors["bomb.pdf"]["page"] == 0
    assert "page" not in errors["long.pdf"]


def test_oversized_file_is_skipped(tmp_path, small_config):
    folder = tmp_path / "pdfs"
    make_pdf(folder / "a.pdf", 1)
    size = (folder / "a.pdf").stat().st_size
    summary = ingest(folder, tmp_path / "store", small_config(max_file_bytes=size - 1), show_progress=False)
    assert summary.pages == 0 and summary.skipped == 1
    errors, _ = errors_by_path(tmp_path / "store")
    assert errors["a.pdf"]["reason"] == f"file is {size} bytes, over max_file_bytes={size - 1}"


def test_a_file_that_crashes_its_worker_is_reported_and_the_run_goes_on(tmp_path, small_config):
    folder = tmp_path / "pdfs"
    for name in ("a", "b_crash", "c", "d", "e"):
        make_pdf(folder / f"{name}.pdf", 2)
    store = tmp_path / "store"
    summary = ingest(folder, store, small_config(workers=2), processor=segfaulting_processor, show_progress=False)

    assert (summary.documents, summary.pages, summary.skipped) == (4, 8, 1)
    assert read_store(store).column("source").to_pylist() == [p for p in ("a", "c", "d", "e") for p in [f"{p}.pdf"] * 2]
    errors, lines = errors_by_path(store)
    assert lines == 1 and "crashed" in errors["b_crash.pdf"]["reason"]
