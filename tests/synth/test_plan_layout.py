"""Planning shares and laying samples out at exact lengths and depths."""

import random

import pytest

from mmprolong.errors import ConfigError
from mmprolong.synth.build import fit_length, sample_lengths
from mmprolong.synth.documents import DocumentView
from mmprolong.synth.layout import layout_sample
from mmprolong.synth.plan import (
    Bucket,
    bucket_weights,
    default_boundaries,
    make_buckets,
    plan_cells,
    plan_units,
    planned_shares,
)
from mmprolong.synth.qa import Evidence, QACandidate
from mmprolong.template import ChatTemplate
from mmprolong.tokenizer import load_tokenizer


def test_default_buckets_double_up_to_the_target():
    assert default_boundaries(131072) == [8192, 16384, 32768, 65536, 131073]
    assert [b.label for b in make_buckets(default_boundaries(131072))] == ["8K-16K", "16K-32K", "32K-64K",
                                                                          "64K-131073"]
    with pytest.raises(ConfigError):
        make_buckets([100, 100])


def test_weights_per_distribution():
    buckets = make_buckets([1, 2, 3, 4])
    assert bucket_weights("balanced", buckets) == pytest.approx([1 / 3] * 3)
    assert bucket_weights("target", buckets, target_share=0.8) == pytest.approx([0.1, 0.1, 0.8])
    assert bucket_weights("custom", buckets, custom=[1, 1, 2]) == pytest.approx([0.25, 0.25, 0.5])
    assert bucket_weights("native", buckets, native_tokens=[0, 3, 1]) == pytest.approx([0, 0.75, 0.25])
    with pytest.raises(ConfigError, match="bucket_weights"):
        bucket_weights("custom", buckets, custom=[1, 1])


def test_plan_splits_tokens_exactly_by_share():
    buckets = make_buckets([1000, 2000, 4000])
    units = plan_units(buckets, [0.5, 0.5], {"extract-single": 0.8, "reasoning": 0.2}, 100_000, 10_000)
    assert sum(u.tokens for u in units) == 100_000
    shares = planned_shares(units)
    assert shares["share_by_task"] == pytest.approx({"extract-single": 0.8, "reasoning": 0.2})
    assert shares["share_by_bucket"] == pytest.approx({"1000-2000": 0.5, "2000-4000": 0.5})
    assert len({u.name for u in units}) == len(units)


def test_cells_hold_whole_samples_and_keep_bucket_and_task_totals():
    """The default 4 buckets over a 12-document store's budget: 20% reasoning of the 64K-128K bucket is less
    than one sample; it is rounded to whole samples and the difference carried to shorter buckets."""
    buckets = make_buckets(default_boundaries(131072))
    tasks = {"extract-single": 0.4, "extract-multi": 0.4, "reasoning": 0.2}
    budget = 913_300
    cells = plan_cells(buckets, [0.25] * 4, tasks, budget)
    assert all(tokens == 0 or tokens >= bucket.low for (bucket, _), tokens in cells.items())
    assert [sum(cells[b, t] for t in tasks) for b in buckets] == [228_325] * 4
    for task, share in tasks.items():
        assert sum(cells[b, task] for b in buckets) == pytest.approx(budget * share, abs=1)
    units = plan_units(buckets, [0.25] * 4, tasks, budget, 2_000_000)
    assert sum(u.tokens for u in units) == budget and all(u.tokens >= u.bucket.low for u in units)


@pytest.mark.parametrize("bucket", [Bucket(8192, 16384), Bucket(3072, 4097), Bucket(1, 4096)])
def test_sample_lengths_fill_a_remainder_exactly(bucket):
    rng = random.Random(0)
    for _ in range(300):
        remaining = rng.randrange(bucket.low, 40 * bucket.high)
        lengths = sample_lengths(remaining, bucket, rng)
        assert all(bucket.low <= n < bucket.high for n in lengths)
        fits = any(k * bucket.low <= remaining <= k * (bucket.high - 1) for k in range(1, len(lengths) + 1))
        assert sum(lengths) == remaining or not fits, (remaining, lengths)
    assert fit_length(5000, 20_000, Bucket(8192, 16384)) == 8192  # leaves 11,808: one more sample
    assert fit_length(15_000, 20_000, Bucket(8192, 16384)) == 11_808  # not 5,000: no sample is that short


@pytest.fixture(scope="module")
def template():
    return ChatTemplate(load_tokenizer())


def _doc(doc_id, n, tokens=50):
    return DocumentView(doc_id=doc_id, source=f"{doc_id}.pdf", page_texts=tuple(f"page {i}" for i in range(n)),
                        page_tokens=tuple([tokens] * n))


def test_layout_lands_in_bucket_at_depth_with_renumbered_anchors(template):
    doc = _doc("main", 10)
    fillers = [_doc(f"f{i}", 12) for i in range(12)]  # each side can hold the whole bucket
    candidate = QACandidate(doc_id="main", task="extract-single", question="What is on page {page:4}?",
                            answer_value="x", answer_format="String", operation="lookup",
                            evidence=(Evidence(page=4, quote="page 4"),))
    bucket = Bucket(1500, 3000)
    depths = []
    rng = random.Random(0)
    for _ in range(40):
        target, depth = rng.randrange(1500, 3000), rng.random()
        layout = layout_sample(candidate, doc, fillers, bucket=bucket, target_tokens=target, depth=depth,
                               template=template)
        assert layout.tokens in bucket
        assert template.count([p.vision_tokens for p in layout.pages] + [layout.question], "x") == layout.tokens
        ev = layout.pages[layout.evidence[0]]
        assert (ev.doc_id, ev.page_index) == ("main", 4)
        assert layout.question == f"What is on page {layout.evidence[0] + 1}?"
        depths.append(layout.depth)
        # The question and answer follow the evidence, so depth d of the context is d x its share.
        context_share = 1 - (template.count([layout.question], "x") + 52) / layout.tokens
        assert abs(layout.depth - depth * context_share) < 0.05
    assert min(depths) < 0.15 and max(depths) > 0.75


def test_layout_refuses_evidence_longer_than_the_bucket(template):
    doc = _doc("main", 30)
    candidate = QACandidate(doc_id="main", task="extract-multi", question="?", answer_value=["a", "b"],
                            answer_format="List", operation="list",
                            evidence=(Evidence(page=0, quote="page 0"), Evidence(page=29, quote="page 29")))
    assert layout_sample(candidate, doc, [], bucket=Bucket(200, 400), target_tokens=300, depth=0.5,
                         template=template) == "evidence longer than the bucket"



def test_a_question_naming_no_page_takes_no_filler_that_names_its_entity(template):
    """Another register's note on the same archive could hold another code: without a page anchor the question
    would not say which one it asks about, so such a filler is left out; with an anchor it may stay."""
    doc = _doc("main", 4)
    rival = DocumentView(doc_id="rival", source="rival.pdf", page_texts=("ORION  archive\nSecret code\n111111",) * 6,
                         page_tokens=(50,) * 6)
    fillers = [rival] + [_doc(f"f{i}", 6) for i in range(5)]
    evidence = (Evidence(page=2, quote="page 2", label="Orion archive"),)
    for question, rival_kept in (("What is the secret code of Orion archive?", False),
                                 ("What is the secret code of Orion archive on page {page:2}?", True)):
        candidate = QACandidate(doc_id="main", task="extract-single", question=question, answer_value="x",
                                answer_format="String", operation="lookup", evidence=evidence)
        docs_used = set()
        for depth in (0.0, 0.5, 1.0):
            layout = layout_sample(candidate, doc, fillers, bucket=Bucket(1500, 2000), target_tokens=1800,
                                   depth=depth, template=template)
            assert layout.tokens in Bucket(1500, 2000)
            docs_used |= {p.doc_id for p in layout.pages}
        assert ("rival" in docs_used) == rival_kept, question
