"""Writes the blocks of a page: paragraphs, bullet lists, procedures, warnings, tables, charts, slides.

The page layout asks for one block at a time (``Composer.block``), so each block is written knowing what its
page already holds (``PageState``): how many facts, which entities. Two rules keep the ground truth usable:
an entity drawn in a chart has no other fact on that page (a figure value is looked up by page and entity),
and facts come from the pool, which never states an (entity, attribute) pair twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mmprolong.corpus import vocab
from mmprolong.corpus.content import Block, Chart, DocumentPlan, Heading, Paragraph, SectionPlan, Sentence, Table
from mmprolong.corpus.facts import FactDraft, FactPool, Metric

UNIT_WORD = {"report": "business unit", "manual": "model", "slides": "workstream"}
DATA_SOURCES = ("Group Controlling", "regional finance teams", "the annual customer survey",
                "the HR information system", "the environmental management system", "the safety reporting system",
                "internal management accounts", "the programme management office", "the test laboratory",
                "factory acceptance tests", "the service database", "supplier data sheets")
CHART_EVERY_PAGES = 4  # a matplotlib figure costs ~50 ms, more than a page of text: at most one per four pages


@dataclass(slots=True)
class PageState:
    """What a page holds so far; the layout updates it after drawing each block."""

    page: int
    target_facts: int
    facts: int = 0
    blocks: int = 0
    entities: set[str] = field(default_factory=set)  # membership only: never iterated
    blocked: set[str] = field(default_factory=set)  # entities of this page's chart

    def note(self, facts: list[FactDraft], *, figure: bool = False) -> None:
        self.blocks += 1
        self.facts += len(facts)
        self.entities.update(f.entity for f in facts)
        if figure:
            self.blocked.update(f.entity for f in facts)


class Slots(dict):
    """Template slots filled on first use from the document's topic, so unused slots cost nothing."""

    def __init__(self, rng: random.Random, plan: DocumentPlan):
        super().__init__()
        self.rng, self.topic = rng, plan.topic

    def __missing__(self, key: str) -> str:
        rng, t = self.rng, self.topic
        entities = next(iter(t["entities"].values()))
        value = {"org": t["org"], "year": str(t["year"]), "prev_year": str(t["year"] - 1),
                 "customers": lambda: rng.choice(t["customers"]), "line": lambda: rng.choice(t["lines"]),
                 "line2": lambda: rng.choice(t["lines"]), "asset": lambda: rng.choice(t["assets"]),
                 "unit": lambda: rng.choice(entities), "workstream": lambda: rng.choice(entities),
                 "month": lambda: rng.choice(vocab.MONTHS), "city": lambda: rng.choice(vocab.CITIES),
                 "person": lambda: f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.SURNAMES)}",
                 "family": t.get("family", "unit"), "component": lambda: rng.choice(vocab.MANUAL_COMPONENTS),
                 }[key]
        return value() if callable(value) else value


class Composer:
    def __init__(self, rng: random.Random, plan: DocumentPlan, pool: FactPool):
        self.rng, self.plan, self.pool, self.kind = rng, plan, pool, plan.kind
        self.counters = {"Figure": 0, "Table": 0, "Procedure": 0}
        self.last_chart_page = -CHART_EVERY_PAGES

    # --- the page-level entry points ---------------------------------------------------------------

    def new_page(self, page: int) -> PageState:
        """A page aims at 3-7 facts, fewer when the pool would otherwise run dry before the last page."""
        left = self.pool.capacity - len(self.pool.used)
        rate = left / max(1, self.plan.num_pages - page)
        return PageState(page, target_facts=min(self.rng.randint(3, 7), max(1, int(rate * 0.8))))

    def block(self, section: SectionPlan, state: PageState) -> Block:
        """The next block of a report or manual page: mostly prose, now and then a table, chart, list."""
        rng, opened = self.rng, state.blocks > 0
        chart_ok = opened and state.page - self.last_chart_page >= CHART_EVERY_PAGES
        room_for_facts = state.facts < state.target_facts
        weights = {"paragraph": 5.0, "table": 1.6 * (opened and room_for_facts), "chart": 1.6 * chart_ok,
                   "procedure": 1.4 * (self.kind == "manual"), "warning": 0.5 * (self.kind == "manual"),
                   "bullets": 0.7 * (self.kind == "report" and opened)}
        choice = rng.choices(list(weights), list(weights.values()))[0]
        made = {"table": lambda: self.table(section, state), "chart": lambda: self.chart(section, state),
                "procedure": lambda: self.procedure(section, state), "warning": lambda: self.warning(section, state),
                "bullets": lambda: self.paragraph(section, state, style="bullets", sentences=rng.randint(3, 5)),
                }.get(choice, lambda: None)()
        return made or self.paragraph(section, state)

    def filler(self, section: SectionPlan, state: PageState) -> Paragraph:
        """Text with no facts to fill the gap left when a table or chart moves to the next page."""
        return Paragraph([self._filler_sentence() for _ in range(self.rng.randint(3, 6))])

    def slide(self, section: SectionPlan, state: PageState) -> list[Block]:
        """A slide: a title, bullets, and on some slides a chart or a table beside them."""
        rng = self.rng
        entity = rng.choice(self.pool.entities["unit"])
        title = f"{section.chapter}: {entity}" if rng.random() < 0.6 else f"{section.chapter}: {self._headline()}"
        facts = self._pick(section, state, rng.randint(1, 4), prefer=entity)
        bullets = [self._fact_sentence(f) for f in facts] + [self._filler_sentence()
                                                              for _ in range(rng.randint(1, 3))]
        rng.shuffle(bullets)
        blocks: list[Block] = [Heading(title, 1), Paragraph(bullets, style="bullets")]
        state.entities.update(f.entity for f in facts)
        chart_ok = state.page - self.last_chart_page >= CHART_EVERY_PAGES
        visual = rng.random()
        if chart_ok and visual < 0.45:
            blocks += [c for c in [self.chart(section, state)] if c]
        elif visual > 0.7:
            blocks += [t for t in [self.table(section, state, max_rows=4)] if t]
        return blocks

    def cover_lines(self) -> list[Sentence]:
        """The cover's small print: layout facts (document number, date, version or presenter)."""
        rng, t, pool = self.rng, self.plan.topic, self.pool
        title = self.plan.title
        date = f"{rng.choice(vocab.MONTHS)} {t['year'] + (self.kind == 'report')}"
        lines = [Sentence("Document number: ", pool.take_layout(title, "document number",
                                                                   f"{t['code_prefix']}-{rng.randint(10000, 99999)}")),
                 Sentence("Date of issue: ", pool.take_layout(title, "date of issue", date))]
        if self.kind == "manual":
            revision = f"{rng.randint(1, 6)}.{rng.randint(0, 9)}"
            lines.append(Sentence("Revision ", pool.take_layout(title, "revision", revision)))
        else:
            person = f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.SURNAMES)}"
            word = "Presented by " if self.kind == "slides" else "Prepared by "
            lines.append(Sentence(word, pool.take_layout(title, "author", person)))
        return lines

    # --- text blocks ---------------------------------------------------------------------------------

    def paragraph(self, section: SectionPlan, state: PageState, *, style: str = "body",
                  sentences: int | None = None) -> Paragraph:
        rng = self.rng
        count = sentences or rng.randint(3, 6)
        wanted = min(2, max(0, state.target_facts - state.facts), count)
        facts = self._pick(section, state, rng.randint(min(1, wanted), wanted), prefer=section.focus)
        text = [self._filler_sentence() for _ in range(count - len(facts))]
        for fact in facts:
            text.insert(rng.randint(0, len(text)), self._fact_sentence(fact))
        if state.blocks == 0 and style == "body" and section.start_page == state.page and rng.random() < 0.7:
            text.insert(0, Sentence(self._intro(section)))
        return Paragraph(text, style)

    def procedure(self, section: SectionPlan, state: PageState) -> Paragraph:
        rng = self.rng
        self.counters["Procedure"] += 1
        component = rng.choice(self.pool.entities["component"])
        action = rng.choice(("Replacing the", "Inspecting the", "Cleaning the", "Adjusting the", "Removing the"))
        steps = self._steps()
        if state.facts < state.target_facts and (facts := self._pick(section, state, 1)):
            steps.insert(rng.randint(1, len(steps) - 1), self._fact_sentence(facts[0]))
        title = f"Procedure {self.counters['Procedure']}: {action} {component}"
        return Paragraph(steps, style="steps", title=title)

    def warning(self, section: SectionPlan, state: PageState) -> Paragraph:
        sentences = [Sentence(self.rng.choice(vocab.MANUAL_WARNINGS))]
        if state.facts < state.target_facts and (facts := self._pick(section, state, 1)):
            sentences.append(self._fact_sentence(facts[0]))
        return Paragraph(sentences, style="warning", title=self.rng.choice(("WARNING", "CAUTION")))

    def _filler_sentence(self) -> Sentence:
        """A sentence without facts: from the kind's grammar most of the time, else a fixed template."""
        rng, slots = self.rng, Slots(self.rng, self.plan)
        if rng.random() < 0.65:
            grammar = {"report": vocab.REPORT_GRAMMAR, "manual": vocab.MANUAL_GRAMMAR,
                       "slides": vocab.SLIDE_GRAMMAR}[self.kind]
            opener, subject, predicate, tail = (rng.choice(part) for part in grammar)
            text = f"{opener}{subject} {predicate}{tail}".format_map(slots)
            if self.kind == "manual" and not text[0].isupper():
                text = text[0].upper() + text[1:]
        else:
            templates = {"report": vocab.REPORT_FILLER, "manual": vocab.MANUAL_FILLER,
                         "slides": vocab.SLIDE_FILLER}[self.kind]
            text = rng.choice(templates).format_map(slots)
        return Sentence(_cap(text))

    def _steps(self) -> list[Sentence]:
        """Make safe, do the work, restore: steps in an order a technician would follow."""
        rng, slots = self.rng, Slots(self.rng, self.plan)
        steps = (rng.sample(vocab.MANUAL_STEPS_START, rng.randint(1, 2))
                 + rng.sample(vocab.MANUAL_STEPS_WORK, rng.randint(2, 5))
                 + rng.sample(vocab.MANUAL_STEPS_END, rng.randint(1, 2)))
        return [Sentence(step.format_map(slots)) for step in steps]

    def _intro(self, section: SectionPlan) -> str:
        name = section.title.split(" ", 1)[1]
        if section.focus:
            the = "the " if self.kind == "manual" else ""  # "the AX-200 pump", but "Calder Harbour"
            return f"This section reviews {the}{name}, one of the {UNIT_WORD[self.kind]}s covered by this document."
        return f"This section covers {name[0].lower() + name[1:]} for {self.plan.organisation}."

    def _headline(self) -> str:
        return self.rng.choice(("Overview", "Progress", "Key Figures", "Status Update", "Decisions Needed",
                                "Lessons Learned", "Outlook"))

    def _fact_sentence(self, fact: FactDraft) -> Sentence:
        """A template sentence stating one fact; its value prints as ``fact.text``."""
        rng, metric = self.rng, fact.metric
        numeric = metric.kind == "number"
        templates = {("report", True): vocab.REPORT_FACT_SENTENCES, ("report", False): vocab.REPORT_STRING_SENTENCES,
                     ("manual", True): vocab.MANUAL_FACT_SENTENCES, ("manual", False): vocab.MANUAL_STRING_SENTENCES,
                     ("slides", True): vocab.SLIDE_FACT_SENTENCES, ("slides", False): vocab.SLIDE_STRING_SENTENCES,
                     }[self.kind, numeric]
        when = f" {self.plan.topic['period_word']} {fact.period}" if fact.period else ""
        slots = {"entity": fact.entity, "metric": metric.name, "Metric": _cap(metric.name),
                 "attribute": fact.attribute, "Attribute": _cap(fact.attribute), "when": when,
                 "When_cap": f"{_cap(when.strip())}, " if when else ""}
        before, after = rng.choice(templates).split("{value}")
        return Sentence(_cap(before.format(**slots)), fact, after.format(**slots))

    # --- picking facts -------------------------------------------------------------------------------

    def _metrics(self, section: SectionPlan, entity_class: str | None = None) -> list[Metric]:
        names = section.metrics or [n for n, m in self.pool.metrics.items()
                                    if m.applies_to == ("model" if self.kind == "manual" else "unit")]
        metrics = [self.pool.metrics[n] for n in names]
        return [m for m in metrics if entity_class is None or m.applies_to == entity_class]

    def _pick(self, section: SectionPlan, state: PageState, count: int, *, prefer: str | None = None,
              ) -> list[FactDraft]:
        """Up to ``count`` new facts on the section's metrics; the whole metric table once those run out."""
        rng, pool, out = self.rng, self.pool, []
        metrics = self._metrics(section)
        for attempt in range(count * 16):
            if len(out) == count:
                break
            if attempt == count * 8:
                metrics = list(pool.metrics.values())
            metric = rng.choice(metrics)
            candidates = pool.entities[metric.applies_to]
            entity = prefer if prefer in candidates and rng.random() < 0.8 else rng.choice(candidates)
            periods = pool.free_periods(entity, metric)
            if entity in state.blocked or not periods:
                continue
            out.append(pool.take(entity, metric, rng.choice(periods)))
        return out

    # --- tables and charts ---------------------------------------------------------------------------

    def table(self, section: SectionPlan, state: PageState, *, max_rows: int = 6) -> Table | None:
        rng = self.rng
        if self.kind == "manual":
            classes = [m.applies_to for m in self._metrics(section)]
            entity_class = rng.choice(classes) if classes else "model"
            if entity_class == "model":
                return self._spec_table(section, state)
        else:
            entity_class = "unit"
        metrics = [m for m in self._metrics(section, entity_class) or self._metrics_of(entity_class)
                   if m.kind != "list" or self.kind == "manual"]
        if not metrics:
            return None
        columns, labels, what = self._columns(metrics, entity_class)
        budget = max(6, state.target_facts + 4 - state.facts)  # keeps a page near its fact target
        rows = self._rows(entity_class, columns, state, min(rng.randint(3, max_rows), budget // len(columns)))
        if len(rows) < 2:
            return None
        header = [_cap(self._class_word(entity_class))] + labels
        return Table(header, rows, self._caption("Table", what))

    def _columns(self, metrics: list[Metric], entity_class: str) -> tuple[list, list[str], str]:
        """One metric over the periods (headers are periods), or a few metrics in one period."""
        rng, periods = self.rng, self.pool.periods
        by_period = [m for m in metrics if m.periodic and m.kind == "number"]
        if by_period and rng.random() < 0.5:
            metric = rng.choice(by_period)
            chosen = periods[-rng.randint(2, len(periods)):]
            what = f"{metric.header} by {UNIT_WORD[self.kind]}, {chosen[0]} to {chosen[-1]}"
            return [(metric, p) for p in chosen], list(chosen), what
        chosen = rng.sample(metrics, min(len(metrics), rng.randint(2, 3)))
        period = rng.choice(periods)
        when = f", {period}" if any(m.periodic for m in chosen) else ""
        what = f"{'Key figures' if self.kind != 'manual' else 'Data'} by {self._class_word(entity_class)}{when}"
        return [(m, period if m.periodic else "") for m in chosen], [m.header for m in chosen], what

    def _spec_table(self, section: SectionPlan, state: PageState) -> Table | None:
        """Parameters down, models across: the column header names the entity, the row label the attribute."""
        rng, pool = self.rng, self.pool
        models = [section.focus] if section.focus else rng.sample(pool.entities["model"], 2)
        metrics = rng.sample(self._metrics_of("model"), rng.randint(4, 7))
        budget = max(6, state.target_facts + 4 - state.facts) // len(models)
        rows = []
        for metric in metrics:
            for period in (pool.periods if metric.periodic else [""])[: rng.randint(1, 2)]:
                free = all(pool.is_free(m, metric, period) and m not in state.blocked for m in models)
                if free and len(rows) < budget:
                    rows.append([(self._row_label(metric, period), None)]
                                + [self._cell(pool.take(m, metric, period)) for m in models])
        if len(rows) < 2:
            return None
        return Table(["Parameter"] + models, rows, self._caption("Table", f"Technical data, {' and '.join(models)}"))

    def _rows(self, entity_class: str, columns: list[tuple[Metric, str]], state: PageState, count: int) -> list:
        pool, rows = self.pool, []
        for entity in self.rng.sample(pool.entities[entity_class], len(pool.entities[entity_class])):
            if len(rows) == count:
                break
            if entity in state.blocked or not all(pool.is_free(entity, m, p) for m, p in columns):
                continue
            label = entity.removeprefix("fault code ")
            rows.append([(label, None)] + [self._cell(pool.take(entity, m, p)) for m, p in columns])
        return rows

    def chart(self, section: SectionPlan, state: PageState) -> Chart | None:
        """A bar chart of one attribute across entities, or a line chart of one entity over the periods."""
        rng, pool = self.rng, self.pool
        numeric = [m for m in self._metrics(section) if m.plottable] or [
            m for m in self._metrics_of("unit" if self.kind != "manual" else "model") if m.plottable]
        if not numeric:
            return None
        metric = rng.choice(numeric)
        free = [e for e in pool.entities[metric.applies_to] if e not in state.entities]
        if self.kind == "report" and metric.periodic and rng.random() < 0.35:
            line = [e for e in free if len(pool.free_periods(e, metric)) == len(pool.periods)]
            if line:
                entity = rng.choice(line)
                facts = [pool.take(entity, metric, p) for p in pool.periods]
                title = f"{metric.header}, {entity}, {pool.periods[0]} to {pool.periods[-1]}"
                return self._chart("line", title, list(pool.periods), facts)
        period = rng.choice(pool.periods) if metric.periodic else ""
        bars = [e for e in free if pool.is_free(e, metric, period)]
        if len(bars) < 3:
            return None
        bars = rng.sample(bars, min(len(bars), rng.randint(3, 7)))
        facts = [pool.take(e, metric, period) for e in bars]
        when = f", {period}" if period else ""
        return self._chart("bar", f"{metric.header} by {self._class_word(metric.applies_to)}{when}", bars, facts)

    def _chart(self, style: str, title: str, labels: list[str], facts: list[FactDraft]) -> Chart:
        return Chart(style, title, labels, facts, self._caption("Figure", title))

    def _caption(self, word: str, what: str) -> Sentence:
        """"Table 3: ..." with, on half the captions, a data source that is itself a layout fact."""
        self.counters[word] += 1
        name = f"{word} {self.counters[word]}"
        if self.rng.random() < 0.5:
            return Sentence(f"{name}: {what}.")
        source = self.pool.take_layout(name, "data source", self.rng.choice(DATA_SOURCES))
        return Sentence(f"{name}: {what}. Source: ", source, ".")

    def _row_label(self, metric: Metric, period: str) -> str:
        """"Flow rate at 50 Hz (m³/h)": the attribute as a row label, unit last."""
        label = _cap(self.pool.attribute(metric, period))
        return f"{label} ({metric.unit})" if metric.unit and metric.unit != "%" else label

    def _cell(self, fact: FactDraft) -> tuple[str, FactDraft]:
        return fact.cell, fact

    def _metrics_of(self, entity_class: str) -> list[Metric]:
        return [m for m in self.pool.metrics.values() if m.applies_to == entity_class]

    def _class_word(self, entity_class: str) -> str:
        return {"unit": UNIT_WORD[self.kind], "model": "model", "component": "component",
                "fault": "fault code"}[entity_class]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
