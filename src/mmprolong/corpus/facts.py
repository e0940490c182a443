"""Facts: metrics, how their values are drawn and printed, and the pool that hands out each pair once.

A metric is an attribute family ("revenue", "maximum operating pressure"); with a period it becomes one
attribute ("revenue in 2023"). The pool draws a value per (entity, attribute) at most once, so within a
document every pair is unique and a question about it has one answer. Numbers of one entity drift
smoothly over periods (revenue grows a few percent a year) so charts and comparisons look plausible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from mmprolong.corpus import vocab


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: str = "number"  # number | person | city | code | choice | date | list
    low: float = 0.0
    high: float = 0.0
    decimals: int = 0  # 0 -> integer values
    step: int = 1  # integers are multiples of step (EUR budgets in thousands, clearances in 50 mm)
    unit: str | None = None
    text: str = "{n}"  # how a sentence prints the number: "${n} million", "{n} bar", "{n}%"
    cell: str = "{n}"  # how a table cell prints it; the column header names the unit
    periodic: bool = False
    applies_to: str = "unit"  # which entity class has this attribute
    choices: tuple[str, ...] = ()
    thousands: bool = True  # "1,840" (off for years)
    chartable: bool = True  # a quantity worth a bar (a year of founding is not)

    @property
    def plottable(self) -> bool:
        return self.kind == "number" and self.chartable

    @property
    def header(self) -> str:
        """Column or axis label: the name capitalised with its unit, e.g. "Revenue (million USD)"."""
        name = self.name[0].upper() + self.name[1:]
        return f"{name} ({self.unit})" if self.unit and self.unit != "%" else name


def _money(name: str, low: float, high: float, **kw) -> Metric:
    return Metric(name, low=low, high=high, decimals=1, unit="million USD", text="${n} million", **kw)


def _pct(name: str, low: float, high: float, decimals: int = 1, **kw) -> Metric:
    return Metric(name, low=low, high=high, decimals=decimals, unit="%", text="{n}%", cell="{n}%", **kw)


def _qty(name: str, low: float, high: float, unit: str | None = None, decimals: int = 0, **kw) -> Metric:
    return Metric(name, low=low, high=high, decimals=decimals, unit=unit,
                  text="{n} " + unit if unit else "{n}", **kw)


REPORT_METRICS = {m.name: m for m in (
    _money("revenue", 20, 900, periodic=True), _money("operating profit", 2, 120, periodic=True),
    _pct("operating margin", 2, 30, periodic=True), _money("capital expenditure", 1, 80, periodic=True),
    _qty("headcount", 80, 9000, periodic=True), _pct("employee turnover", 3, 25, periodic=True),
    _qty("training hours per employee", 8, 60, "hours", 1, periodic=True),
    _qty("customer satisfaction score", 6, 9.8, decimals=1, periodic=True),
    _qty("number of customers", 200, 250000, periodic=True), _qty("new contracts signed", 5, 600, periodic=True),
    _pct("market share", 2, 45, periodic=True), _qty("recordable safety incidents", 0, 40, periodic=True),
    _qty("CO2 emissions", 500, 90000, "t CO2e", periodic=True),
    _qty("energy consumption", 1000, 400000, "MWh", periodic=True),
    _pct("share of waste recycled", 30, 95, periodic=True),
    Metric("managing director", "person"), Metric("headquarters", "city"),
    Metric("year established", low=1950, high=2015, thousands=False, chartable=False),
    Metric("main business lines", "list"),
)}
_MODEL_METRICS = (
    _qty("rated power", 0.5, 75, "kW", 1, periodic=True),
    _qty("flow rate", 1, 250, "m³/h", 1, periodic=True), _qty("weight", 5, 900, "kg", 1),
    _qty("maximum operating pressure", 2, 40, "bar", 1),
    _qty("noise level", 55, 95, "dB(A)", periodic=True),
    _qty("supply voltage", 230, 690, "V", step=10),
    _qty("start-up time", 5, 120, "s", periodic=True),
    _qty("maximum ambient temperature", 35, 55, "°C"),
    _qty("minimum clearance", 200, 1000, "mm", step=50),
    _qty("mounting bolt torque", 20, 180, "Nm"),
    _qty("warranty period", 12, 60, "months", step=12),
    _qty("rated current", 1, 140, "A", 1, periodic=True),
    _qty("maximum speed", 900, 3600, "rpm", step=10, periodic=True),
    _pct("efficiency", 60, 96, periodic=True),
    _qty("height", 300, 2200, "mm", step=5), _qty("width", 250, 1500, "mm", step=5),
    _qty("depth", 250, 1800, "mm", step=5),
    _qty("inlet diameter", 15, 300, "mm", step=5),
    _qty("outlet diameter", 15, 250, "mm", step=5),
    _qty("oil capacity", 0.5, 60, "L", 1), _qty("shipping weight", 8, 1100, "kg", 1),
    Metric("service kit number", "code"),
    Metric("ingress protection rating", "choice", choices=vocab.IP_RATINGS),
    Metric("certifications", "list", choices=vocab.CERTIFICATIONS),
)
MANUAL_METRICS = {m.name: m for m in (
    *(replace(m, applies_to="model") for m in _MODEL_METRICS),
    Metric("part number", "code", applies_to="component"),
    _qty("replacement interval", 500, 8000, "hours", step=250, applies_to="component"),
    _qty("quantity per unit", 1, 12, applies_to="component"),
    Metric("meaning", "choice", choices=vocab.FAULT_MEANINGS, applies_to="fault"),
    Metric("remedy", "choice", choices=vocab.FAULT_REMEDIES, applies_to="fault"),
)}

SLIDE_METRICS = {m.name: m for m in (
    Metric("budget", low=50_000, high=4_000_000, step=1000, unit="EUR", text="EUR {n}"),
    Metric("spend to date", low=10_000, high=3_000_000, step=1000, unit="EUR", text="EUR {n}", periodic=True),
    _pct("completion", 5, 100, decimals=0, periodic=True), _qty("team size", 3, 60),
    _qty("open issues", 0, 120, periodic=True), _qty("milestones completed", 0, 12, periodic=True),
    _qty("active users", 100, 90000, periodic=True), _qty("net promoter score", -20, 70, periodic=True),
    _qty("defects closed", 0, 400, periodic=True), _qty("change requests", 0, 40, periodic=True),
    Metric("forecast at completion", low=60_000, high=5_000_000, step=1000, unit="EUR", text="EUR {n}",
           periodic=True),
    _pct("system availability", 95, 99.9, decimals=1, periodic=True), _qty("tickets resolved", 20, 5000, periodic=True),
    Metric("cost savings", low=5_000, high=900_000, step=1000, unit="EUR", text="EUR {n}", periodic=True),
    Metric("status", "choice", choices=vocab.SLIDE_STATUSES), Metric("project lead", "person"),
    Metric("key risks", "list", choices=vocab.SLIDE_RISKS),
    Metric("next milestone", "choice", choices=vocab.SLIDE_MILESTONES), Metric("go-live date", "date"),
)}
METRICS = {"report": REPORT_METRICS, "manual": MANUAL_METRICS, "slides": SLIDE_METRICS}


@dataclass(frozen=True, slots=True)
class FactDraft:
    """A fact before layout: what it says and how it reads in a sentence or in a table cell."""

    entity: str
    attribute: str
    metric: Metric
    period: str
    value: str | int | float | list[str]
    text: str  # as printed in a sentence: "$4.2 million", "12.5 bar"
    cell: str  # as printed in a table cell under a header naming the unit: "4.2"

    @property
    def value_type(self) -> str:
        if isinstance(self.value, list):
            return "list"
        return {int: "integer", float: "float"}.get(type(self.value), "string")


def format_number(metric: Metric, value: int | float) -> str:
    if metric.decimals:
        return f"{value:,.{metric.decimals}f}"
    return f"{value:,}" if metric.thousands else str(value)


def join_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class FactPool:
    """Hands out facts; every (entity, attribute) pair at most once in a document."""

    def __init__(self, rng: random.Random, kind: str, entities: dict[str, list[str]], periods: list[str],
                 topic: dict):
        self.rng, self.metrics, self.entities, self.periods, self.topic = rng, METRICS[kind], entities, periods, topic
        self.used: set[tuple[str, str]] = set()  # membership only, never iterated (hash order varies)
        self.capacity = sum(len(entities[m.applies_to]) * (len(periods) if m.periodic else 1)
                            for m in self.metrics.values() if m.applies_to in entities)
        self._trend: dict[tuple[str, str], tuple[float, float]] = {}

    def attribute(self, metric: Metric, period: str) -> str:
        """"revenue in 2023", "flow rate at 50 Hz", or the bare metric name when it has no period."""
        return f"{metric.name} {self.topic['period_word']} {period}" if period else metric.name

    def is_free(self, entity: str, metric: Metric, period: str = "") -> bool:
        return (entity, self.attribute(metric, period)) not in self.used

    def take(self, entity: str, metric: Metric, period: str = "") -> FactDraft | None:
        """The fact for this pair, or None when the document already states it."""
        attribute = self.attribute(metric, period)
        if (entity, attribute) in self.used:
            return None
        self.used.add((entity, attribute))
        value = self._value(entity, metric, period)
        if metric.kind == "list":
            return FactDraft(entity, attribute, metric, period, value, join_list(value), ", ".join(value))
        if isinstance(value, str):
            return FactDraft(entity, attribute, metric, period, value, value, value)
        number = format_number(metric, value)
        return FactDraft(entity, attribute, metric, period, value, metric.text.format(n=number),
                         metric.cell.format(n=number))

    def take_layout(self, entity: str, attribute: str, value: str) -> FactDraft:
        """A fact printed by the page layout itself (cover, captions), outside the metric tables."""
        assert (entity, attribute) not in self.used, (entity, attribute)
        self.used.add((entity, attribute))
        return FactDraft(entity, attribute, Metric(attribute, "code"), "", value, value, value)

    def free_periods(self, entity: str, metric: Metric) -> list[str]:
        periods = self.periods if metric.periodic else [""]
        return [p for p in periods if self.is_free(entity, metric, p)]

    def _value(self, entity: str, metric: Metric, period: str):
        rng = self.rng
        if metric.kind == "person":
            return f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.SURNAMES)}"
        if metric.kind == "city":
            return rng.choice(vocab.CITIES)
        if metric.kind == "code":
            return f"{self.topic['code_prefix']}-{rng.randint(1000, 9999)}-{rng.randint(1, 99):02d}"
        if metric.kind == "choice":
            return rng.choice(metric.choices)
        if metric.kind == "date":
            return f"{rng.choice(vocab.MONTHS)} {self.topic['year'] + rng.randint(0, 1)}"
        if metric.kind == "list":
            choices = metric.choices or self.topic["lines"]
            return sorted(rng.sample(choices, rng.randint(2, min(4, len(choices)))))
        return self._number(entity, metric, period)

    def _number(self, entity: str, metric: Metric, period: str) -> int | float:
        """A level per (entity, metric), drifting by a per-entity growth rate over the periods."""
        key = (entity, metric.name)
        if key not in self._trend:
            self._trend[key] = (self.rng.uniform(metric.low, metric.high), self.rng.uniform(-0.06, 0.1))
        level, growth = self._trend[key]
        index = self.periods.index(period) if period else 0
        raw = level * (1 + growth) ** index * self.rng.uniform(0.97, 1.03)
        raw = min(max(raw, metric.low), metric.high)
        if metric.decimals:
            return round(raw, metric.decimals)
        return int(round(raw / metric.step)) * metric.step
