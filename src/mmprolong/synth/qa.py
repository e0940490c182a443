"""Question-answer candidates and their verification.

Every generator (offline from ground truth, offline from the text layer, or an LLM endpoint) returns
``QACandidate``s in one shape: a question, an answer, and the evidence it rests on, each evidence item
a page, the quote on that page that states a value, and the value. The answer must follow from the
evidence by a named ``operation`` from a closed set, so ``verify`` can recompute it. A candidate whose
quotes are not on their pages, or whose answer does not follow, is dropped and counted, never written.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mmprolong.errors import DataError

MULTI_ITEMS = (2, 4)  # facts one extract-multi question asks for by default: (least, most)
TASKS = ("extract-single", "extract-multi", "aggregate", "reasoning", "ocr-full", "ocr-needle")
TASK_ALIASES = {"extract": "extract-single", "reason": "reasoning", "ocr-all": "ocr-full"}
ANSWER_FORMATS = ("String", "Integer", "Float", "List")
EVIDENCE_SOURCES = ("text", "table", "figure", "layout")
FLOAT_DECIMALS = 2  # reasoning answers that are not whole are given to 2 decimals


def canonical_task(name: str) -> str:
    """The task's canonical name; aliases follow the issue's wording (extract, reason, ocr-all)."""
    task = TASK_ALIASES.get(name, name)
    if task not in TASKS:
        raise DataError(f"unknown task {name!r}; known: {', '.join(TASKS + tuple(TASK_ALIASES))}")
    return task


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    page: int  # 0-based page index in the source document
    quote: str | None  # text on that page stating the value; None only for figure facts vouched by ground truth
    value: str | int | float | None = None  # the value this evidence contributes
    label: str | None = None  # the entity the value belongs to (argmax/argmin answer with it)


@dataclass(frozen=True, slots=True, kw_only=True)
class QACandidate:
    doc_id: str
    task: str
    question: str  # page anchors as "{page:K}" (K = 0-based page of the document), filled in after layout
    answer_value: str | int | float | list
    answer_format: str  # String | Integer | Float | List
    operation: str  # a key of OPERATIONS
    evidence: tuple[Evidence, ...]
    source: str = "text"  # where the evidence sits: text | table | figure | layout
    generator: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def answer(self) -> str:
        return format_answer(self.answer_value, self.answer_format)

    @property
    def evidence_pages(self) -> tuple[int, ...]:
        return tuple(sorted({e.page for e in self.evidence}))


def _round(x: float) -> int | float:
    r = round(x, FLOAT_DECIMALS)
    return int(r) if r == int(r) else r


def _numbers(evidence: Sequence[Evidence]) -> list[float]:
    values = [parse_number(e.value) for e in evidence]
    if any(v is None for v in values):
        raise DataError("a numeric operation got a non-numeric evidence value")
    return values


def _arg(pick: Callable) -> Callable:
    def op(evidence: Sequence[Evidence]):
        nums = _numbers(evidence)
        best = pick(nums)
        if nums.count(best) != 1:
            raise DataError("tie: no unique answer")
        return evidence[nums.index(best)].label

    return op


OPERATIONS: dict[str, Callable[[Sequence[Evidence]], object]] = {
    "lookup": lambda ev: ev[0].value,
    "list": lambda ev: [e.value for e in ev],
    "sum": lambda ev: _round(sum(_numbers(ev))),
    "difference": lambda ev: _round(_numbers(ev)[0] - _numbers(ev)[1]),
    "ratio": lambda ev: _round(_numbers(ev)[0] / _numbers(ev)[1]),
    "average": lambda ev: _round(sum(_numbers(ev)) / len(ev)),
    "argmax": _arg(max),
    "argmin": _arg(min),
    "count": lambda ev: len({(e.page, e.label, e.quote) for e in ev}),
    "transcribe": lambda ev: "\n\n".join(e.quote for e in ev),
}
ARITY = {"lookup": (1, 1), "difference": (2, 2), "ratio": (2, 2), "transcribe": (1, 10_000)}


def normalize_text(text: str) -> str:
    """NFKC, lower case, one space between words: the form quotes and pages are compared in."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


_NUMBER = re.compile(r"[-+]?\d[\d,]*\.?\d*|[-+]?\.\d+")


def parse_number(value: object) -> float | None:
    """A number from 1840, "1,840", "12.5 bar", "$3.2", "45%"; None when there is none or several."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    found = _NUMBER.findall(value.replace("\u2212", "-"))
    if len(found) != 1:
        return None
    text = found[0].replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def format_answer(value: object, answer_format: str) -> str:
    """The answer text a model is trained to produce (lists as MMLongBench-Doc writes them)."""
    if answer_format == "List":
        return "[" + ", ".join(repr(str(v)) for v in value) + "]"
    if answer_format == "Float" and isinstance(value, float):
        return f"{value:.{FLOAT_DECIMALS}f}".rstrip("0").rstrip(".")
    return str(value)


def values_equal(a: object, b: object) -> bool:
    """Numbers compare as numbers (1,840 == 1840.0), everything else as normalised text."""
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(values_equal(x, y) for x, y in zip(a, b)))
    na, nb = parse_number(a), parse_number(b)
    if na is not None and nb is not None:
        return math.isclose(na, nb, rel_tol=1e-9, abs_tol=10 ** -(FLOAT_DECIMALS + 2))
    return normalize_text(str(a)) == normalize_text(str(b))


class TruthOracle(Protocol):
    """Ground truth that can vouch for a figure-only value (the embedded corpus has one)."""

    def vouches(self, page: int, label: str | None, value: object) -> bool: ...


def verify(candidate: QACandidate, page_texts: Sequence[str], truth: TruthOracle | None = None) -> str | None:
    """None when the candidate is grounded and its answer follows from its evidence; else the reason."""
    if candidate.answer_format not in ANSWER_FORMATS:
        return f"answer_format {candidate.answer_format!r} not in {ANSWER_FORMATS}"
    if candidate.operation not in OPERATIONS:
        return f"operation {candidate.operation!r} unknown"
    if not candidate.evidence:
        return "no evidence"
    low, high = ARITY.get(candidate.operation, (1, 10_000))
    if not low <= len(candidate.evidence) <= high:
        return f"operation {candidate.operation} takes {low}..{high} evidence items, got {len(candidate.evidence)}"
    for e in candidate.evidence:
        if not 0 <= e.page < len(page_texts):
            return f"evidence page {e.page} outside the document's {len(page_texts)} pages"
        reason = _check_evidence(e, page_texts[e.page], truth)
        if reason:
            return reason
    try:
        expected = OPERATIONS[candidate.operation](candidate.evidence)
    except (DataError, ZeroDivisionError, TypeError) as exc:
        return f"answer cannot be computed: {exc}"
    if not values_equal(expected, candidate.answer_value):
        return f"answer {candidate.answer_value!r} does not follow: {candidate.operation} gives {expected!r}"
    if "{page:" in candidate.question and not _anchors_valid(candidate.question, len(page_texts)):
        return "question anchors a page outside the document"
    return None


def _check_evidence(e: Evidence, page_text: str, truth: TruthOracle | None) -> str | None:
    if e.quote is None:
        if truth is not None and truth.vouches(e.page, e.label, e.value):
            return None
        return f"evidence on page {e.page} has no quote and no ground truth vouches for {e.value!r}"
    quote = normalize_text(e.quote)
    if not quote or quote not in normalize_text(page_text):
        return f"quote {e.quote[:60]!r} is not on page {e.page}"
    if e.value is not None and not _value_in_quote(e.value, e.quote):
        return f"value {e.value!r} is not in its quote {e.quote[:60]!r}"
    return None


def _value_in_quote(value: object, quote: str) -> bool:
    if isinstance(value, list):
        return all(_value_in_quote(v, quote) for v in value)
    if normalize_text(str(value)) in normalize_text(quote):
        return True
    number = parse_number(value)
    return number is not None and any(
        math.isclose(number, float(m.replace(",", "")), rel_tol=1e-9) for m in _NUMBER.findall(quote)
        if m.replace(",", "").replace(".", "").lstrip("+-")
    )


_ANCHOR = re.compile(r"\{page:(\d+)\}")


def anchored_pages(question: str) -> list[int]:
    """The 0-based document pages a question names through "{page:K}" anchors."""
    return [int(k) for k in _ANCHOR.findall(question)]


def _anchors_valid(question: str, page_count: int) -> bool:
    return all(0 <= k < page_count for k in anchored_pages(question))


def render_question(question: str, position_of_page: Callable[[int], int]) -> str:
    """Fill "{page:K}" anchors with 1-based positions of those pages among the sample's images."""
    return _ANCHOR.sub(lambda m: str(position_of_page(int(m.group(1))) + 1), question)


def candidate_to_json(candidate: QACandidate) -> str:
    """Stable JSON of a candidate (cache files, sample metadata)."""
    data = {
        "doc_id": candidate.doc_id, "task": candidate.task, "question": candidate.question,
        "answer_value": candidate.answer_value, "answer_format": candidate.answer_format,
        "operation": candidate.operation, "source": candidate.source, "generator": candidate.generator,
        "evidence": [{"page": e.page, "quote": e.quote, "value": e.value, "label": e.label}
                     for e in candidate.evidence],
        "extra": candidate.extra,
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def candidate_from_json(text: str) -> QACandidate:
    data = json.loads(text)
    data["evidence"] = tuple(Evidence(**e) for e in data["evidence"])
    return QACandidate(**data)
