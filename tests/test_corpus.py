"""The embedded corpus: deterministic PDFs whose ground truth is true on the rendered pages."""

import pypdfium2 as pdfium
import pytest

from mmprolong.corpus import KINDS, load_truth, make_corpus, make_document


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return make_corpus(out, docs=3, seed=11, min_pages=20, max_pages=30)


def test_same_seed_same_bytes_and_prefix_property(corpus, tmp_path):
    again = make_corpus(tmp_path / "b", docs=2, seed=11, min_pages=20, max_pages=30)
    for a, b in zip(corpus, again):
        assert a.read_bytes() == b.read_bytes()
        assert a.with_name(a.stem + ".truth.json").read_bytes() == b.with_name(b.stem + ".truth.json").read_bytes()
    other = make_corpus(tmp_path / "c", docs=1, seed=12, min_pages=20, max_pages=30)
    assert other[0].read_bytes() != corpus[0].read_bytes()


def test_page_counts_and_kinds(corpus):
    for path in corpus:
        truth = load_truth(path)
        assert len(pdfium.PdfDocument(str(path))) == truth.num_pages
        assert 20 <= truth.num_pages <= 30
    kinds = {make_document(5, i, min_pages=3, max_pages=4)[1].kind for i in range(12)}
    assert kinds == set(KINDS)


def test_ground_truth_is_true_on_the_rendered_pages(corpus):
    checked_boxes = 0
    for path in corpus:
        truth = load_truth(path)
        pdf = pdfium.PdfDocument(str(path))
        texts = [_norm(page.get_textpage().get_text_range()) for page in pdf]
        assert len({(f.entity, f.attribute) for f in truth.facts}) == len(truth.facts)
        assert len({f.fact_id for f in truth.facts}) == len(truth.facts)
        for fact in truth.facts:
            if fact.rendered is None:
                assert fact.source == "figure"
                continue
            assert _norm(fact.rendered) in texts[fact.page], fact
            if fact.source in ("text", "table") and fact.fact_id.endswith(("0", "5")):
                page = pdf[fact.page]
                width, height = page.get_size()
                x0, y0, x1, y1 = fact.bbox
                inside = page.get_textpage().get_text_bounded(
                    left=x0 * width - 2, bottom=(1 - y1) * height - 2, right=x1 * width + 2, top=(1 - y0) * height + 2)
                assert _norm(fact.rendered).split()[0] in _norm(inside), fact
                checked_boxes += 1
        starts = [s.start_page for s in truth.sections]
        assert starts == sorted(starts) and truth.sections[-1].end_page == truth.num_pages - 1
        for group in truth.groups.values():
            assert len({next(f.attribute for f in truth.facts if f.fact_id == i) for i in group}) == 1
    assert checked_boxes > 20


def test_numeric_groups_span_pages(corpus):
    truth = load_truth(corpus[0])
    by_id = {f.fact_id: f for f in truth.facts}
    assert any(len({by_id[i].page for i in ids}) >= 2 for ids in truth.groups.values())


@pytest.mark.parametrize("kwargs,name", [({"docs": 0}, "docs"), ({"docs": 1, "min_pages": 2}, "min_pages"),
                                         ({"docs": 1, "min_pages": 30, "max_pages": 20}, "max_pages")])
def test_bad_arguments_name_themselves(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_corpus(tmp_path, seed=0, **kwargs)
