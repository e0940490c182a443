"""What every suite shares: the build context, exact counting, depth measurement and filler choice.

Length tolerance: an item of requested length L has ``L - tolerance <= tokens <= L`` where ``tokens`` is
``ChatTemplate.count(parts, answer)``. Pages are indivisible, so by default the tolerance is one page: the
largest span (pads + vision start/end, + its label for docvqa) of the pages that could have been added. A
fixed ``EvalConfig.length_tolerance`` overrides it; an item that cannot land inside is a per-item error.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmprolong.eval.config import EvalConfig
from mmprolong.eval.items import EvalItem, ItemImage, Part, make_item
from mmprolong.eval.pages import StorePages, span
from mmprolong.models import ModelFamily
from mmprolong.synth.build import stable_seed
from mmprolong.template import ChatTemplate
from mmprolong.tokens import IMAGE_WRAPPER_TOKENS


def rng_for(*parts: object) -> random.Random:
    return random.Random(stable_seed(*parts))


@dataclass
class SuiteContext:
    """Everything a suite needs to build items; items depend on nothing else."""

    config: EvalConfig
    template: ChatTemplate
    min_pixels: int
    max_pixels: int
    out_dir: Path
    records: dict[tuple[str, int], int] = field(default_factory=dict)  # (task, length) -> questions in the source
    _store: StorePages | None = field(default=None, repr=False)

    @property
    def store(self) -> StorePages:
        if self._store is None:
            self._store = StorePages(self.config.store_dir, family=self.family, min_pixels=self.min_pixels,
                                     max_pixels=self.max_pixels)
        return self._store

    @property
    def family(self) -> ModelFamily:
        """The model family items are laid out and counted for (the template's)."""
        return self.template.family

    def image_tokens(self, height: int, width: int) -> int:
        """Image pad tokens of a ``height`` x ``width`` image for the model at the eval budget."""
        return self.family.image_tokens(height, width, min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def tolerance(self, page_spans: Sequence[int]) -> int:
        if self.config.length_tolerance >= 0:
            return self.config.length_tolerance
        return max(page_spans, default=0)


def answer_text(answers: Sequence[str]) -> str:
    """The answer counted in an item's length: the gold, or the golds joined (several needles)."""
    return ", ".join(answers)


def template_parts(parts: Sequence[Part]) -> list:
    return [p if isinstance(p, str) else p.vision_tokens for p in parts]


def count(template: ChatTemplate, parts: Sequence[Part], answers: Sequence[str]) -> int:
    return template.count(template_parts(parts), answer_text(answers))


def prompt_count(template: ChatTemplate, parts: Sequence[Part]) -> int:
    """len(prompt_ids(parts)) without building the pad runs: count() minus the answer's closing tokens."""
    return template.count(template_parts(parts), "") - 1 - len(template.newline)


def achieved_depth(parts: Sequence[Part], first: int, skip: Sequence[int] = ()) -> float:
    """Where image ``first`` (an index among the images) starts, as a fraction of the image tokens of the
    context: image tokens before it / all image tokens, both leaving out the images in ``skip`` (the needles
    or evidence themselves). 0 = first, 1 = after every other image."""
    images = [p for p in parts if isinstance(p, ItemImage)]
    skipped = set(skip)
    total = sum(span(im) for i, im in enumerate(images) if i not in skipped)
    before = sum(span(im) for i, im in enumerate(images[:first]) if i not in skipped)
    return round(before / total, 6) if total else 0.0


def finish_item(ctx: SuiteContext, *, suite: str, task: str, length: int, depth: float, parts: Sequence[Part],
                question: str, answers: Sequence[str], answer_format: str, metric: str,
                evidence: Sequence[int], skip: Sequence[int] | None = None, metadata: dict | None = None) -> EvalItem:
    """An EvalItem with its exact token counts and achieved depth."""
    parts = tuple(parts)
    depth_of = achieved_depth(parts, evidence[0], evidence if skip is None else skip) if evidence else -1.0
    return make_item(suite=suite, task=task, length=length, depth=depth, parts=parts, question=question,
                     answers=tuple(str(a) for a in answers), answer_format=answer_format, metric=metric,
                     tokens=count(ctx.template, parts, answers), prompt_tokens=prompt_count(ctx.template, parts),
                     evidence=tuple(evidence), achieved_depth=depth_of,
                     metadata=json.dumps(metadata or {}, sort_keys=True, default=str))


def pick_fillers(docs: Sequence, rng: random.Random, *, need_each_side: int, exclude: set[str] = frozenset()) -> list:
    """Documents in a seeded order until both the even-indexed (left) and odd-indexed (right) ones hold
    ``need_each_side`` page tokens: synth's ``layout_sample`` pads left with fillers 0, 2, ... and right with
    1, 3, ..., so either side can take the whole context when the evidence sits at depth 0 or 1."""
    order = [d for d in docs if d.doc_id not in exclude]
    rng.shuffle(order)
    sides, chosen = [0, 0], []
    for doc in order:
        if min(sides) >= need_each_side:
            break
        sides[len(chosen) % 2] += sum(t + IMAGE_WRAPPER_TOKENS for t in doc.page_tokens)
        chosen.append(doc)
    return chosen
