"""An answer -> a score in [0, 1], with the metric the item names (mmprolong.eval.metrics does the work)."""

from __future__ import annotations

import json
import re

from mmprolong.eval import metrics
from mmprolong.eval.items import EvalItem

ANSWER_PREFIX = "Answer:"
# MMLongBench's default_post_process: these metrics score the raw answer and the parsed one and keep the better.
MAX_OVER_PARSED = ("niah", "soft-acc", "mc-acc")


def parse_answer(text: str, prefix: str = ANSWER_PREFIX) -> str:
    """MMLongBench's ``parse_output``: the text after the first ``prefix`` in any case ("answer: 42" -> "42"),
    else all of it; then one more leading ``prefix`` is dropped, since chat models often repeat the one the
    prompt showed ("Answer: Answer: 42" -> "42"), and the rest is stripped."""
    text = str(text)
    found = re.search(re.escape(prefix), text, flags=re.IGNORECASE)
    rest = text[found.end():] if found else text
    return re.sub(f"^{re.escape(prefix)}", "", rest.strip(), flags=re.IGNORECASE).strip()


def score_item(item: EvalItem, prediction: str) -> tuple[float, dict]:
    """(score, details). niah-all: the fraction of needles whose code the answer contains (sub-EM on the raw and
    the parsed answer); MAX_OVER_PARSED metrics: the better of the raw and the parsed answer, as MMLongBench
    scores them; binary-acc: the raw answer with the item's default label (metadata "default_label"); others:
    ``metrics.score`` of the parsed answer. Raises ValueError when the gold does not fit its metric (reported as
    the item's error). For the niah suite, details["in_place"] is partial credit: the mean over the needles of the
    share of the code's characters the answer has at their place (``metrics.code_places``), and where the
    needles' codes are of one length, details["in_place_by_position"]: that share per character of the code, and
    on a lookalikes item details["lookalike"]: 1 when the answer holds a code of a note it was not asked about."""
    parsed = parse_answer(prediction)
    golds = list(item.answers)
    details: dict = {"parsed": parsed}
    if item.suite == "niah":  # needle codes: partial credit beside sub-EM, the mean over the needles
        places = [metrics.code_places(prediction, gold) for gold in golds]
        details["in_place"] = round(sum(sum(p) / len(p) for p in places) / len(places), 6)
        if len({len(p) for p in places}) == 1:
            details["in_place_by_position"] = [round(sum(column) / len(places), 6) for column in zip(*places)]
        decoys = [note["code"] for note in json.loads(item.metadata or "{}").get("lookalikes", [])]
        if decoys:
            details["lookalike"] = int(any(metrics.substring_exact_match(prediction, code) for code in decoys))
    if item.metric == "niah-all":
        found = [max(metrics.substring_exact_match(prediction, gold), metrics.substring_exact_match(parsed, gold))
                 for gold in golds]
        return sum(found) / len(found), {**details, "found": found}
    if item.metric in MAX_OVER_PARSED:
        gold = golds if item.metric != "mc-acc" else golds[0]
        value = max(metrics.score(item.metric, prediction, gold), metrics.score(item.metric, parsed, gold))
        return value, details
    if item.metric == "binary-acc":
        default = int(json.loads(item.metadata).get("default_label", -1))
        return metrics.score("binary-acc", prediction, golds[0], default_label=default), {"default_label": default}
    gold = golds[0] if len(golds) == 1 else golds
    value = metrics.score(item.metric, parsed, gold, item.answer_format, question=item.question)
    return float(value), {"parsed": parsed}


def details_json(details: dict) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False)
