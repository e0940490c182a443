"""Offline questions from a document's ground truth (the embedded corpus writes one beside each PDF).

Facts are (entity, attribute, value) on a page; groups are facts that share an attribute across
entities and pages. Questions carry explicit anchors as in the paper ("on page 12", "in the section
'Results'", "on pages 20-25"), so they are unambiguous in the whole long input. An extract-single question can
go without one (``anchor_share`` < 1, as niah asks and the quickstart trains) when the document gives its
entity and attribute one value only; synth's layout then keeps out filler documents that name the entity.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import cached_property, partial

from mmprolong.synth.generators import QARequest, evidence_window
from mmprolong.synth.qa import MULTI_ITEMS, Evidence, QACandidate, values_equal

NUMERIC = ("integer", "float")


class TruthOracle:
    """Vouches for a value on a page when the ground truth has that fact there (figure-only facts)."""

    def __init__(self, truth):
        self.document = truth
        # One entity can have several values on a page (a line chart over years): keep them all.
        self._values: dict[tuple[int, str], list] = {}
        for f in truth.facts:
            self._values.setdefault((f.page, f.entity), []).append(f.value)

    def vouches(self, page: int, label: str | None, value: object) -> bool:
        return any(values_equal(v, value) for v in self._values.get((page, label), ()))

    @cached_property
    def one_value(self) -> set[tuple[str, str]]:
        """(entity, attribute) pairs the whole document gives one value: only these can be asked without an anchor
        (computed once a document, when a question first needs it)."""
        by_pair: dict[tuple[str, str], list] = {}
        for f in self.document.facts:
            by_pair.setdefault((f.entity, f.attribute), []).append(f.value)
        return {pair for pair, values in by_pair.items() if all(values_equal(v, values[0]) for v in values)}


class TruthGenerator:
    """Questions from ground-truth facts. Returns None for documents without truth or for OCR tasks."""

    name = "truth"

    def __init__(self, multi_items: tuple[int, int] = MULTI_ITEMS, anchor_share: float = 1.0):
        self.multi_items = multi_items  # facts per extract-multi question: (least, most)
        self.anchor_share = anchor_share  # extract-single questions that say where their fact is

    def propose_many(self, requests: Sequence[QARequest]) -> list[QACandidate | None]:
        return [self.propose(r) for r in requests]

    def propose(self, request: QARequest) -> QACandidate | None:
        truth = getattr(request.doc.truth, "document", None)
        if truth is None:
            return None
        rng = random.Random(request.seed)
        make = {"extract-single": partial(_extract_single, anchor_share=self.anchor_share),
                "extract-multi": partial(_extract_multi, items=self.multi_items),
                "aggregate": _aggregate, "reasoning": _reasoning}.get(request.task)
        if make is None:
            return None
        window = evidence_window(request, rng)
        facts = [f for f in truth.facts if f.page in window]
        return make(_Scope(truth, facts, request.doc.truth.one_value), request.doc.doc_id, rng)


class _Scope:
    """The truth seen through a page window: the facts inside it, each group cut to its members inside, and
    the groups that lie wholly inside (only those can be aggregated: a total must include every member)."""

    def __init__(self, truth, facts, one_value: set[tuple[str, str]]):
        self.num_pages, self.facts, self.one_value = truth.num_pages, facts, one_value
        inside = {f.fact_id for f in facts}
        self.groups = {name: [i for i in ids if i in inside] for name, ids in truth.groups.items()}
        self.complete = {name for name, ids in truth.groups.items() if set(ids) <= inside}


def _evidence(fact) -> Evidence:
    return Evidence(page=fact.page, quote=fact.rendered, value=fact.value, label=fact.entity)


def _anchor(fact, num_pages: int, rng: random.Random) -> str:
    """Half page anchors, then section anchors, then a page range around the fact."""
    choice = rng.random()
    if choice < 0.5:
        return f" on page {{page:{fact.page}}}"
    if choice < 0.8 and fact.section:
        return f" in the section '{fact.section}'"
    low = max(0, fact.page - rng.randint(0, 3))
    high = min(num_pages - 1, low + rng.randint(4, 6))
    return f" on pages {{page:{low}}}-{{page:{high}}}"


def _unit(fact) -> str:
    return f" (in {fact.unit})" if fact.unit else ""


def _format_of(fact) -> str:
    return {"integer": "Integer", "float": "Float", "list": "List"}.get(fact.value_type, "String")


def _extract_single(truth, doc_id: str, rng: random.Random, *, anchor_share: float) -> QACandidate | None:
    if not truth.facts:
        return None
    fact = rng.choice(truth.facts)
    # Drawn whatever the share, so that datasets at two shares ask about the same facts in the same places.
    anchored = rng.random() < anchor_share
    anchor = _anchor(fact, truth.num_pages, rng)
    if not anchored and (fact.entity, fact.attribute) in truth.one_value:
        anchor = ""
    question = f"What is the {fact.attribute} of {fact.entity}{anchor}{_unit(fact)}?"
    return QACandidate(doc_id=doc_id, task="extract-single", question=question, answer_value=fact.value,
                       answer_format=_format_of(fact), operation="lookup", evidence=(_evidence(fact),),
                       source=fact.source, generator="truth", extra={"facts": [fact.fact_id]})


def _group_facts(truth, rng: random.Random, *, numeric: bool, complete: bool = False,
                 min_pages: int = 2) -> list | None:
    """A random group spanning at least ``min_pages`` pages (numeric values, whole groups, if asked)."""
    by_id = {f.fact_id: f for f in truth.facts}
    groups = []
    for name, ids in sorted(truth.groups.items()):
        if complete and name not in truth.complete:
            continue
        facts = [by_id[i] for i in ids if i in by_id]
        if numeric and any(f.value_type not in NUMERIC for f in facts):
            continue
        if len({f.page for f in facts}) >= min_pages:
            groups.append(facts)
    return rng.choice(groups) if groups else None


def _extract_multi(truth, doc_id: str, rng: random.Random, *, items: tuple[int, int]) -> QACandidate | None:
    group = _group_facts(truth, rng, numeric=False)
    if group is None:
        return None
    picked = _distinct_pages(group, rng, rng.randint(*items))
    if len(picked) < 2:
        return None
    names = _join([f.entity for f in picked])
    question = (f"What are the values of {picked[0].attribute} for {names}{_unit(picked[0])}? "
                "Answer with a list in that order.")
    return QACandidate(doc_id=doc_id, task="extract-multi", question=question,
                       answer_value=[f.value for f in picked], answer_format="List", operation="list",
                       evidence=tuple(_evidence(f) for f in picked), source=picked[0].source,
                       generator="truth", extra={"facts": [f.fact_id for f in picked]})


def _aggregate(truth, doc_id: str, rng: random.Random) -> QACandidate | None:
    group = _group_facts(truth, rng, numeric=True, complete=True)
    if group is None:
        return None
    group = sorted(group, key=lambda f: (f.page, f.fact_id))
    first, last = group[0].page, group[-1].page
    span = f"on pages {{page:{first}}}-{{page:{last}}}"
    attribute = group[0].attribute
    kind = rng.choice(["sum", "count", "average"])
    if kind == "count":
        question = f"How many different entities have their {attribute} reported {span}?"
        value, fmt = len({f.entity for f in group}), "Integer"
        if value != len(group):
            return None
    else:
        word = "total" if kind == "sum" else "average"
        question = f"What is the {word} {attribute}{_unit(group[0])} over all entities reported {span}?"
        from mmprolong.synth.qa import OPERATIONS

        value = OPERATIONS[kind](tuple(_evidence(f) for f in group))
        fmt = "Integer" if isinstance(value, int) else "Float"
    return QACandidate(doc_id=doc_id, task="aggregate", question=question, answer_value=value, answer_format=fmt,
                       operation=kind, evidence=tuple(_evidence(f) for f in group), source=group[0].source,
                       generator="truth", extra={"facts": [f.fact_id for f in group]})


def _reasoning(truth, doc_id: str, rng: random.Random) -> QACandidate | None:
    group = _group_facts(truth, rng, numeric=True)
    if group is None:
        return None
    picked = _distinct_pages(group, rng, 2)
    if len(picked) < 2 or picked[0].value == picked[1].value:
        return None
    a, b = picked
    attribute, unit = a.attribute, _unit(a)
    kinds = ["difference", "ratio", "argmax", "argmin", "sum"]
    if b.value == 0:  # no ratio to a zero (a corpus value can be 0)
        kinds.remove("ratio")
    kind = rng.choice(kinds)
    anchors = f"(pages {{page:{a.page}}} and {{page:{b.page}}})"
    questions = {
        "difference": f"By how much does the {attribute} of {a.entity} exceed that of {b.entity} {anchors}{unit}?",
        "ratio": f"What is the ratio of the {attribute} of {a.entity} to that of {b.entity} {anchors}? "
                 "Round to 2 decimals.",
        "argmax": f"Which has the higher {attribute}, {a.entity} or {b.entity} {anchors}?",
        "argmin": f"Which has the lower {attribute}, {a.entity} or {b.entity} {anchors}?",
        "sum": f"What is the combined {attribute} of {a.entity} and {b.entity} {anchors}{unit}?",
    }
    from mmprolong.synth.qa import OPERATIONS

    evidence = (_evidence(a), _evidence(b))
    value = OPERATIONS[kind](evidence)
    fmt = "String" if kind in ("argmax", "argmin") else ("Integer" if isinstance(value, int) else "Float")
    return QACandidate(doc_id=doc_id, task="reasoning", question=questions[kind], answer_value=value,
                       answer_format=fmt, operation=kind, evidence=evidence, source=a.source, generator="truth",
                       extra={"facts": [a.fact_id, b.fact_id]})


def _distinct_pages(facts: list, rng: random.Random, k: int) -> list:
    """Up to k facts on different pages, kept in page order."""
    by_page: dict[int, list] = {}
    for f in facts:
        by_page.setdefault(f.page, []).append(f)
    pages = sorted(by_page)
    chosen = sorted(rng.sample(pages, min(k, len(pages))))
    return [rng.choice(by_page[p]) for p in chosen]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
