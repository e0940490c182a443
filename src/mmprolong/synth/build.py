"""Build the samples of one work unit: draw requests, get candidates, verify, lay out, keep or count.

A unit's output depends only on (seed, unit, store, generator): byte-identical whatever the worker
count, the executor or a resume. Samples are accepted while they bring the unit's tokens closer to its
plan, so achieved shares track planned ones to within half a sample per unit.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmprolong.records import SampleRecord
from mmprolong.synth.documents import DocumentView
from mmprolong.synth.generators import QAGenerator, QARequest
from mmprolong.synth.layout import Layout, layout_sample
from mmprolong.synth.plan import Unit
from mmprolong.synth.qa import QACandidate, candidate_to_json, verify
from mmprolong.template import ChatTemplate

FILLER_DOCS = 8  # unrelated documents offered to the layout on each side combined
BATCH_OVERDRAW = 1.5  # requests drawn per sample still needed (candidates get dropped)


@dataclass
class UnitResult:
    samples: list[SampleRecord]
    stats: Counter = field(default_factory=Counter)
    drop_reasons: Counter = field(default_factory=Counter)


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, identical across processes and Python runs (unlike hash())."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True, slots=True)
class _Draw:
    request: QARequest
    target_tokens: int
    depth: float
    fillers: tuple[DocumentView, ...]


def _draw(unit: Unit, docs: Sequence[DocumentView], weights: Sequence[int], rng: random.Random) -> _Draw:
    doc = rng.choices(docs, weights=weights)[0]
    target = rng.randrange(unit.bucket.low, unit.bucket.high)
    depth = rng.random()
    others = [d for d in rng.sample(list(docs), min(len(docs), FILLER_DOCS + 1)) if d.doc_id != doc.doc_id]
    request = QARequest(doc=doc, task=unit.task, seed=rng.getrandbits(63), target_tokens=target)
    return _Draw(request, target, depth, tuple(others[:FILLER_DOCS]))


def build_unit(unit: Unit, docs: Sequence[DocumentView], generator: QAGenerator, template: ChatTemplate,
               *, seed: int, max_attempts: int) -> UnitResult:
    rng = random.Random(stable_seed(seed, unit.name))
    weights = [sum(d.page_tokens) + 1 for d in docs]
    result = UnitResult(samples=[])
    achieved, attempts = 0, 0
    budget = max_attempts * max(1, round(unit.tokens / unit.bucket.mean))
    while attempts < budget and achieved < unit.tokens:
        needed = max(1, round((unit.tokens - achieved) / unit.bucket.mean))
        draws = [_draw(unit, docs, weights, rng) for _ in range(min(64, max(2, int(needed * BATCH_OVERDRAW))))]
        candidates = generator.propose_many([d.request for d in draws])
        for draw, candidate in zip(draws, candidates):
            attempts += 1
            layout = _accept(draw, candidate, unit, template, result)
            if layout is None:
                continue
            if abs(achieved + layout.tokens - unit.tokens) >= abs(achieved - unit.tokens):
                result.stats["stopped_at_plan"] += 1
                return result
            result.samples.append(_record(unit, candidate, layout, len(result.samples)))
            achieved += layout.tokens
            if achieved >= unit.tokens:
                break
    if achieved < unit.tokens:
        result.stats["unit_short_tokens"] += unit.tokens - achieved
    return result


def _accept(draw: _Draw, candidate: QACandidate | None, unit: Unit, template: ChatTemplate,
            result: UnitResult) -> Layout | None:
    """The layout of a verified candidate, or None after counting why it was dropped."""
    doc = draw.request.doc
    if candidate is None:
        result.stats["no_candidate"] += 1
        return None
    reason = verify(candidate, doc.page_texts, doc.truth)
    if reason is not None:
        result.stats["dropped_unverified"] += 1
        result.drop_reasons[reason.split(":")[0][:60]] += 1
        return None
    layout = layout_sample(candidate, doc, draw.fillers, bucket=unit.bucket, target_tokens=draw.target_tokens,
                           depth=draw.depth, template=template)
    if isinstance(layout, str):
        result.stats["dropped_length"] += 1
        result.drop_reasons[layout] += 1
        return None
    return layout


def _record(unit: Unit, candidate: QACandidate, layout: Layout, index: int) -> SampleRecord:
    metadata = json.dumps({"candidate": json.loads(candidate_to_json(candidate)), "unit": unit.name},
                          sort_keys=True, ensure_ascii=False)
    sample_id = hashlib.sha256(f"{unit.name}/{index}/{metadata}".encode()).hexdigest()[:20]
    return SampleRecord(sample_id=sample_id, task=unit.task, bucket=unit.bucket.label, tokens=layout.tokens,
                        pages=layout.pages, question=layout.question, answer=candidate.answer,
                        answer_format=candidate.answer_format, evidence=layout.evidence, depth=layout.depth,
                        metadata=metadata)
