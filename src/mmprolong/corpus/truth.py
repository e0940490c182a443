"""Ground truth of a generated document: ``<stem>.truth.json`` beside ``<stem>.pdf``.

Schema (JSON object, keys sorted, one trailing newline):

  doc_name      "doc-00003" (the PDF's stem)
  kind          "report" | "manual" | "slides": the topic and vocabulary; large-print only: "notes" (an archive
                register: note cards stating secret codes, the niah suite's needle pages) or "specimen" (cards of
                random lines, no facts: transcription material)
  layout        "standard" (pages of prose, tables and charts) | "large-print" (a deck of fact cards,
                ``corpus.cards``); absent in truths written before layouts existed, which are standard
  title         the document's title as printed on its cover
  organisation  the fictional organisation that publishes it
  num_pages     exact page count of the PDF
  seed          the per-document seed (derived from the corpus seed and the document's index)
  sections      [{title, level, start_page, end_page}] in page order. 0-based page indices, inclusive.
                Level-1 sections (cover and contents included) partition all pages; level-2 sections
                partition the pages of their level-1 parent where it has any. Every section starts on a
                new page, and titles are unique in the document (they carry their number, e.g. "3.2 Revenue").
  facts         [{fact_id, entity, attribute, value, value_type, unit, page, source, section, bbox, rendered}]
    fact_id     "f00012", unique in the document, in page order
    entity, attribute   the pair is unique in the document, so a question about it has one answer
    value       JSON string, integer, float or list of strings
    value_type  "string" | "integer" | "float" | "list"
    unit        e.g. "bar", "%", "million USD"; null when the value has none
    page        0-based page index
    source      "text" (a sentence, bullet or step) | "table" (a cell: column header + row label give
                the attribute and entity) | "figure" (a bar or point of a chart) | "layout" (cover, caption)
    section     title of the innermost section holding the page
    bbox        [x0, y0, x1, y1]: fractions of page width/height, top-left origin; the value's own box for
                text, the cell for tables, the chart image for figures
    rendered    the exact string printed in the page's text layer that states the value ("1,840",
                "12.5 bar", "$4.2 million"); null for figure facts, whose value is drawn only in the chart
  groups        {attribute: [fact_id, ...]}: every fact of an attribute that at least two entities share,
                in page order. Values in a group share one unit, so they can be summed, compared, counted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

VALUE_TYPES = ("string", "integer", "float", "list")
SOURCES = ("text", "table", "figure", "layout")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    fact_id: str
    entity: str
    attribute: str
    value: str | int | float | list[str]
    value_type: str
    unit: str | None
    page: int
    source: str
    section: str
    bbox: tuple[float, float, float, float]
    rendered: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionTruth:
    title: str
    level: int
    start_page: int
    end_page: int


@dataclass(frozen=True, kw_only=True)
class DocumentTruth:
    doc_name: str
    kind: str
    title: str
    organisation: str
    num_pages: int
    seed: int
    sections: tuple[SectionTruth, ...]
    facts: tuple[Fact, ...]
    groups: dict[str, list[str]] = field(default_factory=dict)
    layout: str = "standard"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DocumentTruth:
        data = json.loads(text)
        data["sections"] = tuple(SectionTruth(**s) for s in data["sections"])
        data["facts"] = tuple(Fact(**{**f, "bbox": tuple(f["bbox"])}) for f in data["facts"])
        return cls(**data)


def truth_path(pdf_path: str | Path) -> Path:
    """``doc-00003.pdf`` -> ``doc-00003.truth.json`` in the same folder."""
    pdf_path = Path(pdf_path)
    return pdf_path.with_name(pdf_path.stem + ".truth.json")


def load_truth(pdf_path: str | Path) -> DocumentTruth:
    """The ground truth written beside a generated PDF."""
    return DocumentTruth.from_json(truth_path(pdf_path).read_text(encoding="utf-8"))


def fact_groups(facts: list[Fact]) -> dict[str, list[str]]:
    """Facts grouped by attribute, kept where at least two entities share it (aggregation material)."""
    by_attribute: dict[str, list[Fact]] = {}
    for fact in facts:
        by_attribute.setdefault(fact.attribute, []).append(fact)
    return {attribute: [f.fact_id for f in members] for attribute, members in sorted(by_attribute.items())
            if len({f.entity for f in members}) >= 2}
