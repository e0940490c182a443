"""A document as the synth stage sees it: page texts and token counts from the store, ground truth if any."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from mmprolong.synth.qa import normalize_text


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    title: str
    level: int
    start_page: int  # 0-based, inclusive
    end_page: int  # 0-based, inclusive


@dataclass(frozen=True, kw_only=True)
class DocumentView:
    doc_id: str
    source: str  # path of the PDF relative to the ingested folder
    page_texts: tuple[str, ...]
    page_tokens: tuple[int, ...]  # vision tokens per page (mmprolong.tokens)
    sections: tuple[Section, ...] = ()
    truth: object | None = None  # a TruthOracle (mmprolong.synth.qa) when ground truth exists
    load_image: Callable[[int], bytes] | None = field(default=None, compare=False, repr=False)

    @property
    def page_count(self) -> int:
        return len(self.page_texts)

    @cached_property
    def normalized_pages(self) -> tuple[str, ...]:
        """Page texts as ``qa.normalize_text`` compares them, once per document (a filler is checked against
        every question that names no page)."""
        return tuple(normalize_text(text) for text in self.page_texts)
