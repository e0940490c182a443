"""What --against reads: docvqa data folders (grouped as the docvqa suite groups them), folders, bad inputs."""

import json
from pathlib import Path

import pytest
from PIL import Image

from mmprolong import api
from mmprolong.decontam import DecontamConfig
from mmprolong.decontam.sources import discover, page_order
from mmprolong.errors import DataError
from mmprolong.eval.suites.docvqa_samples import write_docvqa_samples
from mmprolong.ingest import IngestConfig


def _image_pdf(paths: list[Path], out: Path) -> None:
    """Page images bound into a PDF without a text layer (a scan of the benchmark's pages)."""
    pages = [Image.open(p).convert("RGB") for p in paths]
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=72)


def test_docvqa_folder_copies_are_found_by_kind(tmp_path):
    made = write_docvqa_samples(tmp_path / "docvqa", docs=3, pages=6)
    train = tmp_path / "train"
    train.mkdir()
    pdf = made["mmlongbench-doc"] / "data" / "documents" / "report-0-1.pdf"
    (train / "mmlb-copy.pdf").write_bytes(pdf.read_bytes())
    _image_pdf(sorted((made["longdocurl"] / "data" / "pdf_pngs").rglob("4000001_*.png"), key=page_order),
               train / "longdocurl-scan.pdf")
    _image_pdf(sorted((made["slidevqa"] / "images" / "test" / "3-annual-review-0").iterdir(), key=page_order),
               train / "slides-scan.pdf")
    others = write_docvqa_samples(tmp_path / "other-docvqa", seed=1, docs=1, pages=6)  # same layouts, other facts
    _image_pdf(sorted((others["longdocurl"] / "data" / "pdf_pngs").rglob("*.png"), key=page_order),
               train / "near-miss.pdf")
    api.make_corpus(train / "unrelated", docs=2, seed=5, min_pages=4, max_pages=6)
    api.ingest(train, tmp_path / "store", IngestConfig(max_pixels=200_704, max_dpi=72.0), show_progress=False)
    summary = api.decontaminate(tmp_path / "store", [tmp_path / "docvqa"], tmp_path / "report", DecontamConfig(),
                                show_progress=False)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    found = {(m["source"], m["eval_name"], m["kind"]) for m in report["matches"]}
    assert found == {("mmlb-copy.pdf", "MMLongBench-Doc/data/documents/report-0-1.pdf", "exact"),
                     ("longdocurl-scan.pdf", "longdocurl/4000001", "image"),
                     ("slides-scan.pdf", "slidevqa/3-annual-review-0", "image")}, report["near_misses"][:4]
    assert report["sources"][0]["kind"] == "docvqa"
    # 3 PDFs + 3 LongDocURL documents + 3 slide decks, each once (the loader's PDF renders are not counted again)
    assert summary["evaluation_documents"] == 9
    assert summary["image_pages"] == "all"


def test_folder_groups_page_images_per_subfolder_in_natural_order(tmp_path):
    for n in (10, 2, 1):
        folder = tmp_path / "deck"
        folder.mkdir(exist_ok=True)
        Image.new("L", (8, 8), 255).save(folder / f"slide-{n}.png")
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    docs, info = discover(tmp_path, tmp_path)
    assert info == {"source": str(tmp_path), "kind": "folder", "documents": 2}
    assert [d.kind for d in docs] == ["pdf", "images"]
    assert [Path(p).name for p in docs[1].paths] == ["slide-1.png", "slide-2.png", "slide-10.png"]


def test_bad_sources_fail_with_the_source_named(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        discover(tmp_path / "missing", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no documents found"):
        discover(tmp_path / "empty", tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="must be a PDF"):
        discover(tmp_path / "notes.txt", tmp_path)


def test_unreadable_evaluation_files_are_reported_and_the_rest_used(tmp_path):
    api.make_corpus(tmp_path / "eval", docs=1, seed=3, min_pages=3, max_pages=3)
    (tmp_path / "eval" / "broken.pdf").write_bytes(b"not a pdf at all")
    api.ingest(tmp_path / "eval", tmp_path / "store", IngestConfig(max_pixels=200_704, max_dpi=72.0),
               show_progress=False)
    summary = api.decontaminate(tmp_path / "store", [tmp_path / "eval"], tmp_path / "report", DecontamConfig(),
                                show_progress=False)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [s["name"] for s in report["sources"][0]["skipped"]] == ["broken.pdf"]
    assert summary["matches_by_kind"] == {"exact": 1}
    assert "1 unreadable" in (tmp_path / "report" / "report.md").read_text()
