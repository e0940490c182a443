"""An answer -> a score in [0, 1], with the metric the item names (mmprolong.eval.metrics does the work)."""

from __future__ import annotations

import json

from mmprolong.eval import metrics
from mmprolong.eval.items import EvalItem

ANSWER_PREFIX = "Answer:"


def parse_answer(text: str) -> str:
    """The text after "Answer:" when the model used that format (MMLongBench's prompts ask for it), else all."""
    text = str(text).strip()
    if ANSWER_PREFIX in text:
        return text.split(ANSWER_PREFIX, 1)[1].strip()
    return text


def score_item(item: EvalItem, prediction: str) -> tuple[float, dict]:
    """(score, details). niah: sub-EM (the better of the raw and parsed answer, as MMLongBench scores);
    niah-all: the fraction of needles whose code the answer contains; others: ``metrics.score``.
    Raises ValueError when the gold does not fit its metric (reported as the item's error)."""
    parsed = parse_answer(prediction)
    if item.metric == "niah-all":
        found = [max(metrics.substring_exact_match(prediction, gold), metrics.substring_exact_match(parsed, gold))
                 for gold in item.answers]
        return sum(found) / len(found), {"found": found, "parsed": parsed}
    if item.metric == "niah":
        value = max(metrics.score("niah", prediction, list(item.answers)),
                    metrics.score("niah", parsed, list(item.answers)))
        return value, {"parsed": parsed}
    gold = item.answers[0] if len(item.answers) == 1 else list(item.answers)
    value = metrics.score(item.metric, parsed, gold, item.answer_format, question=item.question)
    return float(value), {"parsed": parsed}


def details_json(details: dict) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False)
