"""Pages of a planned document, laid out into one PDF with reportlab, and the facts as printed.

Pagination is ours: one ``showPage`` per planned page, so the PDF has exactly ``plan.num_pages`` pages and a
fact's page index is exact. A page is filled block by block until the next block does not fit; a paragraph
is then cut at a sentence boundary, while a table or chart moves to the next page of its section (text
fills the gap) or, at the section's end, is dropped. Only drawn facts enter the truth.
"""

from __future__ import annotations

import io
from dataclasses import replace

from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4, letter
from reportlab.pdfgen.canvas import Canvas

from mmprolong.corpus.compose import Composer, PageState
from mmprolong.corpus.content import Block, Chart, DocumentPlan, Heading, Paragraph, SectionPlan, Sentence, Table
from mmprolong.corpus.layout import GREY, PageWriter, Style, Widths
from mmprolong.corpus.truth import Fact

STYLES = {
    "report": Style(letter, 72, 72, 64, "Times-Roman", 10.5, (26, 17, 12.5), 8.5, ""),
    "manual": Style(A4, 60, 66, 60, "Helvetica", 9.5, (24, 15, 11.5), 8.5, ""),
    "slides": Style((960.0, 540.0), 56, 44, 44, "Helvetica", 17, (34, 26, 13), 12, ""),
}


def render_pdf(plan: DocumentPlan, composer: Composer) -> tuple[bytes, list[Fact]]:
    """The PDF bytes and every fact drawn, with its page, source, section and box."""
    style = replace(STYLES[plan.kind], accent=plan.topic["color"])
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=style.page_size, invariant=1, pageCompression=1)
    canvas.setTitle(plan.title)
    canvas.setAuthor(plan.organisation)
    facts: list[Fact] = []
    carried: Block | None = None
    widths = Widths()
    for page in range(plan.num_pages):
        writer = PageWriter(canvas, style, widths)
        sections = plan.sections_at(page)
        if sections[-1].chapter == "cover":
            _cover(writer, plan, composer)
        else:
            _header_footer(writer, plan, sections[0], page)
            if sections[-1].chapter == "contents":
                _contents(writer, plan)
            elif plan.kind == "slides":
                _slide(writer, composer, sections, page)
            else:
                carried = _content_page(writer, composer, sections, page, carried)
        facts += _facts(writer, page, sections[-1].title, first_id=len(facts))
        canvas.showPage()
    canvas.save()
    return buffer.getvalue(), facts


def _content_page(w: PageWriter, composer: Composer, sections: list[SectionPlan], page: int,
                  carried: Block | None) -> Block | None:
    """Fill a report or manual page; returns the block moved to the next page, if any."""
    state, section = composer.new_page(page), sections[-1]
    if page == 0 and not any(s.chapter == "cover" for s in composer.plan.sections):
        w.heading(Heading(composer.plan.title, 0))  # a one-page document has no cover: title it here
    for s in sections:
        if s.start_page == page:
            w.heading(Heading(s.title, s.level))
    while w.room > w.s.leading * 2:
        block, carried = carried or composer.block(section, state), None
        if _place(w, block, state, composer):
            continue
        if isinstance(block, Paragraph):
            _place_part(w, block, state)
        else:
            carried = block if state.blocks > 0 else None  # too tall even for a fresh page: drop it
            _place_part(w, composer.filler(section, state), state)
        break
    return carried if page < section.end_page else None


def _place(w: PageWriter, block: Block, state: PageState, composer: Composer, *, x: float | None = None,
           width: float | None = None) -> bool:
    """Draws the block if it fits the room left; notes its facts on the page state."""
    width = width or (w.right - w.left)
    before = len(w.placed)
    if isinstance(block, Paragraph):
        if w.paragraph_height(block, width) > w.room:
            return False
        w.paragraph(block, x=x, width=width)
    elif isinstance(block, Table):
        layout = w.table_layout(block, width)
        if layout[2] > w.room:
            return False
        w.table(block, layout, x=x)
    elif isinstance(block, Chart):
        width = min(width, 440.0) if composer.plan.kind != "slides" else width
        if w.chart_height(block, width) > w.room:
            return False
        w.chart(block, width, x=x)
        composer.last_chart_page = state.page
    state.note([fact for fact, _, _ in w.placed[before:]], figure=isinstance(block, Chart))
    return True


def _place_part(w: PageWriter, block: Paragraph, state: PageState, *, x=None, width=None) -> None:
    """As much of a paragraph as fits, cut after a whole sentence."""
    width = width or (w.right - w.left)
    part = w.fit_paragraph(block, width)
    if part is not None:
        before = len(w.placed)
        w.paragraph(part, x=x, width=width)
        state.note([fact for fact, _, _ in w.placed[before:]])


def _slide(w: PageWriter, composer: Composer, sections: list[SectionPlan], page: int) -> None:
    """Section label, title, bullets; a chart or table, when the slide has one, in the right half."""
    state, section = composer.new_page(page), sections[-1]
    title, bullets, *visual = composer.slide(section, state)
    w.c.setFillColor(HexColor(w.s.accent))
    w.c.setFont(w.s.head_font, 11)
    w.c.drawString(w.left, w.y - 4, section.title.upper())
    w.c.setFillColor(GREY)
    w.y -= 12
    w.heading(title)
    top, full = w.y, w.right - w.left
    half = full * 0.47 if visual else full
    if not _place(w, bullets, state, composer, width=half):
        _place_part(w, bullets, state, width=half)
    if visual:
        w.y = top
        _place(w, visual[0], state, composer, x=w.left + full * 0.52, width=full * 0.48)


def _cover(w: PageWriter, plan: DocumentPlan, composer: Composer) -> None:
    """Title band, organisation, and the small print whose values are layout facts."""
    accent = HexColor(plan.topic["color"])
    w.c.setFillColor(accent)
    w.c.rect(0, w.height * 0.62, w.width, w.height * 0.06, stroke=0, fill=1)
    w.y = w.height * 0.58
    w.heading(Heading(plan.title, 0))
    w.c.setFillColor(GREY)
    w.draw_lines(w.text_lines([Sentence(plan.organisation)], size=w.s.head_sizes[1]), w.left,
                 size=w.s.head_sizes[1])
    w.y = w.height * 0.25
    lines = [line for sentence in composer.cover_lines() for line in w.text_lines([sentence])]
    w.c.setFillColor(HexColor("#000000"))
    w.draw_lines(lines, w.left, source="layout")


def _contents(w: PageWriter, plan: DocumentPlan) -> None:
    """Contents (agenda for slides): level-2 entries too when they all fit on the page."""
    w.heading(Heading("Agenda" if plan.kind == "slides" else "Contents", 1))
    body = [s for s in plan.sections if s.chapter not in ("cover", "contents")]
    step = w.s.body_size * 1.6
    if len(body) * step > w.room:
        body = [s for s in body if s.level == 1]
    w.c.setFont(w.s.body_font, w.s.body_size)
    for section in body:
        if w.room < step:
            break
        w.y -= step
        indent = 18.0 if section.level == 2 else 0.0
        w.c.drawString(w.left + indent, w.y, section.title)
        w.c.drawRightString(w.right, w.y, str(section.start_page + 1))


def _header_footer(w: PageWriter, plan: DocumentPlan, chapter: SectionPlan, page: int) -> None:
    w.c.setFont(w.s.body_font if plan.kind != "report" else "Helvetica", 8)
    w.c.setFillColor(GREY)
    top, bottom = w.height - w.s.margin_top * 0.55, w.s.margin_bottom * 0.5
    if plan.kind == "slides":
        w.c.drawString(w.left, bottom, f"{plan.organisation} | {plan.topic['programme']} Programme")
        w.c.drawRightString(w.right, bottom, str(page + 1))
    else:
        w.c.drawString(w.left, top, plan.title)
        w.c.drawRightString(w.right, top, chapter.title)
        w.c.setStrokeColor(GREY)
        w.c.setLineWidth(0.4)
        w.c.line(w.left, top - 4, w.right, top - 4)
        w.c.drawCentredString(w.width / 2, bottom, f"Page {page + 1} of {plan.num_pages}")
    w.c.setFillColor(HexColor("#000000"))


def _facts(w: PageWriter, page: int, section: str, *, first_id: int) -> list[Fact]:
    """Placements as truth facts: box as page fractions with a top-left origin."""
    facts = []
    for fact, source, (x0, y0, x1, y1) in w.placed:
        box = (x0 / w.width, 1 - y1 / w.height, x1 / w.width, 1 - y0 / w.height)
        facts.append(Fact(
            fact_id=f"f{first_id + len(facts):05d}", entity=fact.entity, attribute=fact.attribute,
            value=fact.value, value_type=fact.value_type, unit=fact.metric.unit, page=page, source=source,
            section=section, bbox=tuple(round(min(1.0, max(0.0, v)), 5) for v in box),
            rendered={"figure": None, "table": fact.cell}.get(source, fact.text)))
    return facts
