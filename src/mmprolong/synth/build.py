"""Build the samples of one work unit: draw requests, get candidates, verify, lay out, keep or count.

A unit's output depends only on (seed, unit, store, generator): byte-identical whatever the worker
count, the executor or a resume. A unit fills its token target rather than a count of samples: sample lengths
are drawn so that what is left stays fillable (0, or at least one sample of the bucket), the last sample is
laid out to the exact remainder, and a sample is kept only while it brings the unit closer to its target. A
unit so ends within a fraction of a sample of its plan (summary.json reports the error per bucket and task).
With ``questions`` > 1 each sample is offered more questions about its document as follow-ups (the layout keeps
up to ``questions - 1`` of those that are verified, new and whose pages fit beside the first's); with 1 no
follow-up is drawn, and the output is byte for byte what it was before follow-ups existed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmprolong.records import SampleRecord
from mmprolong.synth.documents import DocumentView
from mmprolong.synth.generators import QAGenerator, QARequest
from mmprolong.synth.layout import Layout, layout_sample
from mmprolong.synth.plan import Bucket, Unit
from mmprolong.synth.qa import QACandidate, candidate_to_json, verify
from mmprolong.template import ChatTemplate

FILLER_DOCS = 8  # unrelated documents offered to the layout on each side combined
BATCH_OVERDRAW = 1.5  # requests drawn per sample still needed (candidates get dropped)
FOLLOWUP_OVERDRAW = 2  # follow-up requests drawn per follow-up asked for (some fail, repeat or do not fit)


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
    followups: tuple[QARequest, ...] = ()  # more questions about the same document


def _draw(unit: Unit, docs: Sequence[DocumentView], weights: Sequence[int], rng: random.Random,
          target: int, questions: int, depth_power: float) -> _Draw:
    doc = rng.choices(docs, weights=weights)[0]
    depth = rng.random() ** (1 / depth_power)  # x ** 1.0 is x: the default draws exactly what it always drew
    others = [d for d in rng.sample(list(docs), min(len(docs), FILLER_DOCS + 1)) if d.doc_id != doc.doc_id]
    request = QARequest(doc=doc, task=unit.task, seed=rng.getrandbits(63), target_tokens=target)
    followups = () if unit.task.startswith("ocr-") else tuple(
        QARequest(doc=doc, task=unit.task, seed=rng.getrandbits(63), target_tokens=target)
        for _ in range(FOLLOWUP_OVERDRAW * (questions - 1)))
    return _Draw(request, target, depth, tuple(others[:FILLER_DOCS]), followups)


def sample_lengths(remaining: int, bucket: Bucket, rng: random.Random) -> list[int]:
    """Random lengths inside ``bucket`` that add up to ``remaining`` (whole samples of the bucket permitting)."""
    lengths = []
    while remaining > 0:
        lengths.append(fit_length(rng.randrange(bucket.low, bucket.high), remaining, bucket))
        remaining -= lengths[-1]
    return lengths


def fit_length(wish: int, remaining: int, bucket: Bucket) -> int:
    """The length nearest ``wish`` that leaves a remainder whole samples of ``bucket`` can fill exactly; the
    remainder itself once it fits in one sample (the bucket's shortest when less is left)."""
    low, high = bucket.low, bucket.high - 1  # inclusive
    if remaining <= high:
        return max(low, remaining)
    # Samples still to lay out: remaining / mean rounded up, within what fits. Rounding up keeps the lengths at
    # or below the mean, so the last sample has room to take up what layouts fall short of their targets. A
    # remainder between n longest and n + 1 shortest samples (narrow buckets) fits no count: the wish is then
    # only kept inside the bucket.
    count = min(max(math.ceil(remaining / bucket.mean), -(-remaining // high)), remaining // low)
    first = max(low, remaining - (count - 1) * high)
    last = min(high, remaining - (count - 1) * low)
    if first > last:
        first, last = low, high
    return min(max(wish, first), last)


def build_unit(unit: Unit, docs: Sequence[DocumentView], generator: QAGenerator, template: ChatTemplate,
               *, seed: int, max_attempts: int, questions: int = 1, depth_power: float = 1.0) -> UnitResult:
    rng = random.Random(stable_seed(seed, unit.name))
    weights = [sum(d.page_tokens) + 1 for d in docs]
    result = UnitResult(samples=[])
    remaining, attempts = unit.tokens, 0
    budget = max_attempts * max(1, round(unit.tokens / unit.bucket.mean))
    while attempts < budget and remaining > 0:
        lengths = sample_lengths(remaining, unit.bucket, rng)
        count = min(64, max(2, int(len(lengths) * BATCH_OVERDRAW)))
        draws = [_draw(unit, docs, weights, rng, lengths[i % len(lengths)], questions, depth_power)
                 for i in range(count)]
        proposed = iter(generator.propose_many([r for d in draws for r in (d.request, *d.followups)]))
        for draw in draws:
            candidate = next(proposed)
            offered = [next(proposed) for _ in draw.followups]
            attempts += 1
            target = fit_length(draw.target_tokens, remaining, unit.bucket)
            layout = _accept(draw, candidate, offered, unit, template, result, target, questions - 1)
            if layout is None:
                continue
            if abs(remaining - layout.tokens) >= remaining:
                result.stats["stopped_at_plan"] += 1
                return result
            if layout.followups:
                result.stats["followups"] += len(layout.followups)
            result.samples.append(_record(unit, candidate, layout, len(result.samples)))
            remaining -= layout.tokens
            if remaining <= 0:
                break
    if remaining > 0:
        result.stats["unit_short_tokens"] += remaining
    return result


def _accept(draw: _Draw, candidate: QACandidate | None, offered: Sequence[QACandidate | None], unit: Unit,
            template: ChatTemplate, result: UnitResult, target_tokens: int, max_followups: int) -> Layout | None:
    """The layout of a verified candidate (and of the verified follow-ups that fit) at ``target_tokens``, or None
    after counting why it was dropped."""
    doc = draw.request.doc
    if candidate is None:
        result.stats["no_candidate"] += 1
        return None
    reason = verify(candidate, doc.page_texts, doc.truth)
    if reason is not None:
        result.stats["dropped_unverified"] += 1
        result.drop_reasons[reason.split(":")[0][:60]] += 1
        return None
    followups = [c for c in offered if c is not None and verify(c, doc.page_texts, doc.truth) is None]
    if len(followups) < len(offered):
        result.stats["followups_unverified"] += len(offered) - len(followups)
    layout = layout_sample(candidate, doc, draw.fillers, bucket=unit.bucket, target_tokens=target_tokens,
                           depth=draw.depth, template=template, followups=followups, max_followups=max_followups)
    if isinstance(layout, str):
        result.stats["dropped_length"] += 1
        result.drop_reasons[layout] += 1
        return None
    return layout


def _record(unit: Unit, candidate: QACandidate, layout: Layout, index: int) -> SampleRecord:
    extras = {"candidate": json.loads(candidate_to_json(candidate)), "unit": unit.name}
    if layout.followup_candidates:
        extras["followups"] = [json.loads(candidate_to_json(c)) for c in layout.followup_candidates]
    metadata = json.dumps(extras, sort_keys=True, ensure_ascii=False)
    sample_id = hashlib.sha256(f"{unit.name}/{index}/{metadata}".encode()).hexdigest()[:20]
    return SampleRecord(sample_id=sample_id, task=unit.task, bucket=unit.bucket.label, tokens=layout.tokens,
                        pages=layout.pages, question=layout.question, answer=candidate.answer,
                        answer_format=candidate.answer_format, evidence=layout.evidence, depth=layout.depth,
                        metadata=metadata, followups=layout.followups)
