"""Offline questions from the text layer alone: works on any PDF, no model and no ground truth needed.

Extraction and reasoning questions are clozes on lines that state exactly one number ("Revenue
grew to ___ million in 2023"); the answer is that number, its quote the line, so ``verify`` checks it
against the page. OCR tasks transcribe pages (the paper's baselines).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from mmprolong.synth.generators import QARequest, evidence_window
from mmprolong.synth.qa import MULTI_ITEMS, OPERATIONS, Evidence, QACandidate, parse_number

MIN_WORDS = 4  # a cloze needs context to be answerable
BOILERPLATE_PAGES = 3  # a line repeated (digits aside) on this many pages is a running header or footer
# A number: optional sign, thousands groups ("1,840") or plain digits, optional decimals; not inside a word.
_NUMBER = re.compile(r"(?<![\w.,])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|[.,]\d)")
_DIGITS = re.compile(r"\d+")
# Numbers that point somewhere (section 3.2, page 14, figure 5) are fine to extract, meaningless to add up.
_REFERENCE = re.compile(r"\b(section|chapter|page|pages|figure|fig|table|equation|eq|step|line|version|"
                        r"appendix|item|part|no)\.?\s*\(?$", re.IGNORECASE)
CHARS_PER_TOKEN = 3.5  # a planning estimate for OCR answers; the layout then checks the exact count


def cloze_lines(text: str, boilerplate: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(line, number) for each line with exactly one number token and enough words around it."""
    found = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        numbers = _NUMBER.findall(line)
        if (len(numbers) == 1 and len(line.split()) >= MIN_WORDS and parse_number(numbers[0]) is not None
                and _DIGITS.sub("#", line) not in boilerplate and not _at_edge(line, numbers[0])):
            found.append((line, numbers[0]))
    return found


def _at_edge(line: str, number: str) -> bool:
    """Heading numbers open a line ("3.2 Results"); page numbers close one with no punctuation after."""
    words = line.split()
    return words[0].startswith(number) or words[-1] == number


def boilerplate_lines(page_texts) -> frozenset[str]:
    """Lines (digits masked) that recur on BOILERPLATE_PAGES or more pages: headers, footers, page numbers."""
    pages_of: dict[str, set[int]] = {}
    for page, text in enumerate(page_texts):
        for line in text.split("\n"):
            pages_of.setdefault(_DIGITS.sub("#", " ".join(line.split())), set()).add(page)
    return frozenset(line for line, pages in pages_of.items() if len(pages) >= BOILERPLATE_PAGES)


def is_quantity(line: str, number: str) -> bool:
    """False when the number is a reference (section 3.2, page 14) or a dotted section number (19.1.)."""
    before = line.split(number, 1)[0]
    sentence = sum(w.isalpha() and w.islower() for w in line.split()) >= 3
    return sentence and not _REFERENCE.search(before) and not re.search(re.escape(number) + r"\.\d", line)


def _blank(line: str, number: str) -> str:
    return line.replace(number, "___", 1)


def _value(number: str) -> int | float:
    value = parse_number(number)
    return int(value) if value == int(value) and "." not in number else value


class TextLayerGenerator:
    name = "textlayer"

    def __init__(self, tasks: Sequence[str] | None = None, multi_items: tuple[int, int] = MULTI_ITEMS):
        self.tasks = None if tasks is None else frozenset(tasks)  # None: every task
        self.multi_items = multi_items  # clozes per extract-multi question: (least, most)
        self._boilerplate: dict[str, frozenset[str]] = {}  # per document: computed once, reused by requests

    def propose_many(self, requests: Sequence[QARequest]) -> list[QACandidate | None]:
        return [self.propose(r) for r in requests]

    def propose(self, request: QARequest) -> QACandidate | None:
        if self.tasks is not None and request.task not in self.tasks:
            return None
        rng = random.Random(request.seed)
        doc = request.doc
        if request.task == "ocr-needle":
            return _ocr_needle(doc, evidence_window(request, rng), rng)
        if request.task == "ocr-full":
            return _ocr_full(doc, rng, request.target_tokens)
        window = evidence_window(request, rng)
        if doc.doc_id not in self._boilerplate:
            self._boilerplate[doc.doc_id] = boilerplate_lines(doc.page_texts)
        boilerplate = self._boilerplate[doc.doc_id]
        clozes = [(p, line, n) for p in window for line, n in cloze_lines(doc.page_texts[p], boilerplate)]
        if request.task in ("reasoning", "aggregate"):
            clozes = [c for c in clozes if is_quantity(c[1], c[2])]
        if not clozes:
            return None
        if request.task == "extract-single":
            return _single(doc.doc_id, rng.choice(clozes))
        if request.task == "reasoning":
            count = 2
        else:
            count = rng.randint(*(self.multi_items if request.task == "extract-multi" else (2, 4)))
        picked = _on_distinct_pages(clozes, rng, count)
        if len(picked) < 2:
            return None
        return _multi(doc.doc_id, request.task, picked, rng)


def _evidence(page: int, line: str, number: str) -> Evidence:
    return Evidence(page=page, quote=line, value=number, label=f"page {page + 1}")


def _single(doc_id: str, cloze) -> QACandidate:
    page, line, number = cloze
    value = _value(number)
    question = f'On page {{page:{page}}}, which number fills the blank: "{_blank(line, number)}"?'
    return QACandidate(doc_id=doc_id, task="extract-single", question=question, answer_value=value,
                       answer_format="Integer" if isinstance(value, int) else "Float", operation="lookup",
                       evidence=(_evidence(page, line, number),), generator="textlayer")


def _multi(doc_id: str, task: str, picked, rng: random.Random) -> QACandidate:
    evidence = tuple(_evidence(p, line, n) for p, line, n in picked)
    blanks = "; ".join(f'page {{page:{p}}}: "{_blank(line, n)}"' for p, line, n in picked)
    if task == "extract-multi":
        question = f"Which numbers fill the blanks in these sentences? {blanks}. Answer with a list in that order."
        return QACandidate(doc_id=doc_id, task=task, question=question, answer_value=[n for _, _, n in picked],
                           answer_format="List", operation="list", evidence=evidence, generator="textlayer")
    operation = rng.choice(["sum", "difference"] if task == "reasoning" else ["sum", "average"])
    wording = {"sum": "the sum of", "difference": "the first minus the second of", "average": "the average of"}
    question = f"What is {wording[operation]} the numbers that fill the blanks? {blanks}."
    value = OPERATIONS[operation](evidence)
    return QACandidate(doc_id=doc_id, task=task, question=question, answer_value=value,
                       answer_format="Integer" if isinstance(value, int) else "Float", operation=operation,
                       evidence=evidence, generator="textlayer")


def _on_distinct_pages(clozes, rng: random.Random, k: int):
    by_page: dict[int, list] = {}
    for c in clozes:
        by_page.setdefault(c[0], []).append(c)
    pages = sorted(rng.sample(sorted(by_page), min(k, len(by_page))))
    return [rng.choice(by_page[p]) for p in pages]


def _page_quote(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


def _ocr_needle(doc, window: range, rng: random.Random) -> QACandidate | None:
    pages = [p for p in window if doc.page_texts[p].strip()]
    if not pages:
        return None
    chosen = sorted(rng.sample(pages, min(len(pages), rng.randint(1, 3))))
    names = ", ".join(f"{{page:{p}}}" for p in chosen)
    evidence = tuple(Evidence(page=p, quote=_page_quote(doc.page_texts[p])) for p in chosen)
    question = f"Transcribe the text of page{'s' if len(chosen) > 1 else ''} {names}, in order."
    return QACandidate(doc_id=doc.doc_id, task="ocr-needle", question=question,
                       answer_value=OPERATIONS["transcribe"](evidence), answer_format="String",
                       operation="transcribe", evidence=evidence, generator="textlayer")


def _ocr_full(doc, rng: random.Random, target_tokens: int) -> QACandidate | None:
    """A run of consecutive pages whose images plus transcript come near ``target_tokens``."""
    costs = [t + 2 + len(_page_quote(x)) / CHARS_PER_TOKEN for t, x in zip(doc.page_tokens, doc.page_texts)]
    start = rng.randrange(doc.page_count)
    end, total = start, 0.0
    while end < doc.page_count and (target_tokens <= 0 or total + costs[end] <= target_tokens * 0.97):
        total += costs[end]
        end += 1
    if end == start or not any(doc.page_texts[p].strip() for p in range(start, end)):
        return None
    evidence = tuple(Evidence(page=p, quote=_page_quote(doc.page_texts[p])) for p in range(start, end)
                     if doc.page_texts[p].strip())
    question = "Transcribe the text of every page, in order."
    return QACandidate(doc_id=doc.doc_id, task="ocr-full", question=question,
                       answer_value=OPERATIONS["transcribe"](evidence), answer_format="String",
                       operation="transcribe", evidence=evidence, generator="textlayer",
                       extra={"pages": [start, end - 1]})
