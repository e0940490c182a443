"""Place a QA candidate's evidence inside a long sequence of pages that lands in a length bucket.

The sequence is a window over [filler documents..., the document, filler documents...]. The pages from
the first to the last page that the evidence or the question names are always kept whole; pages before
and after are added so the first evidence page sits at the requested depth and the exact token count
(ChatTemplate.count) falls inside the bucket. Filler documents are other documents of the store,
unrelated to the question, as the paper pads inputs beyond the window: when the question names no page, a filler
that names one of its entities (another register's note on the same archive) is left out, since it could hold
another answer. Pure: same inputs, same layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmprolong.records import PageRef
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


def _names_an_entity(filler: DocumentView, candidate: QACandidate) -> bool:
    labels = [normalize_text(e.label) for e in candidate.evidence if e.label]
    return any(label in text for text in filler.normalized_pages for label in labels)


def layout_sample(candidate: QACandidate, doc: DocumentView, fillers: Sequence[DocumentView], *,
                  bucket: Bucket, target_tokens: int, depth: float, template: ChatTemplate) -> Layout | str:
    """A Layout, or the reason none fits (a string, counted by the caller)."""
    if candidate.task == "ocr-full":
        first, last = candidate.extra["pages"]
        return _finish(candidate, doc, [], [_ref(doc, p) for p in range(first, last + 1)], [], bucket, template)
    anchors = anchored_pages(candidate.question)
    if not anchors:
        fillers = [f for f in fillers if not _names_an_entity(f, candidate)]
    named = set(candidate.evidence_pages) | set(anchors)
    first, last = min(named), max(named)
    core = [_ref(doc, p) for p in range(first, last + 1)]
    fixed = template.count([candidate.question], candidate.answer) + sum(_cost(r) for r in core)
    if fixed >= bucket.high:
        return "evidence longer than the bucket"
    context = max(0, target_tokens - fixed)
    left_stream, right_stream = _streams(doc, first, last, fillers)
    left, used = _take(left_stream, depth * context)
    right, used_right = _take(right_stream, target_tokens - fixed - used)
    if used_right < target_tokens - fixed - used:  # the right side ran out: top up on the left
        more, _ = _take(left_stream[len(left):], target_tokens - fixed - used - used_right)
        left += more
    return _finish(candidate, doc, left, core, right, bucket, template, left_stream, right_stream)


def _take(stream: Sequence[PageRef], budget: float) -> tuple[list[PageRef], int]:
    taken, used = [], 0
    for ref in stream:
        if used + _cost(ref) > budget:
            break
        taken.append(ref)
        used += _cost(ref)
    return taken, used


def _finish(candidate, doc, left, core, right, bucket, template, left_stream=(), right_stream=()) -> Layout | str:
    """Render the question, count exactly, and nudge the ends until the count is inside the bucket."""
    left, right = list(left), list(right)
    for _ in range(MAX_ADJUST + 1):
        pages = list(reversed(left)) + core + right
        layout = _render(candidate, doc, pages, template)
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


def _render(candidate: QACandidate, doc: DocumentView, pages: list[PageRef], template: ChatTemplate) -> Layout:
    position = {r.page_index: i for i, r in enumerate(pages) if r.doc_id == doc.doc_id}
    question = render_question(candidate.question, position.__getitem__)
    evidence = tuple(position[p] for p in candidate.evidence_pages)
    tokens = template.count([r.vision_tokens for r in pages] + [question], candidate.answer)
    before = len(template.prefix) + sum(_cost(r) for r in pages[: evidence[0]])
    return Layout(tuple(pages), evidence, question, tokens, before / tokens)
