"""Synth on the embedded corpus: planned shares met, exact lengths, every answer re-checked, deterministic,
resumable after kill -9."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmprolong import api
from mmprolong.corpus import load_truth
from mmprolong.ingest import IngestConfig
from mmprolong.split import heldout_split
from mmprolong.synth.config import SynthConfig
from mmprolong.synth.export import read_samples
from mmprolong.synth.qa import candidate_from_json, values_equal, verify
from mmprolong.synth.store import load_documents
from mmprolong.template import ChatTemplate
from mmprolong.tokenizer import load_tokenizer

BUCKETS = [1024, 2048, 3072, 4097]
SMALL_PAGES = {"max_pixels": 96 * 28 * 28, "max_dpi": 72.0}


def _config(**kw) -> SynthConfig:
    return SynthConfig(**({"target_tokens": 4096, "buckets": BUCKETS, "budget_tokens": 240_000,
                           "unit_tokens": 20_000} | kw))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    api.make_corpus(root / "pdfs", docs=6, seed=3, min_pages=20, max_pages=40, show_progress=False)
    api.ingest(root / "pdfs", root / "store", IngestConfig(**SMALL_PAGES, workers=2), show_progress=False)
    return root


@pytest.fixture(scope="module")
def built(store):
    summary = api.synth(store / "store", store / "data", _config(workers=2), show_progress=False)
    return store / "data", summary


def test_default_mixture_meets_its_plan(built):
    data, summary = built
    assert summary["samples"] >= 80
    for key in ("share_by_bucket", "share_by_task"):
        for name, planned in summary["planned"][key].items():
            assert abs(summary[key][name] - planned) <= 0.02, (key, name, summary[key][name], planned)
    assert set(summary["planned"]["share_by_task"]) == {"extract-single", "extract-multi", "reasoning"}
    assert summary["planned"]["share_by_task"]["reasoning"] == pytest.approx(0.2)
    assert (data / "mixture.png").stat().st_size > 10_000
    assert summary["tokens"] == sum(summary["tokens_by_bucket"].values())


def test_each_bucket_and_task_is_filled_to_within_one_sample(built):
    """Filled to token targets, not sample counts: every bucket ends within one of its shortest samples of its
    planned tokens, every task within one sample of the shortest bucket, and summary.json reports those errors."""
    _, summary = built
    planned = summary["planned"]
    for kind, limit in (("bucket", lambda name: _bounds(name)[0]), ("task", lambda name: BUCKETS[0])):
        for name, target in planned[f"tokens_by_{kind}"].items():
            error = summary[f"error_by_{kind}"][name]
            assert error["tokens"] == summary[f"tokens_by_{kind}"][name] - target
            assert abs(error["tokens"]) <= limit(name), (kind, name, error)
            points = 100 * (summary[f"share_by_{kind}"][name] - planned[f"share_by_{kind}"][name])
            assert error["share_points"] == pytest.approx(points, abs=1e-3)


def test_lengths_are_exact_and_inside_their_buckets(built, store):
    data, _ = built
    template = ChatTemplate(load_tokenizer())
    docs = {d.doc_id: d for d in load_documents(store / "store")}
    for sample in read_samples(data):
        parts = [docs[p.doc_id].page_tokens[p.page_index] for p in sample.pages] + [sample.question]
        assert [p.vision_tokens for p in sample.pages] == parts[:-1]
        assert len(template.encode(parts, sample.answer)) == sample.tokens
        low, high = _bounds(sample.bucket)
        assert low <= sample.tokens < high


def _bounds(label: str) -> tuple[int, int]:
    low, high = label.split("-")
    parse = lambda t: int(t[:-1]) * 1024 if t.endswith("K") else int(t)  # noqa: E731
    return parse(low), parse(high)


def test_every_answer_rechecked_independently(built, store):
    """Against the text layer (verify) and, for ground-truth questions, against the truth file directly."""
    data, summary = built
    docs = {d.doc_id: d for d in load_documents(store / "store", truth_dir=store / "pdfs")}
    truths = {d.doc_id: load_truth(store / "pdfs" / d.source) for d in docs.values()}
    by_truth = 0
    for sample in read_samples(data):
        candidate = candidate_from_json(json.dumps(json.loads(sample.metadata)["candidate"]))
        doc = docs[candidate.doc_id]
        assert verify(candidate, doc.page_texts, doc.truth) is None
        assert candidate.answer == sample.answer
        ev_pages = [sample.pages[i] for i in sample.evidence]
        assert {(p.doc_id, p.page_index) for p in ev_pages} == {(doc.doc_id, e.page) for e in candidate.evidence}
        if candidate.generator == "truth":
            by_truth += 1
            facts = {f.fact_id: f for f in truths[doc.doc_id].facts}
            used = [facts[i] for i in candidate.extra["facts"]]
            for fact, evidence in zip(used, candidate.evidence):
                assert fact.page == evidence.page and values_equal(fact.value, evidence.value)
            if candidate.operation == "lookup":
                assert values_equal(used[0].value, candidate.answer_value)
            if candidate.operation == "list":
                assert all(values_equal(f.value, v) for f, v in zip(used, candidate.answer_value))
    assert by_truth > 0.9 * summary["samples"]  # the corpus has ground truth: it is the default source


def test_heldout_documents_never_reach_the_mixture(store, tmp_path):
    """Every page of every sample (evidence and padding) comes from a document outside eval's held-out split."""
    all_ids = {d.doc_id for d in load_documents(store / "store")}
    train, held = heldout_split(all_ids, 0.5)
    assert train and held  # the split of this corpus at 0.5 has both sides, so the test can fail
    summary = api.synth(store / "store", tmp_path / "data", _config(heldout_fraction=0.5, budget_tokens=60_000),
                        show_progress=False)
    used = {p.doc_id for sample in read_samples(tmp_path / "data") for p in sample.pages}
    assert used and used <= set(train)
    assert summary["heldout_documents"] == len(held) and summary["heldout_fraction"] == 0.5
    assert set(json.loads((tmp_path / "data" / "manifest.json").read_text())["heldout_doc_ids"]) == set(held)


def test_same_output_whatever_the_worker_count(built, store, tmp_path):
    data, _ = built
    api.synth(store / "store", tmp_path / "one", _config(workers=1), show_progress=False)
    shards = sorted(p.name for p in data.glob("*.parquet"))
    assert shards == sorted(p.name for p in (tmp_path / "one").glob("*.parquet"))
    for name in shards:
        assert (data / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_resume_after_kill_gives_the_uninterrupted_output(built, store, tmp_path):
    data, _ = built
    out = tmp_path / "killed"
    script = (f"from mmprolong import api; from tests.synth.test_synth_end_to_end import _config; "
              f"api.synth({str(store / 'store')!r}, {str(out)!r}, _config(workers=1), show_progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*.parquet")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(out.glob("*.parquet")))
    assert 0 < done < len(list(data.glob("*.parquet"))), "kill landed before the first or after the last unit"
    api.synth(store / "store", out, _config(workers=1), show_progress=False)
    for shard in data.glob("*.parquet"):
        assert pq.read_table(out / shard.name).equals(pq.read_table(shard))
    assert not list(out.glob(".*.tmp"))


def test_multi_items_sets_how_many_facts_an_extract_multi_question_asks_for(store):
    """Ground truth and text-layer clozes alike: each question picks within [least, most] distinct pages, never
    more; the page window may allow fewer, never fewer than 2. The default stays [2, 4]."""
    from mmprolong.errors import ConfigError
    from mmprolong.synth.generators import QARequest
    from mmprolong.synth.generators.factory import make_generator
    from mmprolong.synth.generators.textlayer import TextLayerGenerator

    docs = load_documents(store / "store", truth_dir=store / "pdfs")
    requests = [QARequest(doc=d, task="extract-multi", seed=s, target_tokens=4096) for d in docs for s in range(8)]
    assert _config().multi_items == [2, 4]
    cases = {"default": (make_generator(_config()), 2, 4),
             "truth, 5-6": (make_generator(_config(multi_items=[5, 6])), 5, 6),
             "text layer, 5-6": (TextLayerGenerator(multi_items=(5, 6)), 5, 6)}
    for case, (generator, least, most) in cases.items():
        made = [(r.doc, c) for r, c in zip(requests, generator.propose_many(requests)) if c is not None]
        counts = [len(c.evidence) for _, c in made]
        assert len(made) >= 20 and min(counts) >= 2 and max(counts) <= most, (case, counts)
        if least > 4:  # past the default's most: the option is what raised it
            assert max(counts) >= 5, (case, counts)
        for doc, c in made:
            assert len({e.page for e in c.evidence}) == len(c.evidence)
            assert verify(c, doc.page_texts, doc.truth) is None
    for bad in ([1, 4], [4, 3], [3]):
        with pytest.raises(ConfigError, match="multi_items"):
            _config(multi_items=bad).validate()


def test_anchor_share_drops_the_place_only_from_questions_the_document_answers_one_way(store):
    """anchor_share 0 asks about the same facts as the default; a question loses its anchor only when the document
    gives its entity and attribute a single value (else it would be ambiguous without one)."""
    from mmprolong.errors import ConfigError
    from mmprolong.synth.generators import QARequest
    from mmprolong.synth.generators.factory import make_generator
    from mmprolong.synth.generators.truth import TruthOracle

    docs = load_documents(store / "store", truth_dir=store / "pdfs")
    requests = [QARequest(doc=d, task="extract-single", seed=s, target_tokens=4096) for d in docs for s in range(12)]
    anchored = make_generator(_config()).propose_many(requests)
    bare = make_generator(_config(anchor_share=0.0)).propose_many(requests)
    dropped = kept = 0
    for request, a, b in zip(requests, anchored, bare):
        assert a.evidence == b.evidence and a.answer_value == b.answer_value
        if a.generator != "truth":
            assert b.question == a.question
            continue
        assert " on page" in a.question or " in the section" in a.question
        fact = next(f for f in request.doc.truth.document.facts if f.fact_id == a.extra["facts"][0])
        values = [f.value for f in request.doc.truth.document.facts
                  if (f.entity, f.attribute) == (fact.entity, fact.attribute)]
        if all(values_equal(v, values[0]) for v in values):
            unit = f" (in {fact.unit})" if fact.unit else ""
            assert b.question == f"What is the {fact.attribute} of {fact.entity}{unit}?"
            dropped += 1
        else:
            assert b.question == a.question
            kept += 1
        assert verify(b, request.doc.page_texts, request.doc.truth) is None
    assert dropped >= 20 and kept == 0  # the embedded corpus gives each entity and attribute one value
    # A document that gives every fact a second value elsewhere: every question keeps its anchor.
    doc = next(d for d in docs if d.truth is not None)
    truth = doc.truth.document
    twins = tuple(dataclasses.replace(f, fact_id=f"{f.fact_id}-b", value=f"{f.value}1",
                                      page=(f.page + 1) % truth.num_pages) for f in truth.facts)
    clash = dataclasses.replace(doc, truth=TruthOracle(dataclasses.replace(truth, facts=truth.facts + twins)))
    requests = [QARequest(doc=clash, task="extract-single", seed=s, target_tokens=4096) for s in range(12)]
    pairs = zip(make_generator(_config()).propose_many(requests),
                make_generator(_config(anchor_share=0.0)).propose_many(requests))
    for a, b in pairs:
        assert b.question == a.question, (a.question, b.question)
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="anchor_share"):
            _config(anchor_share=bad).validate()


def test_followups_are_verified_new_and_counted_exactly(built, store, tmp_path):
    """questions_per_sample 3: up to two follow-ups a sample, each re-checked against its own document and named
    by its evidence positions, new beside the questions before it, every turn in the exact length; the same
    output for any worker count; with 1 (``built``) no sample has one."""
    from mmprolong.errors import ConfigError

    assert not any(s.followups or "followups" in json.loads(s.metadata) for s in read_samples(built[0]))
    config = _config(questions_per_sample=3, budget_tokens=90_000)
    summary = api.synth(store / "store", tmp_path / "q3", dataclasses.replace(config, workers=2),
                        show_progress=False)
    samples = read_samples(tmp_path / "q3")
    template = ChatTemplate(load_tokenizer())
    docs = {d.doc_id: d for d in load_documents(store / "store", truth_dir=store / "pdfs")}
    counts = [s.questions for s in samples]
    assert max(counts) == 3 and counts.count(3) >= len(samples) // 4 and summary["questions"] == sum(counts)
    for sample in samples:
        extras = json.loads(sample.metadata)
        made = [candidate_from_json(json.dumps(c)) for c in extras.get("followups", [])]
        assert len(made) == len(sample.followups)
        first = candidate_from_json(json.dumps(extras["candidate"]))
        for followup, candidate in zip(sample.followups, made):
            doc = docs[candidate.doc_id]
            assert candidate.doc_id == first.doc_id and verify(candidate, doc.page_texts, doc.truth) is None
            assert followup.answer == candidate.answer and followup.answer_format == candidate.answer_format
            assert {(sample.pages[i].doc_id, sample.pages[i].page_index) for i in followup.evidence} == {
                (doc.doc_id, e.page) for e in candidate.evidence}
        questions = [sample.question, *(f.question for f in sample.followups)]
        assert len(set(questions)) == len(questions)
        parts = [p.vision_tokens for p in sample.pages] + [sample.question]
        turns = [(f.question, f.answer) for f in sample.followups]
        assert len(template.encode(parts, sample.answer, turns)) == sample.tokens
        low, high = _bounds(sample.bucket)
        assert low <= sample.tokens < high
    _check_where_the_evidence_sits(samples, summary, tmp_path / "q3")
    api.synth(store / "store", tmp_path / "q3-one", config, show_progress=False)
    for shard in (tmp_path / "q3").glob("*.parquet"):
        assert shard.read_bytes() == (tmp_path / "q3-one" / shard.name).read_bytes()
    with pytest.raises(ConfigError, match="questions_per_sample"):
        _config(questions_per_sample=0).validate()


def _check_where_the_evidence_sits(samples, summary, data: Path) -> None:
    """summary.json counts every evidence page of every question (follow-ups too) by the tokens of the pages before
    it, in the plan's buckets and in fifths of its sample; samples_lengths.json lists those offsets."""
    edges = [0, *BUCKETS]
    by_bucket, by_fifth, offsets = [0] * len(BUCKETS), [0] * 5, []
    for sample in samples:
        for page in (p for evidence in (sample.evidence, *(f.evidence for f in sample.followups)) for p in evidence):
            offset = sum(ref.vision_tokens + 2 for ref in sample.pages[:page])
            offsets.append(offset)
            by_bucket[sum(offset >= edge for edge in edges[1:-1])] += 1
            by_fifth[min(4, int(5 * offset / sample.tokens))] += 1
    assert summary["evidence_pages_by_offset"] == {"edges": edges, "pages": by_bucket}
    assert summary["evidence_pages_by_fifth"] == by_fifth and summary["questions_without_evidence"] == 0
    assert sum(by_bucket) >= summary["questions"] and max(offsets) > BUCKETS[1]
    listed = json.loads((data / "samples_lengths.json").read_text())["evidence_offsets"]
    assert sorted(o for found in listed for o in found) == sorted(offsets)


def test_depth_power_places_the_evidence_later(built, store, tmp_path):
    """depth_power 4 asks each sample for its evidence at U^(1/4) of the sequence: the same samples' budget, every
    one still exact and in its bucket, the evidence later on the whole; 1 is the default's own draw."""
    from mmprolong.errors import ConfigError

    summary = api.synth(store / "store", tmp_path / "late", _config(depth_power=4.0), show_progress=False)
    late, even = read_samples(tmp_path / "late"), read_samples(built[0])
    mean = {name: sum(s.depth for s in samples) / len(samples) for name, samples in (("late", late), ("even", even))}
    assert mean["late"] > mean["even"] + 0.15, mean
    def last_two_fifths(summary):
        return sum(summary["evidence_pages_by_fifth"][3:]) / sum(summary["evidence_pages_by_fifth"])

    assert last_two_fifths(summary) > last_two_fifths(built[1]) + 0.1, (summary, built[1])
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match="depth_power"):
            _config(depth_power=bad).validate()


def test_a_version_1_shard_reads_as_samples_without_followups(built):
    """Shards written before follow-ups existed (no ``followups`` column) still load, each sample with none."""
    from mmprolong.records import SampleRecord

    shard = next(built[0].glob("*.parquet"))
    table = pq.read_table(shard)
    old = table.drop_columns(["followups"]).to_pylist()
    assert [SampleRecord.from_row(r) for r in old] == [SampleRecord.from_row(r) for r in table.to_pylist()]
