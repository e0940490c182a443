"""The procedural document model: kinds, topics, entities, sections, and the blocks pages are made of.

``plan_document`` decides, from one seeded RNG, everything above the page: the kind, the organisation, its
entities (business units, product models, workstreams), the reporting periods, and the numbered sections
with exact page ranges (every section starts on a new page, so a page belongs to exactly one section).
What goes on each page is written later, block by block, by ``compose.Composer`` while the pages are laid
out, so a block is only written when the page it lands on is known.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mmprolong.corpus import vocab
from mmprolong.corpus.facts import FactDraft, FactPool

KINDS = ("report", "manual", "slides")


# --- blocks: what a page is made of -------------------------------------------------------------------


@dataclass(slots=True)
class Sentence:
    """Text around at most one fact; the fact prints as ``fact.text`` between ``before`` and ``after``."""

    before: str
    fact: FactDraft | None = None
    after: str = ""


@dataclass(slots=True)
class Heading:
    text: str
    level: int


@dataclass(slots=True)
class Paragraph:
    sentences: list[Sentence]
    style: str = "body"  # body | bullets | steps | warning
    title: str = ""  # procedure or warning label printed above the text


@dataclass(slots=True)
class Table:
    header: list[str]
    rows: list[list[tuple[str, FactDraft | None]]]  # first cell is the row label
    caption: Sentence  # may hold a layout fact (the data source)


@dataclass(slots=True)
class Chart:
    style: str  # bar | line
    title: str
    labels: list[str]
    facts: list[FactDraft]  # one per bar or point, shown only in the image
    caption: Sentence


Block = Heading | Paragraph | Table | Chart


# --- the plan: everything above the page --------------------------------------------------------------


@dataclass(slots=True)
class SectionPlan:
    title: str  # as printed, with its number: "3.2 Profitability"
    level: int
    start_page: int
    end_page: int
    chapter: str = ""  # the chapter's unnumbered name, which selects its metrics and blocks
    metrics: tuple[str, ...] = ()
    focus: str | None = None  # the entity a subsection is about (a business unit, a model)


@dataclass(slots=True)
class DocumentPlan:
    kind: str
    title: str
    organisation: str
    num_pages: int
    topic: dict
    front: list[str]  # "cover", "contents" pages before the chapters
    sections: list[SectionPlan] = field(default_factory=list)  # all levels, in page order

    def sections_at(self, page: int) -> list[SectionPlan]:
        """The sections holding a page, outermost first."""
        return [s for s in self.sections if s.start_page <= page <= s.end_page]


def plan_document(rng: random.Random, kind: str, num_pages: int) -> tuple[DocumentPlan, FactPool]:
    topic = _topic(rng, kind, num_pages)
    plan = DocumentPlan(kind, topic["title"], topic["org"], num_pages, topic, _front_pages(num_pages, kind))
    for index, name in enumerate(plan.front):
        title = "Agenda" if (kind, name) == ("slides", "contents") else name.capitalize()
        plan.sections.append(SectionPlan(title, 1, index, index, chapter=name))
    chapters = _pick_chapters(rng, kind, num_pages - len(plan.front))
    sizes = _split(rng, num_pages - len(plan.front), len(chapters))
    start = len(plan.front)
    for number, ((name, metrics, subtitles), size) in enumerate(zip(chapters, sizes), 1):
        chapter = SectionPlan(f"{number} {name}", 1, start, start + size - 1, name, metrics or ())
        plan.sections.append(chapter)
        plan.sections += _subsections(rng, chapter, number, subtitles, topic, kind)
        start += size
    pool = FactPool(rng, kind, topic["entities"], topic["periods"], topic)
    return plan, pool


def _front_pages(num_pages: int, kind: str) -> list[str]:
    """Cover and contents (agenda for slides) when the document is long enough to carry them."""
    if num_pages >= 6:
        return ["cover", "contents"]
    return ["cover"] if num_pages >= 2 else []


def _topic(rng: random.Random, kind: str, num_pages: int) -> dict:
    name = rng.choice(vocab.ORG_NAMES)
    industry = rng.choice(sorted(vocab.INDUSTRIES))
    year = rng.randint(2019, 2025)
    words = vocab.INDUSTRIES[industry]
    maker = rng.choice(vocab.MANUAL_MAKERS)  # manuals come from engineering firms, not from the industry
    org = f"{name} {maker if kind == 'manual' else industry}"
    topic = dict(org=org, short=name, industry=industry, year=year, code_prefix=name[:3].upper(),
                 lines=words["lines"], customers=words["customers"], assets=words["assets"],
                 color=rng.choice(("#1f4e79", "#2e7d32", "#8e24aa", "#c62828", "#00838f", "#ef6c00")))
    if kind == "report":
        units = rng.sample([f"{name} {place}" for place in vocab.PLACES], _clamp(num_pages // 8, 6, 20))
        topic.update(entities={"unit": units}, periods=[str(y) for y in range(year - 3, year + 1)],
                     title=f"{topic['org']} Annual Report {year}", period_word="in")
    elif kind == "manual":
        topic.update(_manual_topic(rng, name, num_pages), periods=["50 Hz", "60 Hz"], period_word="at")
        topic["title"] = f"{topic['series']} Series {topic['family'].title()}s: Operation and Maintenance Manual"
    else:
        last = year * 4 + rng.randint(0, 3)  # the last of four consecutive quarters
        periods = [f"Q{q % 4 + 1} {q // 4}" for q in range(last - 3, last + 1)]
        streams = rng.sample(vocab.SLIDE_WORKSTREAMS, _clamp(num_pages // 10, 5, 18))
        programme = rng.choice(vocab.SLIDE_PROGRAMMES)
        topic.update(entities={"unit": streams}, periods=periods, programme=programme, period_word="in",
                     title=f"{programme} Programme: Steering Committee Review {periods[-1]}")
    return topic


def _manual_topic(rng: random.Random, name: str, num_pages: int) -> dict:
    family, short = rng.choice(vocab.MANUAL_FAMILIES)
    series = rng.choice(vocab.SERIES)
    letter = series[0]
    sizes = sorted(rng.sample(range(10, 100), _clamp(num_pages // 4, 6, 40)))
    models = [f"{letter}{name[0]}-{size * 10} {short}" for size in sizes]
    components = rng.sample(vocab.MANUAL_COMPONENTS, _clamp(num_pages // 8, 8, len(vocab.MANUAL_COMPONENTS)))
    codes = sorted(rng.sample(range(1, 60), _clamp(num_pages // 6, 8, 40)))
    faults = [f"fault code {letter}{code:02d}" for code in codes]
    return dict(family=family, series=series, entities={"model": models, "component": components, "fault": faults})


def _pick_chapters(rng: random.Random, kind: str, content_pages: int) -> list[tuple]:
    """Chapters in reading order; the one that walks through entities is always kept when there is room."""
    chapters = {"report": vocab.REPORT_CHAPTERS, "manual": vocab.MANUAL_CHAPTERS,
                "slides": vocab.SLIDE_CHAPTERS}[kind]
    per_chapter = {"report": 7, "manual": 7, "slides": 5}[kind]
    count = _clamp(content_pages // per_chapter, 1, len(chapters))
    keep = [i for i, c in enumerate(chapters) if c[1] is None] + [0]
    rest = [i for i in range(len(chapters)) if i not in keep]
    chosen = keep[:count] + rng.sample(rest, count - len(keep[:count]))  # the walk, the opening chapter
    return [chapters[i] for i in sorted(chosen)]


def _subsections(rng: random.Random, chapter: SectionPlan, number: int, subtitles: tuple, topic: dict,
                 kind: str) -> list[SectionPlan]:
    """Level-2 sections over a chapter's pages: named ones, or one per entity for the walk-through chapter."""
    pages = chapter.end_page - chapter.start_page + 1
    walk = chapter.metrics == ()
    names = topic["entities"]["model" if kind == "manual" else "unit"] if walk else list(subtitles)
    if kind == "slides" or pages < 2 or not names:
        return []
    count = min(len(names), max(1, round(pages / rng.uniform(1.5, 3.5))))
    if walk:
        names = rng.sample(names, count)
    sizes, start, subs = _split(rng, pages, count), chapter.start_page, []
    for index, (name, size) in enumerate(zip(names, sizes), 1):
        title = f"{number}.{index} {name[0].upper() + name[1:]}"
        subs.append(SectionPlan(title, 2, start, start + size - 1, chapter.chapter, chapter.metrics,
                                focus=name if walk else None))
        start += size
    return subs


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` positive sizes in random proportions."""
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, total]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
