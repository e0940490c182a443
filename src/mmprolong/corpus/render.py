"""Lay a DocumentPlan out into a PDF with reportlab, one plan page per PDF page, recording each fact's box.

Pagination is explicit (one ``showPage`` per plan page), so a fact's page index is exact. A block that
would not fit the page is left out with its facts, so the truth lists only what is printed.
"""

from __future__ import annotations

import io

from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas

from mmprolong.corpus.charts import bar_chart_png
from mmprolong.corpus.content import Block, DocumentPlan, FactDraft
from mmprolong.corpus.truth import Fact

SLIDE_SIZE = (960.0, 540.0)
BODY, BOLD = "Helvetica", "Helvetica-Bold"
BODY_SIZE = {"report": 10.5, "manual": 10.0, "slides": 16.0}


class PageWriter:
    """Draws blocks top-down on one page and records (fact, source, bbox in points) for what it draws."""

    def __init__(self, canvas: Canvas, size: tuple[float, float], kind: str):
        self.c, (self.width, self.height), self.kind = canvas, size, kind
        self.margin = 54.0 if kind != "slides" else 48.0
        self.y = self.height - self.margin - 14
        self.body = BODY_SIZE[kind]
        self.placed: list[tuple[FactDraft, str, tuple[float, float, float, float]]] = []

    @property
    def text_width(self) -> float:
        return self.width - 2 * self.margin

    def room(self, needed: float) -> bool:
        return self.y - needed >= self.margin + 20

    def heading(self, text: str, level: int) -> None:
        size = {0: 24.0, 1: 17.0}.get(level, 13.0) * (1.4 if self.kind == "slides" else 1.0)
        lines = simpleSplit(text, BOLD, size, self.text_width)
        if not self.room(len(lines) * size * 1.3 + 8):
            return
        self.c.setFont(BOLD, size)
        for line in lines:
            self.y -= size * 1.3
            self.c.drawString(self.margin, self.y, line)
        self.y -= 8

    def paragraph(self, sentences, *, bullet: bool = False) -> None:
        """Sentences wrapped as one paragraph (or one bullet each); fact boxes are their lines' boxes."""
        groups = [[s] for s in sentences] if bullet else [sentences]
        leading = self.body * 1.35
        for group in groups:
            prefix = "\u2022 " if bullet else ""
            text = prefix + " ".join(s for s, _ in group)
            lines = simpleSplit(text, BODY, self.body, self.text_width - (14 if bullet else 0))
            if not self.room(len(lines) * leading + 6):
                return
            top = self.y
            self.c.setFont(BODY, self.body)
            for line in lines:
                self.y -= leading
                self.c.drawString(self.margin, self.y, line)
            self._record_sentence_facts(group, prefix, lines, top, leading)
            self.y -= 6 if bullet else 10

    def _record_sentence_facts(self, group, prefix, lines, top, leading) -> None:
        offset = len(prefix)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)  # simpleSplit breaks at single spaces
        for sentence, fact in group:
            if fact is not None:
                begin = offset + sentence.index(fact.rendered)
                first = max(i for i in range(len(lines)) if starts[i] <= begin)
                last = max(i for i in range(len(lines)) if starts[i] <= begin + len(fact.rendered) - 1)
                x1 = self.margin + max(self.c.stringWidth(lines[i], BODY, self.body) for i in range(first, last + 1))
                box = (self.margin, top - (last + 1) * leading - 3, x1, top - first * leading + 2)
                self.placed.append((fact, "layout" if fact.attribute == "document number" else "text", box))
            offset += len(sentence) + 1

    def table(self, block: Block) -> None:
        size, row_h = self.body - 1, (self.body - 1) * 1.8
        cols = len(block.header)
        first_w = self.text_width * (0.4 if cols > 2 else 0.5)
        other_w = (self.text_width - first_w) / max(1, cols - 1)
        if not self.room(row_h * (len(block.rows) + 1) + 30):
            return
        xs = [self.margin] + [self.margin + first_w + i * other_w for i in range(cols)]
        self.c.setFillColor(HexColor("#dde4f0"))
        self.c.rect(self.margin, self.y - row_h, self.text_width, row_h, stroke=0, fill=1)
        self.c.setFillColor(HexColor("#000000"))
        self._table_row(block.header, xs, size, BOLD)
        for row in block.rows:
            top = self.y
            self._table_row([text for text, _ in row], xs, size, BODY)
            for col, (_, fact) in enumerate(row):
                if fact is not None:
                    self.placed.append((fact, "table", (xs[col], self.y - 2, xs[col + 1], top)))
        self.c.setLineWidth(0.4)
        self.c.line(self.margin, self.y - 2, self.margin + self.text_width, self.y - 2)
        self.caption(block.caption)

    def _table_row(self, cells, xs, size, font) -> None:
        row_h = size * 1.8
        self.y -= row_h
        self.c.setFont(font, size)
        for col, text in enumerate(cells):
            self.c.drawString(xs[col] + 4, self.y + size * 0.55, text)

    def chart(self, block: Block) -> None:
        width = self.text_width * (0.55 if self.kind == "slides" else 0.8)
        height = min(width * 0.5, self.y - self.margin - 60)
        if height < 90:
            return
        labels, values = [f.entity for f in block.chart], [f.value for f in block.chart]
        png = bar_chart_png(labels, values, title=block.caption.removeprefix("Figure: "),
                            width_in=width / 72, height_in=height / 72)
        x, top = self.margin, self.y - 6
        self.c.drawImage(ImageReader(io.BytesIO(png)), x, top - height, width, height)
        self.y = top - height
        for fact in block.chart:
            self.placed.append((fact, "figure", (x, self.y, x + width, top)))
        self.caption(block.caption)

    def caption(self, text: str) -> None:
        self.y -= self.body * 1.4
        self.c.setFont("Helvetica-Oblique", self.body - 1.5)
        self.c.drawString(self.margin, self.y, text)
        self.y -= 10

    def header_footer(self, header: str, page: int, pages: int) -> None:
        self.c.setFont(BODY, 8)
        self.c.setFillColor(HexColor("#666666"))
        self.c.drawString(self.margin, self.height - 30, header)
        self.c.drawRightString(self.width - self.margin, 24, f"Page {page + 1} of {pages}")
        self.c.setFillColor(HexColor("#000000"))


def render_pdf(plan: DocumentPlan) -> tuple[bytes, list[Fact]]:
    """The PDF bytes and the facts as printed (page, source, box as page fractions, top-left origin)."""
    size = SLIDE_SIZE if plan.kind == "slides" else letter
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=size, invariant=1, pageCompression=1)
    canvas.setTitle(plan.title)
    canvas.setAuthor(plan.organisation)
    facts: list[Fact] = []
    for index, page in enumerate(plan.pages):
        writer = PageWriter(canvas, size, plan.kind)
        if index > 0:
            writer.header_footer(f"{plan.organisation} \u2014 {plan.title.removeprefix(plan.organisation).strip()}",
                                 index, len(plan.pages))
        for block in page.blocks:
            _draw(writer, block)
        if page.section == "Contents":
            _contents(writer, plan)
        for fact, source, (x0, y0, x1, y1) in writer.placed:
            facts.append(Fact(
                fact_id=f"f{len(facts):05d}", entity=fact.entity, attribute=fact.attribute, value=fact.value,
                value_type=_value_type(fact), unit=fact.metric.unit, page=index, source=source,
                section=page.section,
                bbox=tuple(round(v, 5) for v in (x0 / size[0], 1 - y1 / size[1], x1 / size[0], 1 - y0 / size[1])),
                rendered=None if source == "figure" else fact.rendered))
        canvas.showPage()
    canvas.save()
    return buffer.getvalue(), facts


def _draw(writer: PageWriter, block: Block) -> None:
    if block.kind == "heading":
        writer.heading(block.text, block.level)
    elif block.kind in ("paragraph", "bullets"):
        writer.paragraph(block.sentences, bullet=block.kind == "bullets")
    elif block.kind == "table":
        writer.table(block)
    elif block.kind == "chart":
        writer.chart(block)


def _contents(writer: PageWriter, plan: DocumentPlan) -> None:
    writer.c.setFont(BODY, writer.body)
    for title, _, start, _ in plan.sections:
        if not writer.room(writer.body * 1.6):
            return
        writer.y -= writer.body * 1.6
        writer.c.drawString(writer.margin, writer.y, title)
        writer.c.drawRightString(writer.width - writer.margin, writer.y, str(start + 1))


def _value_type(fact: FactDraft) -> str:
    if isinstance(fact.value, int):
        return "integer"
    return "float" if isinstance(fact.value, float) else "string"
