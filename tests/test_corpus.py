"""The embedded corpus: deterministic, resumable, exact page counts, and a ground truth that is true of the
rendered PDFs (values found in the text layer of their page and inside their boxes)."""

import json
import os
from collections import defaultdict
from types import SimpleNamespace

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from mmprolong.corpus import generate_document, load_truth, make_corpus, truth_path
from mmprolong.errors import ResumeError

SMALL = dict(docs=3, seed=1, min_pages=20, max_pages=30)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return out, make_corpus(out, **SMALL)


@pytest.fixture(scope="module")
def rendered(corpus):
    """Per document: its truth and, per page, (normalised text, text page, page size)."""
    _, pdfs = corpus
    docs = []
    for path in pdfs:
        pdf = pdfium.PdfDocument(path)
        pages = [pdf[i] for i in range(len(pdf))]
        docs.append((load_truth(path), pdf, pages, [p.get_textpage() for p in pages]))
    yield docs
    for _, pdf, _, _ in docs:
        pdf.close()


def _norm(text: str) -> str:
    return " ".join(text.split())  # pdfium ends lines in CRLF; wrapped values span lines


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- determinism and files ----------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_in_another_folder(corpus, tmp_path):
    out, pdfs = corpus
    assert [p.name for p in pdfs] == [f"doc-{i:05d}.pdf" for i in range(3)]
    make_corpus(tmp_path, **SMALL)
    assert _files(tmp_path) == _files(out)
    assert len(_files(out)) == 6  # a PDF and a truth per document, no temporary files left


def test_other_seed_gives_other_documents(corpus, tmp_path):
    out, _ = corpus
    make_corpus(tmp_path, **{**SMALL, "docs": 1, "seed": 2})
    assert (tmp_path / "doc-00000.pdf").read_bytes() != (out / "doc-00000.pdf").read_bytes()


def test_fewer_docs_are_a_prefix(corpus, tmp_path):
    out, _ = corpus
    make_corpus(tmp_path, **{**SMALL, "docs": 2})
    assert _files(tmp_path) == {k: v for k, v in _files(out).items() if k[:9] in ("doc-00000", "doc-00001")}


def test_rerun_skips_finished_documents_and_remakes_missing_ones(tmp_path):
    params = {**SMALL, "docs": 2, "min_pages": 3, "max_pages": 5}
    first = make_corpus(tmp_path, **params)
    before = _files(tmp_path)
    stamp = first[0].stat().st_mtime_ns
    first[1].unlink()  # as if killed between the two documents
    make_corpus(tmp_path, **params)
    assert _files(tmp_path) == before
    assert first[0].stat().st_mtime_ns == stamp
    with pytest.raises(ResumeError, match="doc-00000.pdf"):
        make_corpus(tmp_path, **{**params, "seed": 99})


@pytest.mark.parametrize("bad, name", [
    (dict(docs=0), "docs"), (dict(min_pages=0), "min_pages"), (dict(min_pages=30, max_pages=29), "max_pages"),
    (dict(docs="3"), "docs"), (dict(seed=1.5), "seed"),
])
def test_bad_arguments_name_the_argument(tmp_path, bad, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        make_corpus(tmp_path / "out", **{**SMALL, **bad})
    assert not (tmp_path / "out").exists()  # validated before any IO


# --- pages and kinds ----------------------------------------------------------------------------------


def test_page_counts_are_exact_and_in_range(rendered):
    for truth, pdf, _, _ in rendered:
        assert len(pdf) == truth.num_pages
        assert SMALL["min_pages"] <= truth.num_pages <= SMALL["max_pages"]


def test_all_three_kinds_over_a_few_seeds():
    kinds = {generate_document(0, seed=seed, min_pages=4, max_pages=4)[1].kind for seed in range(8)}
    assert kinds == {"report", "manual", "slides"}


def test_tiny_documents_still_have_their_exact_page_count():
    for pages in (1, 2, 5, 6):
        data, truth = generate_document(0, seed=pages, min_pages=pages, max_pages=pages)
        pdf = pdfium.PdfDocument(data)
        assert len(pdf) == truth.num_pages == pages
        pdf.close()


# --- the ground truth is true of the PDFs --------------------------------------------------------------


def test_every_rendered_value_is_in_the_text_layer_of_its_page(rendered):
    checked = 0
    for truth, _, _, textpages in rendered:
        texts = [_norm(tp.get_text_range()) for tp in textpages]
        for fact in truth.facts:
            assert (fact.rendered is None) == (fact.source == "figure"), fact
            if fact.rendered is not None:
                assert _norm(fact.rendered) in texts[fact.page], (truth.doc_name, fact)
                checked += 1
    assert checked > 100


def test_fact_boxes_hold_their_values(rendered):
    for truth, _, pages, textpages in rendered:
        for fact in truth.facts:
            if fact.rendered is None:
                continue
            width, height = pages[fact.page].get_size()
            x0, y0, x1, y1 = fact.bbox
            inside = textpages[fact.page].get_text_bounded(x0 * width, (1 - y1) * height, x1 * width,
                                                           (1 - y0) * height)
            assert _norm(fact.rendered) in _norm(inside), (truth.doc_name, fact, inside)


def test_figure_boxes_are_the_chart_images(rendered):
    figures = 0
    for truth, _, pages, _ in rendered:
        for fact in (f for f in truth.facts if f.source == "figure"):
            width, height = pages[fact.page].get_size()
            images = [obj.get_bounds() for obj in pages[fact.page].get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])]
            x0, y0, x1, y1 = fact.bbox
            box = (x0 * width, (1 - y1) * height, x1 * width, (1 - y0) * height)
            assert any(all(abs(a - b) < 1.0 for a, b in zip(box, image)) for image in images), fact
            figures += 1
    assert figures > 0


def test_an_entity_in_a_chart_has_no_other_fact_on_that_page(rendered):
    """Figure values are vouched for by (page, entity): only the chart itself may name the entity there."""
    for truth, _, _, _ in rendered:
        for fig in (f for f in truth.facts if f.source == "figure"):
            same = [f for f in truth.facts if (f.page, f.entity) == (fig.page, fig.entity)]
            assert all(f.source == "figure" and f.bbox == fig.bbox for f in same), same


def test_facts_are_unambiguous_and_well_formed(rendered):
    python_type = {"string": str, "integer": int, "float": float, "list": list}
    for truth, _, _, _ in rendered:
        pairs = [(f.entity, f.attribute) for f in truth.facts]
        assert len(set(pairs)) == len(pairs)
        assert len({f.fact_id for f in truth.facts}) == len(truth.facts)
        assert [f.page for f in truth.facts] == sorted(f.page for f in truth.facts)
        for fact in truth.facts:
            assert type(fact.value) is python_type[fact.value_type], fact
            assert fact.source in ("text", "table", "figure", "layout")
            x0, y0, x1, y1 = fact.bbox
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, fact


def test_pages_carry_a_few_facts_each(rendered):
    for truth, _, _, _ in rendered:
        per_page = defaultdict(int)
        for fact in truth.facts:
            per_page[fact.page] += 1
        front = {s.start_page for s in truth.sections if s.title in ("Cover", "Contents", "Agenda")}
        body = [per_page[p] for p in range(truth.num_pages) if p not in front]
        assert sum(n > 0 for n in body) >= 0.9 * len(body)
        assert 2 <= sum(body) / len(body) <= 9


def test_sections_cover_the_pages_in_order(rendered):
    for truth, _, _, _ in rendered:
        chapters = [s for s in truth.sections if s.level == 1]
        assert chapters[0].start_page == 0 and chapters[-1].end_page == truth.num_pages - 1
        for a, b in zip(chapters, chapters[1:]):
            assert a.end_page + 1 == b.start_page
        for chapter in chapters:
            subs = [s for s in truth.sections
                    if s.level == 2 and chapter.start_page <= s.start_page <= chapter.end_page]
            if subs:
                assert subs[0].start_page == chapter.start_page and subs[-1].end_page == chapter.end_page
                assert all(a.end_page + 1 == b.start_page for a, b in zip(subs, subs[1:]))
        assert len({s.title for s in truth.sections}) == len(truth.sections)
        innermost = {p: s.title for s in truth.sections for p in range(s.start_page, s.end_page + 1)}
        assert all(f.section == innermost[f.page] for f in truth.facts)


def test_groups_hold_every_fact_of_their_attribute_across_pages(rendered):
    for truth, _, _, _ in rendered:
        by_id = {f.fact_id: f for f in truth.facts}
        for attribute, ids in truth.groups.items():
            members = [by_id[i] for i in ids]
            assert {f.attribute for f in members} == {attribute}
            assert len({f.unit for f in members}) == 1 and len({f.entity for f in members}) == len(members) >= 2
            assert len(ids) == sum(f.attribute == attribute for f in truth.facts)
        numeric = [ids for ids in truth.groups.values()
                   if by_id[ids[0]].value_type in ("integer", "float") and len({by_id[i].page for i in ids}) >= 3]
        assert len(numeric) >= 3, truth.doc_name  # material for aggregation questions across pages


def test_text_reads_like_a_document(rendered):
    words = set()
    for truth, _, _, textpages in rendered:
        text = " ".join(tp.get_text_range() for tp in textpages)
        assert "{" not in text and "}" not in text  # every template slot filled
        assert truth.title in _norm(textpages[0].get_text_range())
        words.update(text.split())
    assert len(words) > 1500  # varied enough to train a tokenizer on


def test_truth_file_round_trips(corpus):
    _, pdfs = corpus
    for pdf in pdfs:
        text = truth_path(pdf).read_text(encoding="utf-8")
        assert text.endswith("}\n") and load_truth(pdf).to_json() == text
        data = json.loads(text)
        assert list(data) == sorted(data) and data["doc_name"] == pdf.stem


def test_a_killed_write_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    from mmprolong.corpus import generate

    class KilledError(Exception):
        pass

    def killed(src, dst):
        raise KilledError

    small = {**SMALL, "docs": 1, "min_pages": 2, "max_pages": 2}
    monkeypatch.setattr(generate, "os", SimpleNamespace(replace=killed))  # dies before the rename
    with pytest.raises(KilledError):
        make_corpus(tmp_path, **small)
    assert not list(tmp_path.glob("*.pdf")) and not list(tmp_path.glob("*.json"))
    monkeypatch.setattr(generate, "os", os)
    assert make_corpus(tmp_path, **small)[0].is_file()
