"""docvqa: the three released layouts are read from the generated sample set; inputs are cut or padded to each
length, keeping the evidence pages, padding alternately left and right."""

import json
from pathlib import Path

import pytest

from mmprolong.eval import EvalConfig
from mmprolong.eval.pages import span
from mmprolong.eval.pdf_pages import PdfPages
from mmprolong.eval.suites.common import SuiteContext
from mmprolong.eval.suites.docvqa import _Page, build_items, fit_document
from mmprolong.eval.suites.docvqa_samples import write_docvqa_samples
from mmprolong.eval.suites.docvqa_sources import Sources, load_dataset
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

LENGTHS = [512, 1536]
DATASETS = ("mmlongbench-doc", "longdocurl", "slidevqa")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("docvqa")
    write_docvqa_samples(root, seed=0, docs=4, pages=6)
    return root


def _ctx(tmp_path, data_dir, template, **overrides):
    config = EvalConfig(suite="docvqa", data_dir=str(data_dir), pdf_max_dpi=72.0, render_cache_dir=str(tmp_path),
                        **{"lengths": LENGTHS, **overrides})
    return SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, Path(tmp_path))


def _sources(cache) -> Sources:
    pdfs = PdfPages(cache, family=DEFAULT_FAMILY, max_dpi=72.0, min_pixels=DEFAULT_MIN_PIXELS,
                    max_pixels=DEFAULT_MAX_PIXELS)
    return Sources(DEFAULT_FAMILY, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, pdfs, Path(cache))


@pytest.fixture(scope="module")
def items(tmp_path_factory, data_dir, template):
    return build_items(_ctx(tmp_path_factory.mktemp("out"), data_dir, template))


def test_sample_set_has_each_released_layout(data_dir):
    """The repositories' layouts as a clone gives them, folder names spelled as the repositories spell them."""
    samples = json.loads((data_dir / "MMLongBench-Doc" / "data" / "samples.json").read_text())
    assert {"doc_id", "question", "answer", "evidence_pages", "answer_format"} <= set(samples[0])
    assert isinstance(samples[0]["evidence_pages"], str) and samples[0]["doc_id"].endswith(".pdf")
    assert {"Int", "Float", "Str", "List", "None"} == {s["answer_format"] for s in samples}
    assert len(list((data_dir / "MMLongBench-Doc" / "data" / "documents").glob("*.pdf"))) == 4
    row = json.loads((data_dir / "LongDocURL" / "data" / "LongDocURL.jsonl").read_text().splitlines()[0])
    assert {"question_id", "doc_no", "total_pages", "start_end_idx", "evidence_pages", "answer_format",
            "task_tag", "images"} <= set(row)
    folder = data_dir / "LongDocURL" / "data" / "pdf_pngs" / "4000-4999" / row["doc_no"][:4]
    assert (folder / f"{row['doc_no']}_0.png").is_file()
    row = json.loads((data_dir / "SlideVQA" / "annotations" / "qa" / "test.jsonl").read_text().splitlines()[0])
    assert {"deck_name", "qa_id", "question", "answer", "evidence_pages", "image_urls"} <= set(row)
    assert row["deck_name"][0].isdigit()
    assert (data_dir / "SlideVQA" / "images" / "test" / row["deck_name"] / f"{row['deck_name']}-1-1024.jpg").is_file()


@pytest.mark.parametrize("dataset", DATASETS)
def test_loaders_read_each_layout(tmp_path, data_dir, template, dataset):
    bench = load_dataset(dataset, data_dir, _sources(tmp_path))
    assert len(bench.docs) == 4 and all(not d.error and len(d.pages) == 6 for d in bench.docs.values())
    assert all(p.vision_tokens == 48 for d in bench.docs.values() for p in d.pages)  # 168x224 px pages
    assert bench.questions and not any(q.error for q in bench.questions)
    first = bench.questions[0]
    if dataset == "mmlongbench-doc":
        record = json.loads((data_dir / "MMLongBench-Doc" / "data" / "samples.json").read_text())[0]
        assert first.evidence == [p - 1 for p in json.loads(record["evidence_pages"])]  # 1-based -> 0-based
        assert any(q.answer == "Not answerable" and q.evidence == [] for q in bench.questions)
    elif dataset == "longdocurl":
        record = json.loads((data_dir / "LongDocURL" / "data" / "LongDocURL.jsonl").read_text().splitlines()[0])
        assert first.evidence == [p - 1 for p in record["evidence_pages"]] and first.doc == record["doc_no"]
        assert first.window == (record["start_end_idx"][0] - 1, record["start_end_idx"][1] - 1)
    else:
        assert {q.answer_format for q in bench.questions} == {"Integer", "Float", "String"}


def test_cut_keeps_evidence_and_pad_hits_the_length(items):
    assert len(items) == 2 * sum(1 for _ in items if _.length == 512)
    for item in items:
        assert not item.error, item.error
        meta = json.loads(item.metadata)
        assert item.length - meta["tolerance"] <= item.tokens <= item.length
        assert meta["tolerance"] <= max(span(im) for im in item.images) + 30  # one page and its label
        assert _evidence_pages(item) == meta["evidence_pages"]  # every evidence page kept, in order
        # Evidence is labelled with its document page number, so the question's "page N" still holds.
        for position in item.evidence:
            label = [p for p in item.parts if isinstance(p, str)][position]
            assert f"(page {json.loads(item.metadata)['kept_pages'][position - _left_pages(item)]})" in label
    cut = [i for i in items if i.length == 512]
    assert all(len(json.loads(i.metadata)["kept_pages"]) < 6 for i in cut)  # 6 pages do not fit in 512
    padded = [i for i in items if i.length == 1536]
    assert all(len(json.loads(i.metadata)["kept_pages"]) == 6 for i in padded)


def _evidence_pages(item) -> list[int]:
    """The question's evidence pages (1-based) that the item keeps: all of them."""
    kept = json.loads(item.metadata)["kept_pages"]
    return [kept[position - _left_pages(item)] for position in item.evidence]


def _left_pages(item) -> int:
    meta = json.loads(item.metadata)
    labels = [p for p in item.parts if isinstance(p, str)][:-1]
    return sum(1 for label in labels if f"Document {Path(meta['doc']).stem[:15]} " not in label)


def test_padding_alternates_left_and_right(items):
    for item in (i for i in items if i.length == 1536):
        meta = json.loads(item.metadata)
        assert len(meta["left_docs"]) >= 1 and len(meta["right_docs"]) >= 1, meta  # 732 + 462 < 1536: both sides
        assert len(meta["left_docs"]) - len(meta["right_docs"]) in (0, 1)
        assert meta["doc"] not in meta["left_docs"] + meta["right_docs"]


def test_fit_document_rules(template):
    def page(doc, i, cost=10):
        from mmprolong.eval.items import ItemImage

        return _Page(doc, i, ItemImage(kind="file", vision_tokens=cost - 2, width=28, height=28, path=f"{doc}{i}"),
                     "", cost)

    main = [page("m", i) for i in range(10)]
    left, kept, right = fit_document(main, [2], [], 50)  # cut: the pages nearest page 2 stay
    assert [p.index for p in kept] == [0, 1, 2, 3, 4] and not left and not right
    left, kept, right = fit_document(main, [2, 8], [], 40)
    assert {2, 8} <= {p.index for p in kept} and sum(p.cost for p in kept) <= 40
    assert isinstance(fit_document(main, [0, 1, 2], [], 25), str)  # the evidence alone does not fit
    pool = [[page(f"p{d}", i) for i in range(3)] for d in range(4)]
    left, kept, right = fit_document(main, [2], pool, 100 + 75)
    # p0 left, p1 right, then p2 left from its last page, until the next page would pass the budget
    assert [p.doc for p in left] == ["p2", "p0", "p0", "p0"] and [p.index for p in left] == [2, 0, 1, 2]
    assert [p.doc for p in right] == ["p1", "p1", "p1"] and [p.index for p in right] == [0, 1, 2]


def test_native_metrics_and_question_selection(tmp_path, data_dir, template):
    ctx = _ctx(tmp_path, data_dir, template, docvqa_metric="native", max_questions=3, lengths=[1536])
    items = build_items(ctx)
    assert {i.metric for i in items} == {"mmlongbench-doc", "longdocurl", "slidevqa"}
    assert len(items) == 9
    again = build_items(_ctx(tmp_path, data_dir, template, docvqa_metric="native", max_questions=3, lengths=[1536]))
    assert [i.item_id for i in again] == [i.item_id for i in items]
