"""The procedural document model: what each page says, before any layout.

A document is a kind (report, manual, slides), an organisation, a set of entities and attributes, and a
list of pages, each a list of blocks (heading, paragraph, table, chart, bullets). Facts (entity,
attribute, value) are drawn from a pool where every (entity, attribute) pair is used at most once, so a
question about a fact has one answer in the whole document. Everything is drawn from one seeded RNG.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ORG_FIRST = ("Northwind", "Bluefin", "Aster", "Calder", "Dunmore", "Elbridge", "Fairhaven", "Greystone",
             "Halvorsen", "Ironwood", "Juniper", "Kestrel", "Larkspur", "Meridian", "Norcross", "Oakridge",
             "Pinecrest", "Quillon", "Redfern", "Silverton", "Thornbury", "Upland", "Valemont", "Westbrook")
ORG_SECOND = ("Logistics", "Energy", "Health", "Foods", "Robotics", "Materials", "Telecom", "Water",
              "Aerospace", "Textiles", "Analytics", "Pharma", "Mobility", "Agritech")
REGIONS = ("North", "South", "East", "West", "Central", "Coastal", "Highland", "Lakeside", "Metro", "Valley",
           "Harbour", "Summit", "Prairie", "Delta", "Ridge", "Frontier")
GREEK = ("Alpha", "Beta", "Gamma", "Delta", "Orion", "Vega", "Lyra", "Atlas", "Nova", "Helix", "Polaris",
         "Zephyr", "Cobalt", "Falcon", "Granite", "Mistral")


@dataclass(frozen=True, slots=True)
class Metric:
    name: str  # e.g. "revenue"
    unit: str | None
    kind: str  # "integer" | "float" | "percent" | "money" | "code"
    low: float
    high: float


REPORT_METRICS = (Metric("revenue", "million USD", "money", 5, 900), Metric("headcount", None, "integer", 40, 9000),
                  Metric("operating margin", "%", "percent", 2, 35), Metric("customer satisfaction score", None,
                  "float", 5, 9.9), Metric("market share", "%", "percent", 1, 45),
                  Metric("number of new contracts", None, "integer", 3, 400))
MANUAL_METRICS = (Metric("maximum pressure", "bar", "float", 2, 400), Metric("weight", "kg", "float", 0.5, 900),
                  Metric("rated power", "W", "integer", 50, 20000), Metric("service interval", "hours", "integer",
                  100, 5000), Metric("maximum operating temperature", "°C", "integer", 40, 300),
                  Metric("part number", None, "code", 0, 0), Metric("noise level", "dB", "float", 30, 95))
SLIDES_METRICS = (Metric("budget", "thousand EUR", "money", 20, 5000), Metric("completion", "%", "percent", 5, 100),
                  Metric("team size", None, "integer", 2, 80), Metric("open issues", None, "integer", 0, 300),
                  Metric("user growth", "%", "percent", 1, 90))

KIND_SETUP = {
    "report": dict(metrics=REPORT_METRICS, periods=("2021", "2022", "2023", "2024"), entity_word="region",
                   title="Annual Performance Report", sections=(
                       "Executive Summary", "Market Overview", "Regional Performance", "Operations", "Workforce",
                       "Customer Experience", "Financial Statements", "Risk Management", "Sustainability",
                       "Outlook", "Appendix")),
    "manual": dict(metrics=MANUAL_METRICS, periods=("",), entity_word="model", title="Technical Manual",
                   sections=("Safety Instructions", "Product Overview", "Installation", "Specifications",
                             "Operation", "Maintenance", "Troubleshooting", "Spare Parts", "Warranty",
                             "Appendix")),
    "slides": dict(metrics=SLIDES_METRICS, periods=("Q1", "Q2", "Q3", "Q4"), entity_word="project",
                   title="Quarterly Programme Review", sections=(
                       "Agenda", "Highlights", "Project Status", "Budget", "Teams", "Risks", "Roadmap",
                       "Next Steps")),
}

FILLER = {
    "report": ("The board reviewed these figures at its quarterly meeting and approved the proposed measures.",
               "Demand remained uneven across markets, reflecting local conditions and pricing pressure.",
               "Management continues to invest in digital tools that shorten delivery times for customers.",
               "Compared with the previous period, costs were held broadly stable despite higher input prices.",
               "Several initiatives launched last year began to contribute to results during this period.",
               "The figures below are unaudited and may be revised in the consolidated statements.",
               "Staff turnover declined after the introduction of the new training and mentoring programme.",
               "Energy efficiency projects reduced consumption at the main sites and lowered emissions."),
    "manual": ("Read all instructions before operating the equipment and keep this manual for reference.",
               "Disconnect the power supply before opening the housing or replacing any component.",
               "Use only spare parts approved by the manufacturer; other parts may void the warranty.",
               "Check all connections for leaks after installation and again after the first hour of use.",
               "Operating the unit outside the specified range may cause damage or personal injury.",
               "Clean the filters regularly; a blocked filter reduces flow and increases wear.",
               "Record every service operation in the maintenance log supplied with the unit.",
               "If an alarm persists after a restart, contact an authorised service centre."),
    "slides": ("Key milestones were reached on schedule across most workstreams.",
               "Dependencies between teams remain the main source of delay.",
               "User feedback from the pilot informed the next release plan.",
               "Hiring is on track; onboarding will finish before the next review.",
               "Budget reallocations were approved by the steering committee.",
               "Risks are reviewed weekly and escalated when they affect the critical path."),
}
FACT_SENTENCES = ("The {attribute} of {entity} was {value}.",
                  "For {entity}, the {attribute} reached {value}.",
                  "{entity} reported {value} for the {attribute}.",
                  "According to internal data, the {attribute} for {entity} stood at {value}.",
                  "The {attribute} recorded for {entity} is {value}.")
# Combinatorial prose, so the text layer (and a tokenizer trained on it) has realistic variety.
SUBJECTS = ("The team", "Management", "The committee", "Our engineers", "The audit group", "Regional staff",
            "The programme office", "Field technicians", "The finance department", "Quality assurance")
VERBS = ("reviewed", "updated", "monitored", "documented", "evaluated", "streamlined", "expanded", "tested",
         "standardised", "prioritised")
OBJECTS = ("the supplier agreements", "the maintenance schedule", "the reporting procedures", "customer feedback",
           "the safety checklist", "the procurement process", "the training material", "the data platform",
           "warehouse capacity", "the escalation rules", "energy usage", "the release plan")
QUALIFIERS = ("during the period", "in line with the annual plan", "ahead of the next review",
              "following the recommendations of the external adviser", "with support from partner organisations",
              "to reduce delays", "after the pilot phase", "as requested by the board")


@dataclass(frozen=True, slots=True)
class FactDraft:
    entity: str
    attribute: str  # metric name with its period, e.g. "revenue in 2023"
    metric: Metric
    value: str | int | float
    rendered: str  # how the value is printed, e.g. "1,840" or "12.5 bar"


@dataclass
class Block:
    kind: str  # heading | paragraph | table | chart | bullets
    text: str = ""
    level: int = 1
    sentences: list[tuple[str, FactDraft | None]] = field(default_factory=list)  # paragraph / bullets
    header: list[str] = field(default_factory=list)  # table
    rows: list[list[tuple[str, FactDraft | None]]] = field(default_factory=list)  # table cells
    chart: list[FactDraft] = field(default_factory=list)  # chart bars
    caption: str = ""


@dataclass
class PagePlan:
    blocks: list[Block]
    section: str


@dataclass
class DocumentPlan:
    kind: str
    title: str
    organisation: str
    pages: list[PagePlan]
    sections: list[tuple[str, int, int, int]]  # title, level, start_page, end_page


def render_value(metric: Metric, value) -> str:
    if metric.kind == "code":
        return str(value)
    number = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    if metric.unit == "%":
        return f"{number}%"
    if metric.kind == "money":
        return f"{number} {metric.unit}"
    return f"{number} {metric.unit}" if metric.unit else number


def draw_value(metric: Metric, rng: random.Random):
    if metric.kind == "code":
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        return f"{rng.choice(letters)}{rng.choice(letters)}-{rng.randint(1000, 9999)}"
    if metric.kind == "integer":
        return rng.randint(int(metric.low), int(metric.high))
    return round(rng.uniform(metric.low, metric.high), 1)


class FactPool:
    """Facts not yet placed; (entity, attribute) pairs are handed out once."""

    def __init__(self, entities: list[str], metrics, periods, rng: random.Random):
        self.rng, self.metrics, self.periods, self.entities = rng, metrics, periods, entities
        self.used: set[tuple[str, str]] = set()

    def attribute(self, metric: Metric, period: str) -> str:
        return f"{metric.name} in {period}" if period else metric.name

    def take(self, entity: str, metric: Metric, period: str) -> FactDraft | None:
        attribute = self.attribute(metric, period)
        if (entity, attribute) in self.used:
            return None
        self.used.add((entity, attribute))
        value = draw_value(metric, self.rng)
        return FactDraft(entity, attribute, metric, value, render_value(metric, value))

    def any(self) -> FactDraft | None:
        for _ in range(20):
            fact = self.take(self.rng.choice(self.entities), self.rng.choice(self.metrics),
                             self.rng.choice(self.periods))
            if fact:
                return fact
        return None


def plan_document(rng: random.Random, num_pages: int, kind: str) -> DocumentPlan:
    setup = KIND_SETUP[kind]
    organisation = f"{rng.choice(ORG_FIRST)} {rng.choice(ORG_SECOND)}"
    title = f"{organisation} {setup['title']}"
    entities = _entities(rng, kind, organisation, max(6, min(60, num_pages // 3)))
    metrics = [m for m in setup["metrics"] if kind != "slides" or m.kind != "code"]
    pool = FactPool(entities, metrics, setup["periods"], rng)
    sections = _sections(rng, setup["sections"], num_pages, front=2 if kind != "slides" else 1)
    pages = [_title_page(title, organisation, kind, pool)]
    if kind != "slides":
        pages.append(PagePlan([Block("heading", "Contents", 1)], "Contents"))
    for name, _, start, end in sections:
        for page in range(start, end + 1):
            pages.append(_content_page(rng, kind, pool, name, first=page == start, chart_ok=page % 3 == 0))
    return DocumentPlan(kind, title, organisation, pages, sections)


def _entities(rng, kind, organisation, n) -> list[str]:
    org = organisation.split()[0]
    if kind == "report":
        names = [f"{org} {r}" for r in REGIONS] + [f"{org} {g} Division" for g in GREEK]
    elif kind == "manual":
        names = [f"Model {g[0]}{rng.randint(1, 9)}{rng.randint(0, 9)}0 {part}" for g in GREEK
                 for part in ("pump", "valve", "compressor")]
    else:
        names = [f"Project {g}" for g in GREEK] + [f"{g} {r} pilot" for g in GREEK[:6] for r in REGIONS[:4]]
    names = sorted(set(names))
    return rng.sample(names, min(n, len(names)))


def _sections(rng, names, num_pages, front) -> list[tuple[str, int, int, int]]:
    """Contiguous sections covering the content pages, 2..12 pages each, in page order."""
    content = num_pages - front
    count = max(1, min(len(names), content // 3))
    cuts = sorted(rng.sample(range(1, content), count - 1)) if count > 1 else []
    bounds = [0] + cuts + [content]
    return [(names[i] if i < len(names) else f"Part {i + 1}", 1, front + bounds[i], front + bounds[i + 1] - 1)
            for i in range(count)]


def _title_page(title, organisation, kind, pool: FactPool) -> PagePlan:
    doc_number = f"{organisation.split()[0][:3].upper()}-{pool.rng.randint(10000, 99999)}"
    fact = FactDraft(f"{organisation} {KIND_SETUP[kind]['title'].lower()}", "document number",
                     Metric("document number", None, "code", 0, 0), doc_number, doc_number)
    blocks = [Block("heading", title, 0),
              Block("paragraph", sentences=[(f"Prepared by {organisation}.", None),
                                            (f"Document number {doc_number}.", fact)])]
    return PagePlan(blocks, "Title")


def _prose(rng, kind, n: int) -> list[str]:
    """n distinct sentences: the kind's stock phrases and combinatorial ones."""
    stock = rng.sample(FILLER[kind], min(len(FILLER[kind]), n))
    made = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)}."
            for _ in range(n)]
    return [rng.choice((a, b)) for a, b in zip(stock + made, made)][:n]


def _paragraph(rng, kind, pool: FactPool, facts: int, sentences_range=(3, 6)) -> Block:
    sentences = [(text, None) for text in _prose(rng, kind, rng.randint(*sentences_range))]
    for _ in range(facts):
        fact = pool.any()
        if fact:
            text = rng.choice(FACT_SENTENCES).format(entity=fact.entity, attribute=fact.attribute,
                                                     value=fact.rendered)
            sentences.insert(rng.randint(0, len(sentences)), (text[0].upper() + text[1:], fact))
    return Block("paragraph", sentences=sentences)


def _table(rng, pool: FactPool, word: str) -> Block | None:
    metric = rng.choice(pool.metrics)
    periods = [p for p in pool.periods if p] or [""]
    periods = periods[:rng.randint(2, len(periods))] if len(periods) > 1 else periods
    entities = rng.sample(pool.entities, min(len(pool.entities), rng.randint(3, 6)))
    rows = []
    for entity in entities:
        cells = [(entity, None)]
        for period in periods:
            fact = pool.take(entity, metric, period)
            cells.append((fact.rendered if fact else "n/a", fact))
        rows.append(cells)
    if not any(f for row in rows for _, f in row):
        return None
    header = [word.capitalize()] + ([f"{metric.name} {p}".strip() for p in periods])
    unit = f" ({metric.unit})" if metric.unit and metric.unit != "%" else ""
    return Block("table", header=header, rows=rows, caption=f"Table: {metric.name}{unit} by {word}")


def _chart(rng, pool: FactPool, word: str) -> Block | None:
    numeric = [m for m in pool.metrics if m.kind != "code"]
    metric, period = rng.choice(numeric), rng.choice(pool.periods)
    bars = [f for e in rng.sample(pool.entities, min(len(pool.entities), rng.randint(3, 6)))
            if (f := pool.take(e, metric, period))]
    if len(bars) < 2:
        return None
    unit = f" ({metric.unit})" if metric.unit else ""
    when = f" in {period}" if period else ""
    return Block("chart", chart=bars, caption=f"Figure: {metric.name}{unit} by {word}{when}")


def _content_page(rng, kind, pool: FactPool, section: str, *, first: bool, chart_ok: bool) -> PagePlan:
    word = KIND_SETUP[kind]["entity_word"]
    blocks = [Block("heading", section, 1)] if first else []
    roll = rng.random()
    if kind == "slides":
        blocks = [Block("heading", f"{section}: {rng.choice(OBJECTS).removeprefix('the ').capitalize()}", 1)]
        bullets = _paragraph(rng, kind, pool, rng.randint(1, 3), sentences_range=(1, 2))
        blocks.append(Block("bullets", sentences=bullets.sentences[:5]))
        if chart_ok and (chart := _chart(rng, pool, word)):
            blocks.append(chart)
        return PagePlan(blocks, section)
    if chart_ok and roll < 0.5 and (chart := _chart(rng, pool, word)):
        blocks += [_paragraph(rng, kind, pool, 1), chart, _paragraph(rng, kind, pool, 1)]
    elif roll < 0.55 and (table := _table(rng, pool, word)):
        blocks += [_paragraph(rng, kind, pool, 1), table, _paragraph(rng, kind, pool, 1),
                   _paragraph(rng, kind, pool, 0)]
    else:
        blocks += [_paragraph(rng, kind, pool, rng.randint(0, 2)) for _ in range(rng.randint(4, 6))]
    return PagePlan(blocks, section)
