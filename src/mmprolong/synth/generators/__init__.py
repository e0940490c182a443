"""Question generators: each turns (document, task, seed) requests into QA candidates.

A generator never decides what is kept: ``mmprolong.synth.qa.verify`` does, for all of them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mmprolong.synth.documents import DocumentView
from mmprolong.synth.qa import QACandidate


@dataclass(frozen=True, slots=True)
class QARequest:
    doc: DocumentView
    task: str  # a canonical task name (mmprolong.synth.qa.TASKS)
    seed: int  # the request's own seed: its answer depends on nothing else
    target_tokens: int = 0  # the sample length being built (ocr-full sizes its page run to it); 0 = any


class QAGenerator(Protocol):
    name: str

    def propose_many(self, requests: Sequence[QARequest]) -> list[QACandidate | None]:
        """One candidate (or None when the document offers none for that task) per request, in order."""
        ...


EVIDENCE_SHARE = 0.8  # the evidence block may take this much of the target length; the rest is context


def evidence_window(request: QARequest, rng) -> range:
    """A random run of consecutive pages whose images fit in EVIDENCE_SHARE of the request's target length.

    Generators draw evidence from inside it, so what they propose can fit the length being built.
    """
    doc = request.doc
    if request.target_tokens <= 0:
        return range(doc.page_count)
    budget = request.target_tokens * EVIDENCE_SHARE
    start = rng.randrange(doc.page_count)
    end, used = start, 0
    while end < doc.page_count and used + doc.page_tokens[end] + 2 <= budget:
        used += doc.page_tokens[end] + 2
        end += 1
    while start > 0 and used + doc.page_tokens[start - 1] + 2 <= budget:
        start -= 1
        used += doc.page_tokens[start] + 2
    return range(start, max(end, start + 1))
