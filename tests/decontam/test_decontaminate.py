"""decontaminate on a store of copies and near misses: every copy is caught with the right kind and pages, no
near miss is, the report and the exclusion list say so, and a rerun resumes."""

import json

import pypdfium2 as pdfium
import pytest

from mmprolong import api
from mmprolong.cli import main
from mmprolong.decontam import DecontamConfig
from mmprolong.decontam.exclusion import load_exclusion
from mmprolong.ingest import IngestConfig
from mmprolong.ingest.store import read_store


@pytest.fixture(scope="module")
def run(scenario):
    root, truth = scenario
    summary = api.decontaminate(root / "store", [root / "eval", root / "eval-images"], root / "report",
                                DecontamConfig(workers=2), show_progress=False)
    return summary, json.loads((root / "report" / "report.json").read_text())


def _matches(report):
    return {m["source"]: m for m in report["matches"]}


def test_every_copy_is_caught_and_no_near_miss(scenario, run):
    _, truth = scenario
    summary, report = run
    matches = _matches(report)
    copies = {name: t for name, t in truth.items() if t}
    assert set(matches) == set(copies), (sorted(matches), report["near_misses"][:3])
    for name, (kind, eval_name) in copies.items():
        assert matches[name]["eval_name"] == eval_name, name
    assert matches["exact-doc-00000.pdf"]["kind"] == "exact"
    assert matches["scanned-doc-00000.pdf"]["kind"] == "image"  # no text layer at all
    assert matches["image-original.pdf"]["kind"] == "image"
    for name in ("resaved-doc-00001.pdf", "reordered-doc-00001.pdf", "page-dropped-doc-00002.pdf",
                 "excerpt-doc-00002.pdf"):
        assert "text" in matches[name]["kind"].split("+"), matches[name]
        assert matches[name]["text"] >= 0.99
    retypeset = matches["retypeset-doc-00001.pdf"]  # new page breaks: shingles across them differ
    assert retypeset["kind"] == "text" and retypeset["text"] >= 0.9
    assert summary["matches"] == len(copies) and summary["excluded_documents"] == len(copies)
    assert summary["image_pages"] == "all"  # the page-image document has no text layer
    near = [m for m in report["near_misses"] if truth[m["source"]] is None]
    assert max((max(m["text"] or 0, m["image"] or 0) for m in near), default=0) < 0.6


def test_matched_pages_pair_each_training_page_with_its_original(scenario, run):
    root, truth = scenario
    _, report = run
    texts = {}
    for row in read_store(root / "store", columns=["source", "page_index", "text"]).to_pylist():
        texts[(row["source"], row["page_index"])] = row["text"]
    for name in ("reordered-doc-00001.pdf", "page-dropped-doc-00002.pdf", "excerpt-doc-00002.pdf"):
        match = _matches(report)[name]
        eval_pdf = pdfium.PdfDocument(str(root / "eval" / truth[name][1]))
        assert len(match["matched_pages"]) == match["pages"]
        for page, eval_page, by, similarity in match["matched_pages"]:
            eval_text = eval_pdf[eval_page - 1].get_textpage().get_text_bounded().replace("\r\n", "\n")
            assert texts[(name, page - 1)] == eval_text.replace("\r", "\n"), (name, page, eval_page)
            assert (by, similarity) == ("text", 1.0) or by == "image"  # a cover has too few words for text
    reordered = [p[:2] for p in _matches(report)["reordered-doc-00001.pdf"]["matched_pages"]]
    assert any(a != b for a, b in reordered)
    dropped = _matches(report)["page-dropped-doc-00002.pdf"]
    assert len({p[1] for p in dropped["matched_pages"]}) == dropped["eval_pages"] - 1


def test_exclusion_list_and_markdown(scenario, run):
    root, truth = scenario
    summary, report = run
    doc_ids = {row["source"]: row["doc_id"] for row in read_store(root / "store", columns=["source", "doc_id"])
               .to_pylist()}
    exclusion = load_exclusion(summary["exclusion_list"])
    assert exclusion.doc_ids == {doc_ids[name] for name, t in truth.items() if t}
    markdown = (root / "report" / "report.md").read_text()
    assert f"{len(exclusion.doc_ids)} training documents excluded" in markdown
    for name in exclusion.doc_ids:
        assert name in markdown
    assert report["training"]["documents"] == len(truth)
    assert report["evaluation"]["documents"] == 4


def test_rerun_resumes_without_redoing_tasks(scenario, run):
    root, _ = scenario
    summary, _ = run
    tasks = sorted((root / "report" / "_store").glob("*.json")) + sorted((root / "report" / "_eval").glob("*.pkl"))
    before = {p: p.stat().st_mtime_ns for p in tasks}
    again = api.decontaminate(root / "store", [root / "eval", root / "eval-images"], root / "report",
                              DecontamConfig(workers=2), show_progress=False)
    assert {p: p.stat().st_mtime_ns for p in tasks} == before
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in summary.items() if k != "seconds"}


def test_text_only_sources_hash_only_textless_training_documents(scenario, tmp_path):
    """Against PDFs with text, only the pages of training documents without text are decoded, and the scanned
    copy is caught by them."""
    root, truth = scenario
    summary = api.decontaminate(root / "store", [root / "eval"], tmp_path / "report", DecontamConfig(),
                                show_progress=False)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert summary["image_pages"] == "textless"
    assert set(_matches(report)) == {name for name, t in truth.items() if t and t[0] != "eval as page images"}
    sources = read_store(root / "store", columns=["source"])["source"].to_pylist()
    assert report["training"]["image_pages"] == sources.count("scanned-doc-00000.pdf")  # the one text-less copy


def test_page_store_and_single_pdf_sources_via_cli(scenario, tmp_path, capsys):
    """A page store as the evaluation side matches by doc_id too; a PDF file is a source of one document."""
    root, _ = scenario
    api.ingest(root / "eval", tmp_path / "eval-store", IngestConfig(max_pixels=200_704, max_dpi=72.0),
               show_progress=False)
    assert main(["decontaminate", str(root / "store"), "--against", str(tmp_path / "eval-store"),
                 str(root / "eval" / "doc-00001.pdf"), "--out", str(tmp_path / "report")]) == 0
    summary = json.loads(capsys.readouterr().out)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    kinds = {(m["source"], m["eval_source"]): m["kind"] for m in report["matches"]}
    assert kinds[("exact-doc-00000.pdf", str(tmp_path / "eval-store"))] == "exact"
    assert ("resaved-doc-00001.pdf", str(root / "eval" / "doc-00001.pdf")) in kinds
    assert [s["kind"] for s in report["sources"]] == ["page-store", "pdf"]
    assert summary["excluded_documents"] == 7  # the page-image document is not among these sources

