"""synth-heldout: synth's own task builders on documents held out from training.

The split (``mmprolong.split``) is the one synth uses to leave these documents out of the mixture: give
both stages the same ``heldout_fraction``.

Items: for each (length, depth, task, index) cell a held-out document is drawn (seeded); synth's offline
generators (ground truth when the corpus has it, else text-layer clozes) propose a question, ``qa.verify``
checks it against the page text, and ``layout_sample`` places its evidence at the depth, padding with other
store documents until the exact count lands in [L - tolerance, L]. Scored with MMLongBench's rule-based doc-QA
score by the answer's format; the OCR tasks (ocr-full: transcribe a run of pages that fills the length, no
fillers; ocr-needle: transcribe 1-3 named pages among the others) by the transcript's character similarity, and a
transcript longer than ``max_new_tokens`` is an error item (it could not be answered in full).
"""

from __future__ import annotations

from pathlib import Path

from mmprolong.eval.config import depth_grid
from mmprolong.eval.items import EvalItem, error_item
from mmprolong.eval.suites.common import SuiteContext, finish_item, pick_fillers, rng_for
from mmprolong.split import heldout_split

DEFAULT_TASKS = ("extract-single", "extract-multi", "reasoning")
ATTEMPTS = 24  # documents tried per item before it is reported as an error
METRIC = "mmlongbench-docqa"
OCR_METRIC = "char-similarity"


def metric_of(task: str) -> str:
    return OCR_METRIC if task.startswith("ocr-") else METRIC


def build_items(ctx: SuiteContext) -> list[EvalItem]:
    from mmprolong.synth.generators.factory import FirstOf
    from mmprolong.synth.generators.textlayer import TextLayerGenerator
    from mmprolong.synth.generators.truth import TruthGenerator

    config = ctx.config
    docs = ctx.store.documents(truth_dir=config.truth_dir or _ingested_folder(config.store_dir))
    _, held_ids = heldout_split([d.doc_id for d in docs], config.heldout_fraction)
    held = [d for d in docs if d.doc_id in set(held_ids)]
    generator = FirstOf([TruthGenerator(anchor_share=config.heldout_anchor_share), TextLayerGenerator()])
    tolerance = ctx.tolerance([t + 2 for d in docs for t in d.page_tokens])
    if "ocr-full" in config.heldout_tasks:  # its sample grows by whole pages and their transcripts, no fillers
        transcribed = ctx.tolerance([t + 2 + len(ctx.template.text_ids(x)) for d in held
                                     for t, x in zip(d.page_tokens, d.page_texts)])
    items = []
    for length in config.lengths:
        for task in config.heldout_tasks:
            tolerance_of_task = transcribed if task == "ocr-full" else tolerance
            for depth in depth_grid(config.depth_steps):
                for index in range(config.items_per_cell):
                    items.append(_build_one(ctx, docs, held, generator, tolerance_of_task, length, task, depth,
                                            index))
    return items


def _ingested_folder(store_dir: str) -> str | None:
    """The PDF folder the store was ingested from, where a generated corpus keeps its truth files (as synth
    defaults to it, so held-out questions come from the generator that wrote the training data); None if gone."""
    from mmprolong.synth.store import read_store_summary

    folder = read_store_summary(store_dir).get("pdf_dir")
    return folder if folder and Path(folder).is_dir() else None


def _build_one(ctx: SuiteContext, docs, held, generator, tolerance: int, length: int, task: str, depth: float,
               index: int) -> EvalItem:
    from mmprolong.synth.generators import QARequest
    from mmprolong.synth.layout import layout_sample
    from mmprolong.synth.plan import Bucket
    from mmprolong.synth.qa import verify

    def fail(reason: str) -> EvalItem:
        return error_item(suite="synth-heldout", task=task, length=length, depth=depth, metric=metric_of(task),
                          error=reason, metadata={"index": index})

    if not held:
        return fail(f"no held-out document: none of the store's {len(docs)} documents falls in the "
                    f"heldout_fraction={ctx.config.heldout_fraction} split")
    rng = rng_for("heldout", ctx.config.seed, length, task, depth, index)
    reasons: dict[str, int] = {}
    target = length  # ocr-full sizes its page run by an estimate of the transcript: lowered when it overshoots
    for _ in range(ATTEMPTS):
        doc = rng.choice(held)
        request = QARequest(doc=doc, task=task, seed=rng.getrandbits(63), target_tokens=target)
        candidate = generator.propose_many([request])[0]
        reason = "no candidate" if candidate is None else verify(candidate, doc.page_texts, doc.truth)
        if reason is None:
            fillers = pick_fillers(docs, rng, need_each_side=length, exclude={doc.doc_id})
            layout = layout_sample(candidate, doc, fillers, bucket=Bucket(max(1, length - tolerance), length + 1),
                                   target_tokens=length, depth=depth, template=ctx.template)
            if not isinstance(layout, str):
                item = _item(ctx, doc, candidate, layout, length, task, depth, index, fillers)
                if item.tokens - item.prompt_tokens <= ctx.config.max_new_tokens or not task.startswith("ocr-"):
                    return item
                layout = f"transcript longer than max_new_tokens={ctx.config.max_new_tokens}"
            reason = layout
            if task == "ocr-full" and reason == "evidence longer than the bucket":
                target = target * 9 // 10
        key = reason.split(":")[0][:60]
        reasons[key] = reasons.get(key, 0) + 1
    return fail(f"no verified {task} question fits {length} tokens after {ATTEMPTS} tries: {reasons}")


def _item(ctx: SuiteContext, doc, candidate, layout, length, task, depth, index, fillers) -> EvalItem:
    store = ctx.store
    images = [store.image(r.doc_id, r.page_index) for r in layout.pages]
    first, last = layout.evidence[0], max(layout.evidence)
    block = list(range(first, last + 1))  # the evidence block layout_sample keeps whole
    return finish_item(ctx, suite="synth-heldout", task=task, length=length, depth=depth,
                       parts=images + [layout.question], question=layout.question, answers=[candidate.answer],
                       answer_format=candidate.answer_format, metric=metric_of(task), evidence=list(layout.evidence),
                       skip=block, metadata={"doc": doc.doc_id, "index": index, "generator": candidate.generator,
                                             "evidence_pages": list(candidate.evidence_pages),
                                             "fillers": [d.doc_id for d in fillers]})
