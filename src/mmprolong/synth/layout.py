"""Place a QA candidate's evidence inside a long sequence of pages that lands in a length bucket.

The sequence is a window over [filler documents..., the document, filler documents...]. The pages from
the first to the last page that the evidence or the question names are always kept whole; pages before
and after are added so the first evidence page sits at the requested depth and the exact token count
(ChatTemplate.count) falls inside the bucket. Filler documents are other documents of the store,
unrelated to the question, as the paper pads inputs beyond the window: when the question names no page, a filler
that names one of its entities (another register's note on the same archive) is left out, since it could hold
another answer. Follow-up questions about the same document (``followups``) are kept, in the order offered, while
their pages and the first's still fit the target together; their pages join the block kept whole. Pure: same
inputs, same layout.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from mmprolong.records import FollowUp, PageRef
from mmprolong.synth.documents import DocumentView
from mmprolong.synth.plan import Bucket
from mmprolong.synth.qa import QACandidate, anchored_pages, normalize_text, render_question
from mmprolong.template import ChatTemplate
from mmprolong.tokens import IMAGE_WRAPPER_TOKENS

MAX_ADJUST = 8  # pages added or dropped at the ends to pull the exact count into the bucket


@dataclass(frozen=True, slots=True)
class Layout:
    pages: tuple[PageRef, ...]
    evidence: tuple[int, ...]  # positions in ``pages`` of the evidence pages
    question: str  # anchors rendered as 1-based image positions
    tokens: int  # exact sequence length
    depth: float  # start of the first evidence page, as a fraction of the sequence
    followups: tuple[FollowUp, ...] = ()
    followup_candidates: tuple[QACandidate, ...] = ()  # what each follow-up was made from, in the same order


def _ref(doc: DocumentView, page: int) -> PageRef:
    return PageRef(doc_id=doc.doc_id, page_index=page, vision_tokens=doc.page_tokens[page])


def _cost(ref: PageRef) -> int:
    return ref.vision_tokens + IMAGE_WRAPPER_TOKENS


def _streams(doc: DocumentView, first: int, last: int, fillers: Sequence[DocumentView]):
    """Pages available before (nearest first) and after (nearest first) the evidence block."""
    left = [_ref(doc, p) for p in range(first - 1, -1, -1)]
    right = [_ref(doc, p) for p in range(last + 1, doc.page_count)]
    for i, filler in enumerate(fillers):
        pages = [_ref(filler, p) for p in range(filler.page_count)]
        if i % 2 == 0:
            left += reversed(pages)
        else:
            right += pages
    return left, right


def evidence_offsets(pages: Sequence[PageRef], evidence: Sequence[Sequence[int]]) -> list[int]:
    """For every evidence page of every question (``evidence``: each question's positions in ``pages``), the tokens
    of the pages before it: how far into the sequence a page the answer needs is read (the prompt's own tokens
    before the first page aside)."""
    starts = list(itertools.accumulate((_cost(r) for r in pages), initial=0))
    return [starts[page] for positions in evidence for page in positions]


def _names_an_entity(filler: DocumentView, candidate: QACandidate) -> bool:
    labels = [normalize_text(e.label) for e in candidate.evidence if e.label]
    return any(label in text for text in filler.normalized_pages for label in labels)


def layout_sample(candidate: QACandidate, doc: DocumentView, fillers: Sequence[DocumentView], *,
                  bucket: Bucket, target_tokens: int, depth: float, template: ChatTemplate,
                  followups: Sequence[QACandidate] = (), max_followups: int = 0) -> Layout | str:
    """A Layout, or the reason none fits (a string, counted by the caller). Up to ``max_followups`` of
    ``followups`` (verified candidates about ``doc``) are asked after the first question where they fit."""
    if candidate.task == "ocr-full":
        first, last = candidate.extra["pages"]
        return _finish([candidate], doc, [], [_ref(doc, p) for p in range(first, last + 1)], [], bucket, template)
    turns = _turns(candidate, followups, max_followups, doc, target_tokens, template)
    bare = [c for c in turns if not anchored_pages(c.question)]  # questions that name no page
    fillers = [f for f in fillers if not any(_names_an_entity(f, c) for c in bare)]
    first, last = _span(turns)
    core = [_ref(doc, p) for p in range(first, last + 1)]
    fixed = _text_tokens(turns, template) + sum(_cost(r) for r in core)
    if fixed >= bucket.high:
        return "evidence longer than the bucket"
    context = max(0, target_tokens - fixed)
    left_stream, right_stream = _streams(doc, first, last, fillers)
    left, used = _take(left_stream, depth * context)
    right, used_right = _take(right_stream, target_tokens - fixed - used)
    if used_right < target_tokens - fixed - used:  # the right side ran out: top up on the left
        more, _ = _take(left_stream[len(left):], target_tokens - fixed - used - used_right)
        left += more
    return _finish(turns, doc, left, core, right, bucket, template, left_stream, right_stream)


def _span(turns: Sequence[QACandidate]) -> tuple[int, int]:
    """First and last page that the turns' evidence or questions name."""
    named = {p for c in turns for p in (*c.evidence_pages, *anchored_pages(c.question))}
    return min(named), max(named)


def _text_tokens(turns: Sequence[QACandidate], template: ChatTemplate) -> int:
    return template.count([turns[0].question], turns[0].answer, [(c.question, c.answer) for c in turns[1:]])


def _turns(candidate: QACandidate, offered: Sequence[QACandidate], most: int, doc: DocumentView,
           target_tokens: int, template: ChatTemplate) -> list[QACandidate]:
    """The first question, then each offered one that asks something new while the block of pages all of them
    name, and their text, stay shorter than ``target_tokens``."""
    turns = [candidate]
    for other in offered:
        if len(turns) > most:
            break
        if any(normalize_text(other.question) == normalize_text(c.question) for c in turns):
            continue
        first, last = _span([*turns, other])
        block = sum(_cost(_ref(doc, p)) for p in range(first, last + 1))
        if block + _text_tokens([*turns, other], template) < target_tokens:
            turns.append(other)
    return turns


def _take(stream: Sequence[PageRef], budget: float) -> tuple[list[PageRef], int]:
    taken, used = [], 0
    for ref in stream:
        if used + _cost(ref) > budget:
            break
        taken.append(ref)
        used += _cost(ref)
    return taken, used


def _finish(turns, doc, left, core, right, bucket, template, left_stream=(), right_stream=()) -> Layout | str:
    """Render the question, count exactly, and nudge the ends until the count is inside the bucket."""
    left, right = list(left), list(right)
    for _ in range(MAX_ADJUST + 1):
        pages = list(reversed(left)) + core + right
        layout = _render(turns, doc, pages, template)
        if layout.tokens in bucket:
            return layout
        if layout.tokens >= bucket.high:
            if not left and not right:
                return "evidence longer than the bucket"
            (left if len(left) >= len(right) else right).pop()
        elif len(right) < len(right_stream):
            right.append(right_stream[len(right)])
        elif len(left) < len(left_stream):
            left.append(left_stream[len(left)])
        else:
            return "not enough pages in the store to reach the bucket"
    return "could not land inside the bucket"


def _render(turns: Sequence[QACandidate], doc: DocumentView, pages: list[PageRef], template: ChatTemplate) -> Layout:
    position = {r.page_index: i for i, r in enumerate(pages) if r.doc_id == doc.doc_id}
    questions = [render_question(c.question, position.__getitem__) for c in turns]
    evidence = [tuple(position[p] for p in c.evidence_pages) for c in turns]
    followups = tuple(FollowUp(question=q, answer=c.answer, answer_format=c.answer_format, evidence=e)
                      for q, c, e in zip(questions[1:], turns[1:], evidence[1:]))
    tokens = template.count([r.vision_tokens for r in pages] + [questions[0]], turns[0].answer,
                            [(f.question, f.answer) for f in followups])
    before = len(template.prefix) + evidence_offsets(pages, [evidence[0][:1]])[0]
    return Layout(tuple(pages), evidence[0], questions[0], tokens, before / tokens, followups, tuple(turns[1:]))
