"""A small layout engine on a reportlab canvas: measure a block, draw it if it fits, record each fact's box.

We break lines ourselves (greedy, on spaces, base-14 font metrics) instead of using platypus, so we know
where every fact's value lands: a value is one unbreakable "atom", and its box is measured from the widths
of the text before it on its line. Boxes are PDF points, bottom-left origin (x0, y0, x1, y1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from reportlab.lib.colors import HexColor
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from mmprolong.corpus.charts import chart_png
from mmprolong.corpus.content import Chart, Heading, Paragraph, Sentence, Table
from mmprolong.corpus.facts import FactDraft

Box = tuple[float, float, float, float]
BLACK, GREY, RULE = HexColor("#000000"), HexColor("#666666"), HexColor("#9aa5b1")


@dataclass(frozen=True, slots=True)
class Style:
    page_size: tuple[float, float]
    margin_x: float
    margin_top: float
    margin_bottom: float
    body_font: str
    body_size: float
    head_sizes: tuple[float, float, float]  # title, level 1, level 2
    table_size: float
    accent: str
    head_font: str = "Helvetica-Bold"
    italic_font: str = "Helvetica-Oblique"

    @property
    def leading(self) -> float:
        return self.body_size * 1.35


@dataclass(slots=True)
class Atom:
    text: str
    width: float
    fact: FactDraft | None = None
    start: int = 0  # where the value begins inside ``text`` (a glued prefix such as "(" comes first)


class Widths:
    """Text widths in points, memoised per document: words repeat, and stringWidth is the hot spot."""

    def __init__(self):
        self._known: dict[tuple[str, str, float], float] = {}

    def __call__(self, text: str, font: str, size: float) -> float:
        key = (text, font, size)
        width = self._known.get(key)
        if width is None:
            width = self._known[key] = stringWidth(text, font, size)
        return width


def sentence_atoms(sentences: list[Sentence], font: str, size: float, widths: Widths) -> list[Atom]:
    """Words as atoms; a fact's value (with punctuation glued to it) is one atom that never breaks."""
    atoms: list[Atom] = []
    for s in sentences:
        words = s.before.split()
        if s.fact is not None:
            prefix = words.pop() if s.before and not s.before[-1].isspace() and words else ""
            tail, _, rest = s.after.partition(" ") if s.after and not s.after[0].isspace() else ("", "", s.after)
            text = prefix + s.fact.text + tail
            atoms += [Atom(w, widths(w, font, size)) for w in words]
            atoms.append(Atom(text, widths(text, font, size), s.fact, len(prefix)))
            words = rest.split()
        atoms += [Atom(w, widths(w, font, size)) for w in words]
    return atoms


def break_lines(atoms: list[Atom], width: float, space: float) -> list[list[Atom]]:
    lines: list[list[Atom]] = []
    line: list[Atom] = []
    used = 0.0
    for atom in atoms:
        if line and used + space + atom.width > width:
            lines.append(line)
            line, used = [], 0.0
        used += (space if line else 0.0) + atom.width
        line.append(atom)
    return lines + [line] if line else lines


class PageWriter:
    """Draws top-down on one page; ``placed`` lists (fact, source, box) for every fact drawn."""

    def __init__(self, canvas: Canvas, style: Style, widths: Widths):
        self.c, self.s, self.widths = canvas, style, widths
        self.width, self.height = style.page_size
        self.left, self.right = style.margin_x, self.width - style.margin_x
        self.y = self.height - style.margin_top
        self.bottom = style.margin_bottom
        self.placed: list[tuple[FactDraft, str, Box]] = []

    @property
    def room(self) -> float:
        return self.y - self.bottom

    # --- text ----------------------------------------------------------------------------------------

    def text_lines(self, sentences, *, font=None, size=None, width=None) -> list[list[Atom]]:
        font, size = font or self.s.body_font, size or self.s.body_size
        atoms = sentence_atoms(sentences, font, size, self.widths)
        return break_lines(atoms, width or (self.right - self.left), self.widths(" ", font, size))

    def draw_lines(self, lines, x: float, *, font=None, size=None, leading=None, source="text") -> None:
        """Lines from ``self.y`` down; the cursor ends below the last line."""
        font, size = font or self.s.body_font, size or self.s.body_size
        leading = leading or size * 1.35
        space = self.widths(" ", font, size)
        self.c.setFont(font, size)
        for line in lines:
            self.y -= leading
            self.c.drawString(x, self.y, " ".join(a.text for a in line))
            offset = x
            for atom in line:
                if atom.fact is not None:
                    x0 = offset + self.widths(atom.text[:atom.start], font, size)
                    x1 = x0 + self.widths(atom.fact.text, font, size)
                    self.placed.append((atom.fact, source, (x0, self.y - 0.25 * size, x1, self.y + 0.8 * size)))
                offset += atom.width + space

    def heading(self, block: Heading, *, x: float | None = None, width: float | None = None) -> float:
        """Draws the heading (it always fits a fresh page) and returns its height."""
        size = self.s.head_sizes[block.level]
        lines = self.text_lines([Sentence(block.text)], font=self.s.head_font, size=size,
                                width=width or (self.right - self.left))
        top = self.y
        self.y -= size * 0.3
        self.c.setFillColor(HexColor(self.s.accent) if block.level < 2 else BLACK)
        self.draw_lines(lines, x or self.left, font=self.s.head_font, size=size, leading=size * 1.25)
        self.c.setFillColor(BLACK)
        self.y -= size * 0.6
        return top - self.y

    # --- paragraphs ----------------------------------------------------------------------------------

    def paragraph_height(self, block: Paragraph, width: float) -> float:
        return sum(self._item_height(item, width, block) for item in self._items(block)) + self._extra(block)

    def fit_paragraph(self, block: Paragraph, width: float) -> Paragraph | None:
        """The longest prefix of the paragraph's sentences that fits the room left, or None."""
        for count in range(len(block.sentences) - 1, 0, -1):
            part = Paragraph(block.sentences[:count], block.style, block.title)
            if self.paragraph_height(part, width) <= self.room:
                return part
        return None

    def paragraph(self, block: Paragraph, *, x: float | None = None, width: float | None = None) -> None:
        x, width = x or self.left, width or (self.right - self.left)
        top, lead = self.y, self.s.leading
        if block.title:
            self.y -= 2 if block.style != "warning" else 6
            color = HexColor("#b71c1c") if block.style == "warning" else BLACK
            self.c.setFillColor(color)
            self.draw_lines([[Atom(block.title, 0)]], x + self._pad(block), font=self.s.head_font)
            self.c.setFillColor(BLACK)
        for number, item in enumerate(self._items(block), 1):
            marker = {"bullets": "\u2022", "steps": f"{number}."}.get(block.style)
            indent = self._indent(block)
            if marker:
                self.c.setFont(self.s.body_font, self.s.body_size)
                self.c.drawString(x + self._pad(block), self.y - lead, marker)
            lines = self.text_lines(item, width=width - indent - 2 * self._pad(block))
            self.draw_lines(lines, x + indent + self._pad(block))
            self.y -= self._gap(block)
        if block.style == "warning":
            self.y -= 4
            self.c.setStrokeColor(HexColor("#b71c1c"))
            self.c.setLineWidth(1.2)
            self.c.rect(x, self.y, width, top - self.y - 2, stroke=1, fill=0)
            self.c.setStrokeColor(BLACK)
        self.y -= lead * 0.5

    def _items(self, block: Paragraph) -> list[list[Sentence]]:
        return [block.sentences] if block.style in ("body", "warning") else [[s] for s in block.sentences]

    def _item_height(self, item: list[Sentence], width: float, block: Paragraph) -> float:
        lines = self.text_lines(item, width=width - self._indent(block) - 2 * self._pad(block))
        return len(lines) * self.s.leading + self._gap(block)

    def _extra(self, block: Paragraph) -> float:
        """Height around the items: title line, box padding and the gap after the paragraph."""
        warning = block.style == "warning"
        title = self.s.leading + (6 if warning else 2) if block.title else 0.0
        return title + (4 if warning else 0) + self.s.leading * 0.5

    def _indent(self, block: Paragraph) -> float:
        return {"bullets": self.s.body_size * 1.2, "steps": self.s.body_size * 1.8}.get(block.style, 0.0)

    def _pad(self, block: Paragraph) -> float:
        return 8.0 if block.style == "warning" else 0.0

    def _gap(self, block: Paragraph) -> float:
        return self.s.leading * 0.25 if block.style in ("bullets", "steps") else 0.0

    # --- tables --------------------------------------------------------------------------------------

    def table_layout(self, block: Table, width: float) -> tuple[float, list[float], float, list]:
        """Font size, column widths, total height and wrapped header cells; shrinks the font to fit."""
        size = self.s.table_size
        while True:
            natural = self._column_widths(block, size)
            if sum(natural) <= width or size <= 6.5:
                break
            size -= 0.5
        spare = max(0.0, width - sum(natural)) / len(natural)
        widths = [w + spare for w in natural]
        header = [self.text_lines([Sentence(h)], font=self.s.head_font, size=size, width=w - size)
                  for h, w in zip(block.header, widths)]
        caption = len(self.text_lines([block.caption], font=self.s.italic_font, size=size, width=width))
        height = self._head_height(header, size) + size * 1.7 * len(block.rows) + caption * size * 1.35 + 16
        return size, widths, height, header

    def _column_widths(self, block: Table, size: float) -> list[float]:
        """Each column as wide as its widest cell or longest header word, plus padding."""
        widths = []
        for index, column in enumerate(zip(*block.rows)):
            font = self.s.head_font if index == 0 else self.s.body_font
            cells = max(self.widths(text, font, size) for text, _ in column)
            word = max(self.widths(w, self.s.head_font, size) for w in block.header[index].split())
            widths.append(max(cells, word) + size)
        return widths

    def _head_height(self, header: list, size: float) -> float:
        return max(len(lines) for lines in header) * size * 1.2 + size * 0.6

    def table(self, block: Table, layout, *, x: float | None = None) -> None:
        size, widths, _, header = layout
        x = x or self.left
        pad, row_h, total = size * 0.5, size * 1.7, sum(widths)
        head_h = self._head_height(header, size)
        self.y -= 4
        self.c.setFillColor(HexColor(self.s.accent))
        self.c.rect(x, self.y - head_h, total, head_h, stroke=0, fill=1)
        self.c.setFillColor(HexColor("#ffffff"))
        top, col_x = self.y - size * 0.1, x
        for lines, w in zip(header, widths):
            self.y = top
            self.draw_lines(lines, col_x + pad, font=self.s.head_font, size=size, leading=size * 1.2)
            col_x += w
        self.c.setFillColor(BLACK)
        self.y = top + size * 0.1 - head_h
        self.c.setStrokeColor(RULE)
        self.c.setLineWidth(0.5)
        for row in block.rows:
            self._table_row(row, x, widths, size, row_h)
            self.c.line(x, self.y, x + total, self.y)
        self.c.setStrokeColor(BLACK)
        self.caption(block.caption, size, x=x, width=total)

    def _table_row(self, row, x: float, widths: list[float], size: float, row_h: float) -> None:
        top = self.y
        self.y -= row_h
        baseline = self.y + size * 0.55
        col_x = x
        for col, ((text, fact), w) in enumerate(zip(row, widths)):
            self.c.setFont(self.s.head_font if col == 0 else self.s.body_font, size)
            self.c.drawString(col_x + size * 0.5, baseline, text)
            if fact is not None:
                self.placed.append((fact, "table", (col_x, self.y, col_x + w, top)))
            col_x += w

    def caption(self, sentence: Sentence, size: float | None = None, *, x=None, width=None) -> None:
        size = size or self.s.table_size
        self.y -= 2
        lines = self.text_lines([sentence], font=self.s.italic_font, size=size, width=width)
        self.c.setFillColor(GREY)
        self.draw_lines(lines, x or self.left, font=self.s.italic_font, size=size, source="layout")
        self.c.setFillColor(BLACK)
        self.y -= 10

    # --- charts --------------------------------------------------------------------------------------

    def chart_height(self, block: Chart, width: float) -> float:
        caption = self.text_lines([block.caption], font=self.s.italic_font, size=self.s.table_size, width=width)
        return width * 0.48 + len(caption) * self.s.table_size * 1.35 + 18

    def chart(self, block: Chart, width: float, *, x: float | None = None) -> None:
        x = x or self.left
        height = width * 0.48
        png = chart_png(block.style, block.labels, [f.value for f in block.facts], [f.cell for f in block.facts],
                        title=block.title, width_in=width / 72, height_in=height / 72, color=self.s.accent)
        top = self.y - 6
        self.c.drawImage(ImageReader(io.BytesIO(png)), x, top - height, width, height)
        self.y = top - height
        for fact in block.facts:
            self.placed.append((fact, "figure", (x, self.y, x + width, top)))
        self.caption(block.caption, x=x, width=width)
