"""Ground truth of a generated document: ``<stem>.truth.json`` beside ``<stem>.pdf``.

Schema (JSON, sorted keys):
  doc_name, kind ("report" | "manual" | "slides"), title, organisation, num_pages, seed
  sections: [{title, level, start_page, end_page}]     0-based page indices, inclusive, in page order
  facts: [{fact_id, entity, attribute, value, value_type, unit, page, source, section, bbox, rendered}]
    value_type: "string" | "integer" | "float";  source: "text" | "table" | "figure" | "layout"
    page: 0-based;  bbox: [x0, y0, x1, y1] fractions of the page, top-left origin
    rendered: the exact string printed on the page that states the value (null when only a chart shows it)
  groups: {name: [fact_id, ...]}   facts sharing one attribute across entities (and pages)
Within a document the pair (entity, attribute) is unique, so a question about it has one answer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    fact_id: str
    entity: str
    attribute: str
    value: str | int | float
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

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "DocumentTruth":
        data = json.loads(text)
        data["sections"] = tuple(SectionTruth(**s) for s in data["sections"])
        data["facts"] = tuple(Fact(**{**f, "bbox": tuple(f["bbox"])}) for f in data["facts"])
        return cls(**data)


def truth_path(pdf_path: str | Path) -> Path:
    pdf_path = Path(pdf_path)
    return pdf_path.with_name(pdf_path.stem + ".truth.json")


def load_truth(pdf_path: str | Path) -> DocumentTruth:
    """The ground truth written beside a generated PDF."""
    return DocumentTruth.from_json(truth_path(pdf_path).read_text())
