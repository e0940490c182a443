"""Multimodal needle in a haystack: document pages from the page store, a generated "note" page stating a fact.

The needle is an image at the store's most common page size (so it has the vision tokens of a store page at the
eval pixel budget): a pale fact card in the large print of ``corpus.cards``, "Orion archive / Secret code /
418063", the question "What is the secret code of the Orion archive?" an extract-single question about it. The
haystack is whole documents of the store. synth's ``layout_sample`` places the needle page at the requested
depth of the context and fills both sides with filler documents until the exact count (ChatTemplate.count,
gold answer included) lands in [L - tolerance, L]; the question comes last and asks for the fact.

Variants: ``single`` (one needle, scored by sub-EM), ``multi-K`` (K needles about K different archives,
the first at the requested depth and the others spread evenly over the rest of the context; one question asks
for all K codes; the score is the fraction found, sub-EM on each) and ``lookalikes-L`` (RULER's multi-key needle:
the single variant's needle and question, with L notes about other archives, with other codes, at seeded places
of the haystack; the answer must come from the note the question names, and ``score_item`` records whether it
gave a look-alike's code instead). A haystack holds no note but these: documents that state a code are never
filler.

An item depends only on (seed, length, depth, variant, index) and the store: two models see the same items.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from mmprolong.corpus import vocab
from mmprolong.corpus.cards import NOTE_ATTRIBUTE, archive_names, note_lines
from mmprolong.eval.config import depth_grid
from mmprolong.eval.items import EvalItem, ItemImage, error_item
from mmprolong.eval.pages import span
from mmprolong.eval.suites.common import SuiteContext, answer_text, finish_item, pick_fillers, rng_for
from mmprolong.synth.documents import DocumentView
from mmprolong.synth.layout import layout_sample
from mmprolong.synth.plan import Bucket
from mmprolong.synth.qa import Evidence, QACandidate

NEEDLE_DOC = "niah-needle"


def fact_text(archive: str, code: str) -> str:
    """The needle's text, as its note prints it."""
    return "\n".join(line.text for line in note_lines(archive, code))


def question_text(archives: list[str]) -> str:
    """The question as synth asks it about a note, without an answer-format instruction: sub-EM finds the code in
    any answer, and the miniature's starting point, which no instruction ever reached, answered 0-2 of 12 at each
    length from 256 to 1,024 tokens with "Answer with the code only." appended, 7-12 of 12 without (README)."""
    if len(archives) == 1:
        return f"What is the secret code of the {archives[0]}?"
    names = ", ".join(archives[:-1]) + f" and {archives[-1]}"
    return f"What are the secret codes of the {names}?"


def render_note(archive: str, code: str, width: int, height: int):
    """The needle page: the corpus' note card (``corpus.cards.note_lines``: 24 Courier-Bold columns across the
    page, a line per two columns of height) drawn to a PDF page of ``width`` x ``height`` points and rendered by
    pdfium at 1 px per point, so on a large-print store it is on the same token grid as the cards."""
    import pypdfium2 as pdfium
    from reportlab.pdfgen.canvas import Canvas

    from mmprolong.corpus.cards import NOTE_ACCENT, NOTE_PAPER, draw_card

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(width, height), invariant=1)
    draw_card(canvas, note_lines(archive, code), size=(width, height), accent=NOTE_ACCENT, paper=NOTE_PAPER)
    canvas.showPage()
    canvas.save()
    image = pdfium.PdfDocument(buffer.getvalue())[0].render(scale=1.0).to_pil().convert("RGB")
    return image if image.size == (width, height) else image.resize((width, height))


def needle_image(ctx: SuiteContext, archive: str, code: str, width: int, height: int) -> ItemImage:
    """Render the needle page into OUT/needles/ (once) and reference it by the hash of its PNG bytes."""
    buffer = io.BytesIO()
    render_note(archive, code, width, height).save(buffer, format="PNG", compress_level=6)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = Path(ctx.out_dir) / "needles" / f"{digest[:20]}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    tokens = ctx.image_tokens(height, width)
    return ItemImage(kind="file", vision_tokens=tokens, width=width, height=height, path=str(path.resolve()),
                     content_key=f"needle:{digest}")


def variant_name(needles: int, lookalikes: int = 0) -> str:
    if lookalikes:
        return f"lookalikes-{lookalikes}"
    return "single" if needles == 1 else f"multi-{needles}"


def states_a_code(doc) -> bool:
    """A document with a note of its own (an archive register): never haystack, its code would compete."""
    label = NOTE_ATTRIBUTE.capitalize()
    return any(label in text.splitlines() for text in doc.page_texts)


def build_items(ctx: SuiteContext) -> list[EvalItem]:
    """The whole grid: lengths x needle variants x depths x items_per_cell, in that order."""
    config = ctx.config
    store = ctx.store
    docs = [d for d in store.documents() if not states_a_code(d)]
    width, height = store.common_size()
    tolerance = ctx.tolerance([span(p) for doc in store.pages.values() for p in doc])
    items = []
    variants = [(k, 0) for k in config.needles] + [(1, n) for n in config.lookalikes]
    for length in config.lengths:
        for k, lookalikes in variants:
            for depth in depth_grid(config.depth_steps):
                for index in range(config.items_per_cell):
                    items.append(_build_one(ctx, docs, (width, height), tolerance, length, k, depth, index,
                                            lookalikes))
    return items


def _build_one(ctx: SuiteContext, docs, size: tuple[int, int], tolerance: int, length: int, k: int, depth: float,
               index: int, lookalikes: int = 0) -> EvalItem:
    config, store = ctx.config, ctx.store
    variant = variant_name(k, lookalikes)
    rng = rng_for("niah", config.seed, length, depth, k, index)
    names = archive_names(len(vocab.ARCHIVES))
    metric = "niah" if k == 1 else "niah-all"
    if k + lookalikes > len(names):
        return error_item(suite="niah", task=variant, length=length, depth=depth, metric=metric,
                          error=f"{k + lookalikes} notes: at most {len(names)} distinct archives")
    subjects = rng.sample(names, k)
    codes = [str(c) for c in rng.sample(range(100_000, 1_000_000), k)]
    texts = [fact_text(s, c) for s, c in zip(subjects, codes)]
    question = question_text(subjects)
    meta = {"needles": [{"archive": s, "code": c} for s, c in zip(subjects, codes)], "index": index}
    needles = [needle_image(ctx, s, c, *size) for s, c in zip(subjects, codes)]
    # The look-alikes draw from their own stream: the asked needle stays the single variant's, item for item.
    others_rng = rng_for("niah-lookalikes", config.seed, length, depth, lookalikes, index)
    others = list(zip(others_rng.sample([n for n in names if n not in subjects], lookalikes),
                      (str(c) for c in others_rng.sample(range(100_000, 1_000_000), lookalikes + k)
                       if str(c) not in codes)))
    if lookalikes:
        meta["lookalikes"] = [{"archive": s, "code": c} for s, c in others]
    decoys = [needle_image(ctx, s, c, *size) for s, c in others]

    def fail(reason: str) -> EvalItem:
        return error_item(suite="niah", task=variant, length=length, depth=depth, metric=metric, question=question,
                          answers=codes, error=reason, metadata=meta)

    # Haystack documents depend on (seed, length, index), and with per-item haystacks on the depth too: per-length,
    # every depth and variant at a length uses the same.
    draw = (length, index) if config.haystacks == "per-length" else (length, depth, index)
    fillers = pick_fillers(docs, rng_for("niah-haystack", config.seed, *draw), need_each_side=length)
    extra = sum(span(n) for n in needles[1:] + decoys)
    target = length - extra
    needle_doc = DocumentView(doc_id=NEEDLE_DOC, source="niah", page_texts=(texts[0],),
                              page_tokens=(needles[0].vision_tokens,))
    candidate = QACandidate(doc_id=NEEDLE_DOC, task="extract-single", question=question,
                            answer_value=answer_text(codes), answer_format="String", operation="lookup",
                            evidence=(Evidence(page=0, quote=texts[0], value=codes[0]),), generator="niah")
    layout = layout_sample(candidate, needle_doc, fillers, bucket=Bucket(max(1, target - tolerance), target + 1),
                           target_tokens=target, depth=depth, template=ctx.template)
    if isinstance(layout, str):
        return fail(f"cannot build a {length}-token haystack: {layout} (store pages: "
                    f"{sum(len(p) for p in store.pages.values())}, tolerance {tolerance} tokens)")
    haystack, first = [], 0
    for ref in layout.pages:
        if ref.doc_id == NEEDLE_DOC:
            first = len(haystack)
        else:
            haystack.append(store.image(ref.doc_id, ref.page_index))
    places = _needle_places(haystack, first, depth, k)
    decoy_places = sorted(others_rng.randrange(len(haystack) + 1) for _ in decoys)
    images, evidence = _assemble(haystack, list(zip(places, needles)) + list(zip(decoy_places, decoys)), k)
    item = finish_item(ctx, suite="niah", task=variant, length=length, depth=depth, parts=images + [question],
                       question=question, answers=codes, answer_format="String", metric=metric, evidence=evidence,
                       metadata={**meta, "fillers": [d.doc_id for d in fillers], "tolerance": tolerance})
    if not length - tolerance <= item.tokens <= length:
        return fail(f"landed at {item.tokens} tokens, outside [{length - tolerance}, {length}]")
    return item


def _needle_places(haystack: list[ItemImage], first: int, depth: float, k: int) -> list[int]:
    """The haystack boundary (insert before image b) of each needle: needle 1 at ``first``; needle j (j >= 1) at
    depth d + (1 - d) * j / K of the haystack tokens (the boundary nearest to it, never before the previous
    needle)."""
    cumulative = [0]
    for image in haystack:
        cumulative.append(cumulative[-1] + span(image))
    total = cumulative[-1]
    boundaries, previous = [first], first
    for j in range(1, k):
        goal = (depth + (1 - depth) * j / k) * total
        best = min(range(previous, len(cumulative)), key=lambda b: (abs(cumulative[b] - goal), b))
        boundaries.append(best)
        previous = best
    return boundaries


def _assemble(haystack: list[ItemImage], placed: list[tuple[int, ItemImage]],
              asked: int) -> tuple[list[ItemImage], list[int]]:
    """The haystack with each placed page inserted before haystack image b (pages at one boundary in the order
    given), and the positions of the first ``asked`` placed pages: the evidence."""
    order = sorted(range(len(placed)), key=lambda i: (placed[i][0], i))
    images, evidence, cursor = [], {}, 0
    for i in order:
        boundary, page = placed[i]
        images.extend(haystack[cursor:boundary])
        cursor = max(cursor, boundary)
        if i < asked:
            evidence[i] = len(images)
        images.append(page)
    images.extend(haystack[cursor:])
    return images, [evidence[i] for i in range(asked)]
