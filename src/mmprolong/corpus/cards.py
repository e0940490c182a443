"""Large-print documents: decks of fact cards that a small model can read at a small pixel budget.

At the quickstart's budget (128 vision tokens a page) a letter page renders at 266 x 375 px and its body text
is 4 px high: nothing reads that. A card is 336 x 280 pt; ingest renders it at 72 dpi (1 pt = 1 px, inside
the budget), so it is exactly 12 x 10 vision tokens of the quickstart model's family (Qwen2.5-VL's
``token_px`` a side) and is never resized. Text is set on that grid in Courier-Bold: an advance of half a
token puts exactly two characters in each token column, and each line sits in one token row, so no glyph is cut
by a token boundary. (Qwen3-VL's 32-px tokens resize a card to 10 x 9 tokens: still large print.) Tesseract
reads these pages back (``benchmarks/legibility.py``); so can a model of a few million parameters.

A deck is a cover card, a contents card, then one card per (entity, period) of each chapter: the entity in
a band at the top, the chapter's title, the period, and up to three label/value pairs. The facts, the
sections and the vocabulary are the standard corpus' (``content.plan_document``, ``facts.FactPool``), so
synth's truth generator and the evaluation suites work on cards unchanged.

Some documents are archive registers: pale note cards, each stating the secret code of one archive. They are
the needle pages of the niah suite (``note_lines``, drawn the same way), so the needle task is part of the
document world a model learns to read; niah never takes a register as haystack (its note would compete with
the needle). With ``register_gap`` > 0 each note is followed by a few white catalogue cards, so a note also stands
out among other cards, as the needle does in its haystack.

Some are type specimens: cards of random lines (names, places, figures, codes, labels in the corpus' formats), as
printers and synthetic-document OCR corpora (SynthDoG) use them. A transcript of a specimen cannot be guessed from
the layout or the wording around it, so transcribing one teaches a model to look: on fact cards most of the text
is predictable, and a model starting from random weights first learns to ignore the image (its vision tokens
collapse to one vector) before it learns to read.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from reportlab.lib.colors import HexColor
from reportlab.pdfgen.canvas import Canvas

from mmprolong.corpus import vocab
from mmprolong.corpus.compose import Composer
from mmprolong.corpus.content import DocumentPlan, SectionPlan
from mmprolong.corpus.facts import FactDraft, FactPool, Metric
from mmprolong.corpus.truth import Fact, SectionTruth
from mmprolong.models import DEFAULT_FAMILY

COLUMNS, ROWS = 24, 10  # the card grid: two characters per token column, one line per token row
CELL_PT = DEFAULT_FAMILY.token_px / 2  # advance of one character (pt = px at 72 dpi); a row is two cells high
CARD_SIZE = (COLUMNS * CELL_PT, ROWS * 2 * CELL_PT)  # 336 x 280 pt = 12 x 10 tokens at 72 dpi
FONT = "Courier-Bold"
FONT_SIZE = CELL_PT / 0.6  # Courier's advance is 0.6 em
BASELINE = 0.72  # of a row's height below its top: caps and descenders stay inside the row
MARGIN = 1  # columns left blank on each side
TEXT_COLUMNS = COLUMNS - 2 * MARGIN
INDENT = 2  # values are indented under their label
MAX_FACTS = 3
INK, PAPER = "#000000", "#ffffff"
BAND_TINT = 0.3  # share of the accent colour in the band behind a card's title
NOTE_PAPER, NOTE_ACCENT = "#fffae1", "#c79100"  # pale notes with an amber band, unlike the white cards
NOTE_ATTRIBUTE = "secret code"
CATALOGUE_ACCENT = "#1f4e79"  # a register's catalogue cards: white, like a deck's
REGISTER_SHARE = 0.15  # of large-print documents: archive registers
SPECIMEN_SHARE = 0.15  # of large-print documents: type specimens


@dataclass(frozen=True, slots=True)
class Line:
    """One row of a card: ``text`` from column ``MARGIN + indent``; ``fact`` when the text is a fact's value."""

    text: str
    indent: int = 0
    band: bool = False  # on a light tint of the accent colour (the card's title band)
    fact: FactDraft | None = None


def wrap(text: str, width: int = TEXT_COLUMNS) -> list[str]:
    """Greedy word wrap to ``width`` characters; a word longer than a line is cut (titles only)."""
    lines, line = [], ""
    for word in text.split():
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line] if line else lines


def tint(accent: str, strength: float = BAND_TINT):
    """``accent`` mixed into white: a band light enough that dark ink on it stays legible (tesseract loses
    white text on a saturated band)."""
    red, green, blue = (int(accent[i:i + 2], 16) for i in (1, 3, 5))
    return HexColor("#" + "".join(f"{round(255 - (255 - c) * strength):02x}" for c in (red, green, blue)))


def draw_card(canvas: Canvas, lines: list[Line], *, size: tuple[float, float], accent: str, paper: str = PAPER,
              columns: int = COLUMNS) -> list[tuple[FactDraft, tuple[float, float, float, float]]]:
    """Draw ``lines`` top-down on a grid of ``columns`` characters across ``size`` (points); returns each
    value fact with its box (points, bottom-left origin). The caller shows the page."""
    width, height = size
    cell = width / columns
    row = 2 * cell
    font_size = cell / 0.6
    canvas.setFillColor(HexColor(paper))
    canvas.rect(0, 0, width, height, stroke=0, fill=1)
    band = sum(1 for line in lines if line.band)
    if band:
        canvas.setFillColor(tint(accent))
        canvas.rect(0, height - band * row, width, band * row, stroke=0, fill=1)
    canvas.setFont(FONT, font_size)
    placed = []
    for index, line in enumerate(lines):
        x, top = (MARGIN + line.indent) * cell, height - index * row
        canvas.setFillColor(HexColor(INK))
        canvas.drawString(x, top - BASELINE * row, line.text)
        if line.fact is not None:
            placed.append((line.fact, (x, top - row, x + len(line.text) * cell, top)))
    return placed


def note_lines(archive: str, code: str, fact: FactDraft | None = None, indent: int = INDENT) -> list[Line]:
    """A note card: the archive in the band, then its secret code (``fact``, when the code is a truth fact)
    ``indent`` columns in (benchmarks/needle_shift.py moves it)."""
    return [Line(archive, band=True), Line(NOTE_ATTRIBUTE.capitalize()), Line(code, indent, fact=fact)]


def archive_names(count: int) -> list[str]:
    """``count`` distinct archive names: "Orion archive", then "Orion 2 archive" once the 88 are used."""
    names = [f"{s} archive" for s in vocab.ARCHIVES]
    rounds = 2
    while len(names) < count:
        names += [f"{s} {rounds} archive" for s in vocab.ARCHIVES]
        rounds += 1
    return names


def render_register_pdf(title: str, organisation: str, num_pages: int, rng: random.Random,
                        gap: int = 0) -> tuple[bytes, list[Fact]]:
    """An archive register: a cover card, then one note card per archive (a random 6-digit code each), each note
    followed by 1 to ``gap`` white catalogue cards (random lines, as on a type specimen) when ``gap`` > 0.

    Without catalogue cards a page of a register looks like every other page, so a question about one archive can
    only be answered by its name; with them, a note also stands out among white cards as the needle does."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=CARD_SIZE, invariant=1, pageCompression=1)
    canvas.setTitle(title)
    canvas.setAuthor(organisation)
    archives = rng.sample(archive_names(num_pages), num_pages - 1)
    facts: list[Fact] = []
    catalogue = 0  # catalogue cards still to draw before the next note
    for page in range(num_pages):
        if page == 0:
            lines = [Line(t, band=True) for t in wrap(title)[:4]] + [Line(t) for t in wrap(organisation)[:2]]
            draw_card(canvas, lines, size=CARD_SIZE, accent=NOTE_ACCENT, paper=NOTE_PAPER)
        elif catalogue > 0:
            catalogue -= 1
            draw_card(canvas, specimen_card(rng), size=CARD_SIZE, accent=CATALOGUE_ACCENT)
        else:
            catalogue = rng.randint(1, gap) if gap else 0
            archive = archives[page - 1]
            code = str(rng.randint(100_000, 999_999))
            metric = Metric(NOTE_ATTRIBUTE, "code")
            draft = FactDraft(archive, NOTE_ATTRIBUTE, metric, "", code, code, code)
            placed = draw_card(canvas, note_lines(archive, code, draft), size=CARD_SIZE, accent=NOTE_ACCENT,
                               paper=NOTE_PAPER)
            facts += [_truth_fact(draft, box, page, "Register", len(facts)) for draft, box in placed]
        canvas.showPage()
    canvas.save()
    return buffer.getvalue(), facts


def register_sections(num_pages: int) -> tuple[SectionTruth, ...]:
    cover = (SectionTruth(title="Cover", level=1, start_page=0, end_page=0),)
    return cover + ((SectionTruth(title="Register", level=1, start_page=1, end_page=num_pages - 1),)
                    if num_pages > 1 else ())


def specimen_line(rng: random.Random, width: int = TEXT_COLUMNS) -> str:
    """One line of a type specimen: random items of the corpus' vocabulary and number formats, up to ``width``."""
    def item() -> str:
        kind = rng.randrange(9)
        if kind == 0:
            return f"{rng.randint(0, 99_999):,}"
        if kind == 1:
            return f"{rng.uniform(0, 999):.{rng.randint(1, 2)}f}"
        if kind == 2:
            return f"{rng.randint(0, 100)}%"
        if kind == 3:
            return f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.SURNAMES)}"
        if kind == 4:
            return rng.choice(vocab.CITIES + vocab.PLACES + vocab.ORG_NAMES + vocab.SERIES)
        if kind == 5:
            return f"{rng.choice(vocab.ORG_NAMES)[:3].upper()}-{rng.randint(1000, 9999)}"
        if kind == 6:
            return f"{rng.choice(vocab.MONTHS)} {rng.randint(2015, 2026)}"
        if kind == 7:
            return rng.choice(vocab.ARCHIVES)
        return rng.choice([w for w in rng.choice(vocab.SLIDE_FILLER).split() if "{" not in w] or ["data"])

    line = item()
    while rng.random() < 0.7:
        more = f"{line} {item()}"
        if len(more) > width:
            break
        line = more
    return line[:width]


def specimen_card(rng: random.Random) -> list[Line]:
    """A card of random lines, one in the band (a type specimen's page; a register's catalogue card)."""
    return [Line(specimen_line(rng), band=True)] + [Line(specimen_line(rng)) for _ in range(ROWS - 1)]


def render_specimen_pdf(title: str, organisation: str, num_pages: int, rng: random.Random) -> bytes:
    """A type specimen: every card full of random lines (no facts: it is material for transcription)."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=CARD_SIZE, invariant=1, pageCompression=1)
    canvas.setTitle(title)
    canvas.setAuthor(organisation)
    accent = rng.choice(("#1f4e79", "#2e7d32", "#8e24aa", "#c62828", "#00838f", "#ef6c00"))
    for _ in range(num_pages):
        draw_card(canvas, specimen_card(rng), size=CARD_SIZE, accent=accent)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# --- a deck --------------------------------------------------------------------------------------------


def card_sections(plan: DocumentPlan) -> list[SectionPlan]:
    """The plan's level-1 sections: a card deck has no subsections (one card is too small to carry them)."""
    return [s for s in plan.sections if s.level == 1]


def render_cards_pdf(plan: DocumentPlan, pool: FactPool, rng: random.Random) -> tuple[bytes, list[Fact]]:
    """The deck's PDF bytes (one card per planned page) and every fact drawn, as truth facts."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=CARD_SIZE, invariant=1, pageCompression=1)
    canvas.setTitle(plan.title)
    canvas.setAuthor(plan.organisation)
    deck = _Deck(plan, pool, rng)
    facts: list[Fact] = []
    for page in range(plan.num_pages):
        section = next(s for s in card_sections(plan) if s.start_page <= page <= s.end_page)
        lines = deck.lines(section)
        placed = draw_card(canvas, lines, size=CARD_SIZE, accent=plan.topic["color"])
        facts += [_truth_fact(fact, box, page, section.title, len(facts) + i) for i, (fact, box) in enumerate(placed)]
        canvas.showPage()
    canvas.save()
    return buffer.getvalue(), facts


def _truth_fact(fact: FactDraft, box, page: int, section: str, number: int) -> Fact:
    width, height = CARD_SIZE
    x0, y0, x1, y1 = box
    bbox = (x0 / width, 1 - y1 / height, x1 / width, 1 - y0 / height)
    return Fact(fact_id=f"f{number:05d}", entity=fact.entity, attribute=fact.attribute, value=fact.value,
                value_type=fact.value_type, unit=fact.metric.unit, page=page, source="table", section=section,
                bbox=tuple(round(min(1.0, max(0.0, v)), 5) for v in bbox), rendered=fact.cell)


class _Deck:
    """Writes the cards of a deck in page order; entities are visited in turn so each gets its share."""

    def __init__(self, plan: DocumentPlan, pool: FactPool, rng: random.Random):
        self.plan, self.pool, self.rng = plan, pool, rng
        self.turn = 0

    def lines(self, section: SectionPlan) -> list[Line]:
        if section.chapter == "cover":
            return self._cover()
        if section.chapter == "contents":
            return self._contents()
        return self._card(section)

    def _cover(self) -> list[Line]:
        plan = self.plan
        lines = [Line(t, band=True) for t in wrap(plan.title)[:4]]
        lines += [Line(t) for t in wrap(plan.organisation)[:2]]
        for sentence in Composer(self.rng, plan, self.pool).cover_lines():
            value = sentence.fact
            if len(lines) + 2 > ROWS or len(value.cell) > TEXT_COLUMNS - INDENT:
                continue  # an undrawn layout fact never enters the truth
            lines += [Line(sentence.before.strip().rstrip(":")), Line(value.cell, INDENT, fact=value)]
        return lines

    def _contents(self) -> list[Line]:
        lines = [Line("Contents", band=True)]
        for s in card_sections(self.plan):
            if s.chapter in ("cover", "contents") or len(lines) == ROWS:
                continue
            number = str(s.start_page + 1)
            title = wrap(s.title, TEXT_COLUMNS - len(number) - 1)[0]
            lines.append(Line(title.ljust(TEXT_COLUMNS - len(number)) + number))
        return lines

    def _card(self, section: SectionPlan) -> list[Line]:
        """An entity's card in this chapter: its band, the chapter, the period, and up to three facts."""
        pool, rng = self.pool, self.rng
        metrics = self._metrics(section)
        classes = sorted({m.applies_to for m in metrics})
        for _ in range(len(classes) * 4 + 4):
            entity_class = rng.choice(classes)
            entities = pool.entities[entity_class]
            entity = entities[self.turn % len(entities)]
            self.turn += 1
            mine = [m for m in metrics if m.applies_to == entity_class]
            facts = self._facts(entity, mine)
            if facts:
                return self._layout(entity, section, facts)
        return [Line(t, band=True) for t in wrap(section.title)[:2]]  # nothing left to state: a divider card

    def _metrics(self, section: SectionPlan) -> list[Metric]:
        names = section.metrics or [n for n, m in self.pool.metrics.items() if m.applies_to in ("unit", "model")]
        return [self.pool.metrics[n] for n in names if self.pool.metrics[n].applies_to in self.pool.entities]

    def _facts(self, entity: str, metrics: list[Metric]) -> list[FactDraft]:
        """Up to three free facts of one entity: all in one period when the card has a periodic metric."""
        pool, rng = self.pool, self.rng
        periodic = [m for m in metrics if m.periodic and pool.free_periods(entity, m)]
        period = rng.choice(pool.free_periods(entity, rng.choice(periodic))) if periodic else ""
        chosen = [m for m in rng.sample(metrics, len(metrics))
                  if pool.is_free(entity, m, period if m.periodic else "")
                  and (not m.periodic or period) and _fits(m)][:MAX_FACTS]
        return [pool.take(entity, m, period if m.periodic else "") for m in chosen]

    def _layout(self, entity: str, section: SectionPlan, facts: list[FactDraft]) -> list[Line]:
        lines = [Line(t, band=True) for t in wrap(entity[:1].upper() + entity[1:])[:2]]
        lines += [Line(t) for t in wrap(section.title)[:2]]
        period = next((f.period for f in facts if f.period), "")
        if period:
            lines.append(Line(f"Figures {self.plan.topic['period_word']} {period}"))
        for fact in facts:
            label = wrap(fact.metric.header)
            if len(lines) + len(label) + 1 > ROWS or len(fact.cell) > TEXT_COLUMNS - INDENT:
                self.pool.used.discard((fact.entity, fact.attribute))  # not drawn: free for a later card
                continue
            lines += [Line(t) for t in label] + [Line(fact.cell, INDENT, fact=fact)]
        return lines


def _fits(metric: Metric) -> bool:
    """Lists print as long comma-separated runs: they do not fit a card's value row."""
    return metric.kind != "list"


def deck_truth_sections(plan: DocumentPlan) -> tuple[SectionTruth, ...]:
    return tuple(SectionTruth(title=s.title, level=s.level, start_page=s.start_page, end_page=s.end_page)
                 for s in card_sections(plan))
