"""Long-document VQA at a chosen length, from local copies of MMLongBench-Doc, LongDocURL and SlideVQA.

Two sources (``EvalConfig.docvqa_source``):

- ``released``: each benchmark read from its own released files (``docvqa_sources`` says which and where) and
  cut or padded here to each length, as MMLongBench builds its doc inputs with cross-modal token counting.
- ``mmlongbench``: MMLongBench's own prebuilt inputs at 8K..128K (``docvqa_prebuilt``), the files behind the
  published MMLongBench numbers and the paper's.

Cut or pad to length L: every image is preceded by a label ("Document X (page n):", so page references in
questions stay valid after cutting) and the question comes last. A document longer than L loses the
non-evidence pages farthest from its evidence first (evidence pages are always kept; a question without
evidence keeps the document's start). A shorter one is padded with unrelated documents, whole and in a seeded
order, alternately on the left and the right (the paper's 256K/512K construction), the last one cut at a page
boundary. Lengths land in [L - tolerance, L]. Padding documents are the dataset's other documents, then the
page store's (``store_dir``) if one is given. With ``longdocurl_pages: window`` a LongDocURL question sees only
the page window its record names (``start_end_idx``, LongDocURL's own protocol): never padded, cut only when the
window is longer than L.

Every record is accounted for: each question is first fitted at every length (sizes only, nothing rendered);
those that fit at all of them are the candidates, of which ``max_questions`` are drawn (seeded), the same set
at every length. A record that does not fit, or cannot be read, is an error item at each length with its
reason ("<reason>: <details>"), so the tables count it; the others not drawn are "not sampled". Only then are
the PDF pages the chosen items show rendered (into the render cache, shared by runs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.eval.config import format_length
from mmprolong.eval.items import NO_DEPTH, EvalItem, ItemImage, error_item
from mmprolong.eval.pages import span
from mmprolong.eval.pdf_pages import PdfPages
from mmprolong.eval.suites.common import SuiteContext, count, finish_item, rng_for
from mmprolong.eval.suites.docvqa_sources import NO_DOCUMENT, BenchQuestion, BenchSet, Sources, load_dataset

INSTRUCTION = ("Answer as concisely as you can, in a single phrase or sentence if possible. If the document does "
               "not contain the answer, write 'Not answerable'.")
NATIVE_METRIC = {"mmlongbench-doc": "mmlongbench-doc", "longdocurl": "longdocurl", "slidevqa": "slidevqa"}
# Reasons an item cannot be built (the text before the first ": " of its error).
UNREADABLE = "dataset unreadable"
PROMPT_TOO_LONG = "prompt too long"
EVIDENCE_TOO_LONG = "evidence does not fit"
SHORT = "not enough padding"
RENDER_FAILED = "page render failed"


def metric_of(config, dataset: str) -> str:
    return "mmlongbench-docqa" if config.docvqa_metric == "mmlongbench" else NATIVE_METRIC[dataset]


def render_cache(config) -> Path:
    """Where rendered PDF pages and extracted slides are kept between runs."""
    return Path(config.render_cache_dir) if config.render_cache_dir else Path(config.data_dir) / ".mmprolong-cache"


# --- cut or pad to a length --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    doc: str
    index: int  # 0-based page of its document
    image: ItemImage
    label: str  # the text part before the image
    cost: int  # label tokens + image span


def doc_label(name: str) -> str:
    """How a document is named in the prompt: its file name without extension, cut to 15 characters."""
    return Path(name).stem[:15] or name[:15]


def _pages(ctx: SuiteContext, name: str, images: Sequence[ItemImage]) -> list[_Page]:
    label = doc_label(name)
    out = []
    for i, image in enumerate(images):
        text = f"\nDocument {label} (page {i + 1}): "
        out.append(_Page(name, i, image, text, len(ctx.template.text_ids(text)) + span(image)))
    return out


def fit_document(main: list[_Page], evidence: Sequence[int], pool: Sequence[list[_Page]],
                 budget: int) -> tuple[list[_Page], list[_Page], list[_Page]] | str:
    """(left padding, kept document pages, right padding) whose costs sum to at most ``budget``, or the reason
    none fits. ``evidence`` are positions in ``main``. Cutting drops the non-evidence pages farthest from the
    evidence; padding alternates left/right by whole documents (left takes a document's last pages first,
    right its first pages)."""
    if budget <= 0:
        return f"{PROMPT_TOO_LONG}: the prompt without pages already takes {-budget} tokens more than the length"
    keep = set(range(len(main)))
    used = sum(p.cost for p in main)
    needed = sum(main[e].cost for e in evidence)
    if needed > budget:
        return f"{EVIDENCE_TOO_LONG}: the evidence pages alone take {needed} tokens, more than the {budget} left"
    if used > budget:
        anchors = list(evidence) or [0]
        order = sorted((i for i in keep if i not in set(evidence)),
                       key=lambda i: (-min(abs(i - a) for a in anchors), -i))
        for i in order:
            if used <= budget:
                break
            keep.discard(i)
            used -= main[i].cost
        return [], [main[i] for i in sorted(keep)], []
    left: list[_Page] = []
    right: list[_Page] = []
    for turn, doc in enumerate(pool):
        pages = list(reversed(doc)) if turn % 2 == 0 else doc
        for page in pages:
            if used + page.cost > budget:
                return list(reversed(left)), list(main), right
            (left if turn % 2 == 0 else right).append(page)
            used += page.cost
    return list(reversed(left)), list(main), right


@dataclass
class _Fit:
    """A question fitted to one length, before any item (and any pixel) exists."""

    left: list[_Page]
    kept: list[_Page]
    right: list[_Page]
    question: str  # the last text part
    tokens: int
    tolerance: int
    notes: list[str] = field(default_factory=list)


@dataclass
class _Question:
    """A question with what every length shares: its pages, evidence positions among them, padding order."""

    q: BenchQuestion
    main: list[_Page]
    evidence: list[int]  # positions in main
    pool: list[list[_Page]]
    window: bool
    notes: list[str]
    question: str  # the last text part
    fixed: int  # tokens of everything but the pages: an item has fixed + its pages' costs (counts add up)


def _prepare(ctx: SuiteContext, bench: BenchSet, pages: dict[str, list[_Page]], store_docs: list[list[_Page]],
             q: BenchQuestion) -> _Question | str:
    if q.error:
        return q.error
    doc = bench.docs.get(q.doc)
    if doc is None or doc.error:
        return doc.error if doc else f"{NO_DOCUMENT}: document {q.doc!r} not found"
    main, notes = pages[q.doc], list(q.notes)
    beyond = [e + 1 for e in q.evidence if e >= len(main)]
    if beyond:  # MMLongBench-Doc has five such records; its scorer, which never looks at pages, scores them
        notes.append(f"evidence pages {beyond} are beyond the document's {len(main)} pages: left out")
    evidence = [e for e in q.evidence if e < len(main)]
    window = bench.dataset == "longdocurl" and ctx.config.longdocurl_pages == "window"
    if window and q.window is None:
        notes.append("no start_end_idx: the whole document is the window")
    if window and q.window is not None:
        first, last = q.window[0], min(q.window[1], len(main) - 1)
        if first > last:
            return (f"{NO_DOCUMENT}: the window {first + 1}-{q.window[1] + 1} starts after the document's "
                    f"{len(main)} pages")
        if last < q.window[1]:
            notes.append(f"the window {first + 1}-{q.window[1] + 1} ends after the document's {len(main)} pages")
        outside = [e + 1 for e in evidence if not first <= e <= last]
        if outside:
            notes.append(f"evidence pages {outside} lie outside the window {first + 1}-{last + 1}: left out")
        main, evidence = main[first:last + 1], [e - first for e in evidence if first <= e <= last]
    pool: list[list[_Page]] = []
    if not window:
        pool = [p for name, p in sorted(pages.items()) if name != q.doc] + list(store_docs)
        rng_for("docvqa-pad", ctx.config.seed, bench.dataset, q.qid).shuffle(pool)
    question = (f"\n\nBased on Document {doc_label(q.doc)}, answer the following question. {q.question}\n"
                f"{INSTRUCTION}")
    return _Question(q, main, evidence, pool, window, notes, question, count(ctx.template, [question], [q.answer]))


def _fit(ctx: SuiteContext, prepared: _Question, length: int, max_cost: int) -> _Fit | str:
    fitted = fit_document(prepared.main, prepared.evidence, prepared.pool, length - prepared.fixed)
    if isinstance(fitted, str):
        reason, detail = fitted.split(": ", 1)
        return f"{reason}: at {format_length(length)}, {detail}"
    left, kept, right = fitted
    tokens = prepared.fixed + sum(p.cost for p in left + kept + right)
    tolerance = ctx.config.length_tolerance if ctx.config.length_tolerance >= 0 else max_cost
    if not prepared.window and tokens < length - tolerance:
        return (f"{SHORT}: at {format_length(length)}, the document and every padding page reach {tokens} tokens "
                f"(tolerance {tolerance}); add documents or a store_dir")
    return _Fit(left, kept, right, prepared.question, tokens, tolerance, prepared.notes)


def _item(ctx: SuiteContext, dataset: str, metric: str, q: BenchQuestion, length: int, fit: _Fit,
          window: bool) -> EvalItem:
    parts: list = []
    for page in fit.left + fit.kept + fit.right:
        parts += [page.label, page.image]
    parts.append(fit.question)
    evidence_pages = set(q.evidence)
    evidence = [len(fit.left) + i for i, p in enumerate(fit.kept) if p.index in evidence_pages]
    meta = {**_meta(q), "kept_pages": [p.index + 1 for p in fit.kept], "left_docs": _docs_of(fit.left),
            "right_docs": _docs_of(fit.right), "tolerance": fit.tolerance}
    if fit.notes:
        meta["notes"] = fit.notes
    if window:
        meta["window"] = True
    item = finish_item(ctx, suite="docvqa", task=dataset, length=length, depth=NO_DEPTH, parts=parts,
                       question=q.question, answers=[q.answer], answer_format=q.answer_format, metric=metric,
                       evidence=evidence, metadata=meta)
    assert item.tokens == fit.tokens, (item.tokens, fit.tokens)  # the fit's arithmetic is the item's count
    return item


def _meta(q: BenchQuestion) -> dict:
    return {"dataset": q.dataset, "qid": q.qid, "doc": q.doc, "evidence_pages": [e + 1 for e in q.evidence]}


def _failed(dataset: str, metric: str, q: BenchQuestion, length: int, reason: str) -> EvalItem:
    return error_item(suite="docvqa", task=dataset, length=length, depth=NO_DEPTH, metric=metric,
                      question=q.question, answers=[q.answer] if q.answer else [],
                      answer_format=q.answer_format or "String", error=reason, metadata=_meta(q))


def _docs_of(pages: Sequence[_Page]) -> list[str]:
    out: list[str] = []
    for p in pages:
        if not out or out[-1] != p.doc:
            out.append(p.doc)
    return out


# --- items -------------------------------------------------------------------------------------------------


def build_items(ctx: SuiteContext) -> list[EvalItem]:
    """Per dataset: the same questions (``max_questions``, seeded, among those that fit every length) at every
    length, and an error item per length for each record that cannot be asked."""
    config = ctx.config
    if config.docvqa_source == "mmlongbench":
        from mmprolong.eval.suites.docvqa_prebuilt import build_items as build_prebuilt

        return build_prebuilt(ctx)
    cache = render_cache(config)
    pdfs = PdfPages(cache, family=ctx.family, max_dpi=config.pdf_max_dpi, min_pixels=ctx.min_pixels,
                    max_pixels=ctx.max_pixels)
    sources = Sources(ctx.family, ctx.min_pixels, ctx.max_pixels, pdfs, cache)
    store_docs = _store_pool(ctx) if config.store_dir else []
    items: list[EvalItem] = []
    for dataset in config.datasets:
        metric = metric_of(config, dataset)
        try:
            bench = load_dataset(dataset, Path(config.data_dir), sources)
        except (DataError, OSError, ValueError) as exc:
            ctx.records |= {(dataset, n): 0 for n in config.lengths}
            items += [error_item(suite="docvqa", task=dataset, length=n, depth=NO_DEPTH, metric=metric,
                                 error=f"{UNREADABLE}: cannot read {dataset}: {exc}") for n in config.lengths]
            continue
        ctx.records |= {(dataset, n): len(bench.questions) for n in config.lengths}
        items += _dataset_items(ctx, bench, store_docs, metric)
    return _render(items, pdfs)


def _dataset_items(ctx: SuiteContext, bench: BenchSet, store_docs: list[list[_Page]], metric: str) -> list[EvalItem]:
    config = ctx.config
    pages = {name: _pages(ctx, name, doc.pages) for name, doc in bench.docs.items() if not doc.error}
    max_cost = max((p.cost for doc in [*pages.values(), *store_docs] for p in doc), default=0)
    plans: list[tuple[_Question, list[_Fit]] | str] = []
    for q in bench.questions:
        prepared = _prepare(ctx, bench, pages, store_docs, q)
        if isinstance(prepared, str):
            plans.append(prepared)
            continue
        fits = [_fit(ctx, prepared, n, max_cost) for n in config.lengths]
        failure = next((f for f in fits if isinstance(f, str)), None)
        plans.append((prepared, fits) if failure is None else failure)
    candidates = [i for i, plan in enumerate(plans) if not isinstance(plan, str)]
    chosen = set(_select(candidates, config.max_questions, rng_for("docvqa-select", config.seed, bench.dataset)))
    items = []
    for i, (q, plan) in enumerate(zip(bench.questions, plans)):
        if isinstance(plan, str):
            items += [_failed(bench.dataset, metric, q, n, plan) for n in config.lengths]
        elif i in chosen:
            prepared, fits = plan
            items += [_item(ctx, bench.dataset, metric, q, n, fit, prepared.window)
                      for n, fit in zip(config.lengths, fits)]
    return items


def _select(candidates: list[int], limit: int, rng) -> list[int]:
    if limit < 0 or limit >= len(candidates):
        return candidates
    return sorted(rng.sample(candidates, limit))


def _store_pool(ctx: SuiteContext) -> list[list[_Page]]:
    store = ctx.store
    return [_pages(ctx, store.sources.get(d, d), store.pages[d]) for d in store.doc_ids]


def _render(items: list[EvalItem], pdfs: PdfPages) -> list[EvalItem]:
    """Draw the PDF pages the items show; an item whose page cannot be drawn becomes an error item."""
    failed = pdfs.render(image for item in items if not item.error for image in item.images)
    if not failed:
        return items
    out = []
    for item in items:
        bad = next((failed[im.path] for im in item.images if im.path in failed), None)
        out.append(item if bad is None else error_item(
            suite=item.suite, task=item.task, length=item.length, depth=item.depth, metric=item.metric,
            question=item.question, answers=item.answers, answer_format=item.answer_format,
            error=f"{RENDER_FAILED}: {bad}", metadata=json.loads(item.metadata)))
    return out
