"""verify() keeps grounded candidates whose answer follows from the evidence, and drops every other kind."""

import random

import pytest

from mmprolong.synth.qa import (
    Evidence,
    QACandidate,
    candidate_from_json,
    candidate_to_json,
    format_answer,
    parse_number,
    render_question,
    verify,
)

PAGES = ("Revenue reached 1,840 units in 2023.\nThe pump is rated at 12.5 bar.",
         "Region North sold 300 units.\nRegion South sold 450 units.",
         "No figures on this page.")


def cand(**kw):
    base = dict(doc_id="d", task="extract-single", question="What is the revenue on page {page:0}?",
                answer_value=1840, answer_format="Integer", operation="lookup",
                evidence=(Evidence(page=0, quote="Revenue reached 1,840 units", value="1,840"),))
    base.update(kw)
    return QACandidate(**base)


def test_grounded_lookup_passes():
    assert verify(cand(), PAGES) is None


@pytest.mark.parametrize("change,reason", [
    (dict(answer_value=1841), "does not follow"),
    (dict(evidence=(Evidence(page=1, quote="Revenue reached 1,840 units", value="1,840"),)), "is not on page 1"),
    (dict(evidence=(Evidence(page=0, quote="Revenue reached 1,840 units", value="1,900"),)), "not in its quote"),
    (dict(evidence=(Evidence(page=7, quote="x", value="1"),)), "outside the document"),
    (dict(evidence=()), "no evidence"),
    (dict(operation="guess"), "unknown"),
    (dict(answer_format="Date"), "answer_format"),
    (dict(question="What is on page {page:9}?"), "anchors a page outside"),
    (dict(evidence=(Evidence(page=0, quote=None, value=5, label="Pump"),)), "no ground truth vouches"),
])
def test_ungrounded_or_wrong_candidates_are_dropped(change, reason):
    assert reason in verify(cand(**change), PAGES)


def _two(op, value, fmt="Integer"):
    ev = (Evidence(page=1, quote="Region North sold 300 units", value="300", label="North"),
          Evidence(page=1, quote="Region South sold 450 units", value="450", label="South"))
    return cand(task="reasoning", operation=op, answer_value=value, answer_format=fmt, evidence=ev)


@pytest.mark.parametrize("op,value,fmt", [
    ("sum", 750, "Integer"), ("difference", -150, "Integer"), ("ratio", 0.67, "Float"),
    ("average", 375, "Integer"), ("argmax", "South", "String"), ("argmin", "North", "String"),
    ("count", 2, "Integer"), ("list", ["300", "450"], "List"),
])
def test_operations_recompute_the_answer(op, value, fmt):
    assert verify(_two(op, value, fmt), PAGES) is None
    wrong = ["1"] if isinstance(value, list) else ("East" if isinstance(value, str) else 1)
    assert verify(_two(op, wrong, fmt), PAGES) is not None


def test_figure_values_need_ground_truth():
    class Truth:
        def vouches(self, page, label, value):
            return (page, label, value) == (2, "Pump X", 7)

    figure = cand(answer_value=7, evidence=(Evidence(page=2, quote=None, value=7, label="Pump X"),))
    assert verify(figure, PAGES, Truth()) is None
    assert verify(figure, PAGES) is not None


def test_transcription_must_equal_the_pages():
    good = cand(task="ocr-needle", operation="transcribe", answer_format="String",
                answer_value="Region North sold 300 units.",
                evidence=(Evidence(page=1, quote="Region North sold 300 units."),))
    assert verify(good, PAGES) is None


def test_numbers_answers_anchors_and_json():
    assert [parse_number(x) for x in ("1,840", "12.5 bar", "$3.2", "45%", "a", "1 and 2", True)] == \
        [1840, 12.5, 3.2, 45, None, None, None]
    assert format_answer(["a", "b"], "List") == "['a', 'b']"
    assert format_answer(0.5, "Float") == "0.5"
    assert render_question("pages {page:3}-{page:5}", {3: 10, 5: 12}.__getitem__) == "pages 11-13"
    c = _two("argmax", "South", "String")
    assert candidate_from_json(candidate_to_json(c)) == c


def test_truth_oracle_vouches_for_every_point_of_an_entity_on_a_page():
    from types import SimpleNamespace

    from mmprolong.synth.generators.truth import TruthOracle

    facts = [SimpleNamespace(page=4, entity="Project Vega", value=v) for v in (12.5, 30.0)]
    oracle = TruthOracle(SimpleNamespace(facts=facts))
    assert oracle.vouches(4, "Project Vega", 12.5) and oracle.vouches(4, "Project Vega", 30)
    assert not oracle.vouches(4, "Project Vega", 31) and not oracle.vouches(5, "Project Vega", 12.5)


def test_reasoning_never_divides_by_a_zero_value():
    """A corpus value can be 0: the truth generator must ask something else than a ratio to it, every seed."""
    from types import SimpleNamespace

    from mmprolong.synth.generators.truth import TruthOracle, _reasoning

    def fact(i, page, value):
        return SimpleNamespace(fact_id=f"f{i}", page=page, entity=f"Unit {i}", attribute="output", value=value,
                               value_type="integer", unit="kW", rendered=f"Unit {i}: {value} kW", source="table",
                               section=None)

    facts = [fact(0, 1, 40), fact(1, 5, 0)]
    truth = SimpleNamespace(facts=facts, groups={"output": ["f0", "f1"]}, complete={"output"}, num_pages=8)
    pages = [""] * 8
    pages[1], pages[5] = facts[0].rendered, facts[1].rendered
    operations = set()
    for seed in range(200):
        candidate = _reasoning(truth, "doc", random.Random(seed))
        operations.add(candidate.operation)
        assert verify(candidate, pages, TruthOracle(truth)) is None
    assert operations == {"difference", "argmax", "argmin", "sum"}
