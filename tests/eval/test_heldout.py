"""synth-heldout: a documented hash split, synth's builders on held-out documents only, exact lengths."""

import json

import pytest
from eval_fixtures import FakeBackend

from mmprolong import api
from mmprolong.errors import ConfigError
from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.items import read_items, read_results
from mmprolong.eval.pages import StorePages, span
from mmprolong.ingest import IngestConfig
from mmprolong.split import heldout_score, heldout_split, is_heldout


def test_split_is_a_stable_hash_of_doc_id():
    ids = [f"{i:016x}" for i in range(4000)]
    train, held = heldout_split(ids, 0.05)
    assert sorted(train + held) == sorted(ids) and 150 <= len(held) <= 250  # about 5%
    assert held == heldout_split(list(reversed(ids)), 0.05)[1]  # order does not matter
    assert set(heldout_split(ids, 0.02)[1]) <= set(held)  # nested: a smaller share is a subset
    assert all(is_heldout(i, 0.05) for i in held) and not any(is_heldout(i, 0.05) for i in train)
    assert heldout_score("0123456789abcdef") == heldout_score("0123456789abcdef")
    assert 0 <= heldout_score("x") < 1


def test_items_come_from_held_out_documents(tmp_path, store_dir):
    config = EvalConfig(suite="synth-heldout", store_dir=str(store_dir), heldout_fraction=0.3, depth_steps=2,
                        lengths=[384, 768], max_new_tokens=8)
    backend = FakeBackend(answer="42")
    summary = evaluate(backend, out_dir=tmp_path / "run", config=config)
    items = read_items(tmp_path / "run" / "items.jsonl")
    store = StorePages(store_dir)
    _, held = heldout_split(store.doc_ids, 0.3)
    one_page = max(span(p) for doc in store.pages.values() for p in doc)
    assert summary["items"] == len(items) == 2 * 3 * 2 and summary["errors"] == 0
    assert {i.task for i in items} == {"extract-single", "extract-multi", "reasoning"}
    for item in items:
        meta = json.loads(item.metadata)
        assert meta["doc"] in held
        evidence_docs = {item.images[e].doc_id for e in item.evidence}
        assert evidence_docs == {meta["doc"]}  # the question's evidence is on the held-out document
        assert item.length - one_page <= item.tokens <= item.length
        assert item.metric == "mmlongbench-docqa"
    assert all(r.status == "ok" for r in read_results(tmp_path / "run"))
    again = evaluate(FakeBackend(answer="42"), out_dir=tmp_path / "run2", config=config)
    assert [i.item_id for i in read_items(tmp_path / "run2" / "items.jsonl")] == [i.item_id for i in items]
    assert again["items"] == summary["items"]


def test_no_held_out_document_is_an_item_error(tmp_path, store_dir):
    config = EvalConfig(suite="synth-heldout", store_dir=str(store_dir), heldout_fraction=1e-9, depth_steps=1,
                        lengths=[384], heldout_tasks=["extract-single"], max_new_tokens=8)
    summary = evaluate(FakeBackend(), out_dir=tmp_path / "run", config=config)
    assert summary["errors"] == 1
    assert "no held-out document" in read_results(tmp_path / "run")[0].error


def test_ocr_tasks_are_scored_as_transcripts(tmp_path, store_dir):
    """ocr-full and ocr-needle on held-out pages: the gold is the pages' text, scored by character similarity
    (a perfect reader 1.0, a fixed wrong answer in between 0 and 1, not ANLS's 0); a transcript that does not fit
    max_new_tokens is an error item that says so, not a truncated answer scored low."""
    from eval_fixtures import OracleBackend

    from mmprolong.eval.metrics import char_similarity

    config = EvalConfig(suite="synth-heldout", store_dir=str(store_dir), heldout_fraction=0.3, depth_steps=2,
                        lengths=[768], heldout_tasks=["ocr-full", "ocr-needle"], max_new_tokens=600)
    perfect = evaluate(OracleBackend(), out_dir=tmp_path / "oracle", config=config)
    items = read_items(tmp_path / "oracle" / "items.jsonl")
    assert perfect["items"] == len(items) == 4 and perfect["errors"] == 0
    assert {i.metric for i in items} == {"char-similarity"} and {i.task for i in items} == {"ocr-full", "ocr-needle"}
    assert all(r.score == 1.0 for r in read_results(tmp_path / "oracle"))
    _, held = heldout_split(StorePages(store_dir).doc_ids, 0.3)
    assert all(json.loads(i.metadata)["doc"] in held for i in items)
    evaluate(FakeBackend(answer="Answer: page"), out_dir=tmp_path / "fake", config=config)
    for item, result in zip(items, read_results(tmp_path / "fake")):
        assert result.score == pytest.approx(char_similarity("page", item.answers[0]), abs=1e-6)
        assert 0 < result.score < 0.5
    short = evaluate(OracleBackend(), out_dir=tmp_path / "short", config=EvalConfig(**{**config.to_dict(),
                                                                                        "max_new_tokens": 8}))
    assert short["errors"] == 4
    assert all("transcript longer than max_new_tokens=8" in r.error for r in read_results(tmp_path / "short"))


@pytest.fixture(scope="module")
def truth_store(tmp_path_factory):
    """A generated corpus with its ground truth (the store remembers where: synth-heldout finds the truth files)."""
    root = tmp_path_factory.mktemp("truth")
    api.make_corpus(root / "pdfs", docs=8, seed=3, min_pages=20, max_pages=30, show_progress=False)
    api.ingest(root / "pdfs", root / "store", IngestConfig(max_pixels=96 * 28 * 28, max_dpi=72.0, workers=2),
               show_progress=False)
    return root / "store"


def test_heldout_questions_can_be_asked_in_the_training_form(tmp_path, truth_store):
    """heldout_anchor_share 0 asks about the same held-out facts without saying where they are (the form the
    quickstart trains on); the default asks the paper's anchored questions, with the items and cache fingerprint
    it had before the field existed."""
    fields = dict(suite="synth-heldout", store_dir=str(truth_store), heldout_fraction=0.5, depth_steps=2,
                  lengths=[1024], heldout_tasks=["extract-single"], items_per_cell=4, max_new_tokens=8)
    paper, bare = EvalConfig(**fields), EvalConfig(**fields, heldout_anchor_share=0.0)
    assert "heldout_anchor_share" not in paper.item_fields() and bare.item_fields()["heldout_anchor_share"] == 0.0
    for name, config in (("paper", paper), ("bare", bare)):
        summary = evaluate(FakeBackend(answer="42"), out_dir=tmp_path / name, config=config)
        assert summary["items"] == 8 and summary["errors"] == 0
    anchored, plain = (read_items(tmp_path / name / "items.jsonl") for name in ("paper", "bare"))
    for a, b in zip(anchored, plain):
        assert json.loads(a.metadata)["doc"] == json.loads(b.metadata)["doc"] and a.answers == b.answers
        assert " on page" in a.question or " in the section" in a.question
        assert " on page" not in b.question and " in the section" not in b.question
        assert a.question.split(" of ")[0] == b.question.split(" of ")[0]  # the same attribute asked
    with pytest.raises(ConfigError, match="heldout_anchor_share"):
        EvalConfig(**fields, heldout_anchor_share=1.5).validate()
