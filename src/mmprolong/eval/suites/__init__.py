"""Eval suites: each builds the EvalItems of its grid from a SuiteContext (deterministic from the seed).

niah           multimodal needle in a haystack of store pages (suites/niah.py)
docvqa         MMLongBench-Doc / LongDocURL / SlideVQA cut or padded to each length (suites/docvqa.py)
synth-heldout  synth's task builders on held-out store documents (suites/heldout.py)
mmniah         MMLongBench's MM-NIAH / visual haystack files rescaled to each length (suites/mmniah.py)
"""

from __future__ import annotations

from mmprolong.eval.items import EvalItem
from mmprolong.eval.suites.common import SuiteContext


def build_items(ctx: SuiteContext) -> list[EvalItem]:
    suite = ctx.config.suite
    if suite == "niah":
        from mmprolong.eval.suites.niah import build_items as build
    elif suite == "docvqa":
        from mmprolong.eval.suites.docvqa import build_items as build
    elif suite == "mmniah":
        from mmprolong.eval.suites.mmniah import build_items as build
    else:
        from mmprolong.eval.suites.heldout import build_items as build
    return build(ctx)
