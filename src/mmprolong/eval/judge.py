"""LLM answer extraction and the LLM judge for the docvqa suite, through any OpenAI-compatible endpoint.

Two published scoring pipelines put an LLM between a model's free-form answer and its score
(``EvalConfig.llm_scoring``):

extract  MMLongBench-Doc (eval/extract_answer.py with eval/prompt_for_answer_extraction.md) and LongDocURL
         (eval/extract_concise_answer_from_vllm.py with its eval/prompt_for_answer_extraction.md) first have
         GPT-4o pull the short answer and its format out of the response, then score that with their rule-based
         scorers (``metrics.mmlongbench_doc_score`` / ``longdocurl_score``, the items' metric under
         ``docvqa_metric=native``). Our two prompts mirror theirs in what they ask (a short answer in one of
         Integer / Float / String / List, "Not answerable" when the response finds no answer, "Fail to answer"
         when it cannot read the document; LongDocURL also drops what comes from pages the question excludes)
         and in the reply each parser reads (MMLongBench-Doc: "Extracted answer:" / "Answer format:" lines;
         LongDocURL: <concise_answer> / <answer_format> tags); the wording and examples are ours. A reply that
         cannot be parsed scores 0 ("Fail to extract", LongDocURL's rule). LongDocURL evaluates the extracted
         text as a Python literal (numbers, lists); we do the same with ``ast.literal_eval``. SlideVQA's
         official evaluation has no extraction step: its items keep their rule-based score.
judge    MMLongBench v1.1 (utils.py ``eval_docqa_score_with_llm_judge`` / ``eval_docqa_list_score_with_llm_judge``,
         prompts DOC_QA_JUDGE_PROMPT / DOC_QA_LIST_F1_JUDGE_PROMPT in utils_prompt.py) for all three datasets:
         the judge sees the question, the reference and the parsed answer. Integer, Float, String and None
         answers are graded 0 or 1 (the final answer only; every sub-question right; equivalent numbers,
         synonyms and plural forms accepted, close numbers not); a List answer is read as a list whose items
         and covered reference items the judge counts, scored by their F1 (``metrics.judge_list_f1``). A verdict
         that cannot be parsed scores 0, as in MMLongBench. Our prompts paraphrase theirs with our own examples
         and ask for the verdict as one closing line of JSON.

Replies are cached one file per request (keyed by the exact payload: model, prompt, max_tokens), so a rerun,
or a rescoring of the same answers, asks nothing twice; requests run ``judge_concurrency`` at a time with
``mmprolong.chat_client``'s retries. Generation is greedy (temperature 0) for reproducible scores, where
MMLongBench's judge leaves the API's default temperature. A request that still fails makes the item an error
(counted apart, never a 0); an empty reply is a verdict that cannot be parsed. Each rescored result keeps
its rule-based score in ``metadata["rule_score"]``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmprolong.chat_client import ChatClient, JsonFileCache, RequestFailure, map_bounded, message_content, payload_key
from mmprolong.eval import metrics
from mmprolong.eval.config import EvalConfig
from mmprolong.eval.items import EvalItem, EvalResult
from mmprolong.eval.scoring import details_json, parse_answer

EXTRACTING_METRICS = ("mmlongbench-doc", "longdocurl")  # the scorers whose official pipeline extracts first

# --- extraction ----------------------------------------------------------------------------------------------

_EXTRACT_TASK = (
    "Below are a question about a document and a model's free-form response to it. Pull out of the response "
    "the answer it gives, as briefly as possible, in one of these formats: Integer, Float, String or List (a "
    "Python-style list such as ['a', 'b']). If the response says the document does not hold the answer, the "
    'answer is "Not answerable". If the response only says it cannot read or see the document or its images, '
    'the answer is "Fail to answer".'
)
_EXTRACT_PAGES = (
    "If the question limits where to look (for example 'on pages 7-20') and the response also uses other pages, "
    "leave out what comes from those other pages."
)
_EXTRACT_REPLY = {
    "mmlongbench-doc": "Reply with exactly two lines:\nExtracted answer: <the answer>\nAnswer format: <Integer, "
                       "Float, String or List>",
    "longdocurl": "Reply with exactly two lines, the answer and its format inside these tags:\nExtracted answer: "
                  "<concise_answer>the answer</concise_answer>\nAnswer format: <answer_format>Integer, Float, "
                  "String or List</answer_format>",
}
_EXTRACT_EXAMPLES = (
    ("Which three cities host the company's offices?",
     "The report lists offices in Oslo, Quito and Perth, each opened after 2015.", "['Oslo', 'Quito', 'Perth']",
     "List"),
    ("How many employees did the company have in 2020?",
     "According to the table on page 4, the headcount reached 1,250 people in 2020, up from 1,100 a year before.",
     "1250", "Integer"),
    ("What share of revenue came from exports in 2019?",
     "The document discusses domestic sales only; no export figures for 2019 are given.", "Not answerable",
     "String"),
    ("What colour is the logo on the cover?",
     "I'm sorry, the page images are too blurry for me to make out any details.", "Fail to answer", "String"),
)
FAIL_TO_EXTRACT = metrics.FAIL_TO_EXTRACT


def _extract_line(style: str, answer: str, answer_format: str) -> str:
    if style == "longdocurl":
        return (f"Extracted answer: <concise_answer>{answer}</concise_answer>\n"
                f"Answer format: <answer_format>{answer_format}</answer_format>")
    return f"Extracted answer: {answer}\nAnswer format: {answer_format}"


def extraction_prompt(style: str, question: str, response: str) -> str:
    """The extraction request for ``style`` (an item's metric: mmlongbench-doc or longdocurl)."""
    rules = _EXTRACT_TASK + (" " + _EXTRACT_PAGES if style == "longdocurl" else "")
    examples = "\n\n".join(f"Question: {q}\nResponse: {r}\n{_extract_line(style, a, f)}"
                           for q, r, a, f in _EXTRACT_EXAMPLES)
    return (f"{rules}\n{_EXTRACT_REPLY[style]}\n\nExamples:\n\n{examples}\n\nNow extract the answer of this "
            f"response.\n\nQuestion: {question}\nResponse: {response}")


def parse_extraction(style: str, reply: str) -> str | None:
    """The extracted answer text of a reply, None when the reply does not hold one in the required form."""
    if style == "longdocurl":
        answer = re.findall(r"<concise_answer>(.*?)</concise_answer>", reply, re.DOTALL)
        answer_format = re.findall(r"<answer_format>(.*?)</answer_format>", reply, re.DOTALL)
        return answer[0] if answer and answer_format else None
    if "Extracted answer:" not in reply:
        return None
    return reply.split("Answer format:")[0].split("Extracted answer:")[1].strip()


def extracted_value(style: str, text: str) -> Any:
    """What the official scorer receives: MMLongBench-Doc the text; LongDocURL the Python literal the text holds
    (a number, a list; a set as a list), else the text."""
    if style != "longdocurl":
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    return list(value) if isinstance(value, (set, frozenset)) else value


# --- judging -----------------------------------------------------------------------------------------------

_JUDGE_SINGLE = """You are grading a student's answer to a question about a document, against the reference answer.
- Look only at the student's final answer, not at the steps that lead to it.
- Give 1 point when the final answer matches the reference answer and 0 points otherwise. When the question has \
several parts, every part must be right for 1 point; an answer that adds something the reference does not have \
gets 0 points.
- Accept what means the same: one number written in two ways (25% and 0.25, 1,200 and 1200), a unit the question \
already implies, synonyms and abbreviations (USA and United States), singular and plural. Numbers that differ, \
however slightly, do not match, and neither do things that are only related.
- Give your reasons in under 120 words, then end with one line of JSON: {"score": 1} or {"score": 0}.

Example 1
Question: How many branches did the bank open in 2021?
Reference answer: 14
Student answer: The bank opened 14 new branches that year.
Reasons: The student's final answer is 14 branches, the reference is 14.
{"score": 1}

Example 2
Question: What was the average ticket price, in euros?
Reference answer: 12.5
Student answer: About 12.4 euros.
Reasons: 12.4 is not 12.5; a close number is still a different number.
{"score": 0}

Example 3
Question: In which year did the plant open?
Reference answer: 1998
Student answer: It opened in 1998 and again in 2004.
Reasons: The student gives two years where the reference has one; the extra year makes the answer wrong.
{"score": 0}

Now grade this case.
Question: {question}
Reference answer: {reference}
Student answer: {prediction}
Reasons:"""

_JUDGE_LIST = """You are grading a student's answer to a question whose reference answer is a list of items.
- First read the list of items the student's answer gives, leaving aside filler such as "The answer is".
- Then decide for each reference item whether the student's list covers it: the item is named, or stated in words \
that mean the same (one number written in two ways, synonyms, singular and plural). Items that are only related \
do not cover it.
- Give your reasons in under 150 words, then end with one line of JSON: {"answer_items": <how many items the \
student's list has>, "covered_items": <how many reference items it covers>}.

Example 1
Question: Which three rivers cross the region?
Reference answer: ["Tagus", "Douro", "Mondego"]
Student answer: The Douro, the Tagus and the Mondego.
Reasons: The student lists three rivers; all three reference rivers are among them.
{"answer_items": 3, "covered_items": 3}

Example 2
Question: Which products were discontinued in 2020?
Reference answer: ["desk lamp", "floor lamp"]
Student answer: Desk lamps, ceiling fans and wall clocks.
Reasons: The student lists three products; "desk lamps" covers "desk lamp"; "floor lamp" is missing.
{"answer_items": 3, "covered_items": 1}

Now grade this case.
Question: {question}
Reference answer: {reference}
Student answer: {prediction}
Reasons:"""

_NUMBER = r"-?\d+(?:\.\d+)?"


def judge_prompt(question: str, reference: str, prediction: str, *, is_list: bool) -> str:
    values = {"question": question, "reference": reference, "prediction": prediction}
    return re.sub(r"\{(question|reference|prediction)\}", lambda m: values[m.group(1)],
                  _JUDGE_LIST if is_list else _JUDGE_SINGLE)


def _last_json_number(reply: str, key: str) -> float | None:
    found = re.findall(rf'"{key}"\s*:\s*({_NUMBER})', reply)
    return float(found[-1]) if found else None


def parse_single_verdict(reply: str) -> float | None:
    """The 0/1 score of a single-answer verdict (clipped to [0, 1]), None when it holds none."""
    value = _last_json_number(reply, "score")
    return None if value is None else min(max(value, 0.0), 1.0)


def parse_list_verdict(reply: str) -> tuple[float, float] | None:
    """(items in the answer, reference items covered) of a list verdict, None when it holds them not."""
    answered, covered = _last_json_number(reply, "answer_items"), _last_json_number(reply, "covered_items")
    return None if answered is None or covered is None else (answered, covered)


def reference_items(gold: str) -> list:
    """The items of a List gold (JSON, or the Python list literal MMLongBench-Doc writes)."""
    items = metrics.parse_list(gold)
    if not items:
        raise ValueError(f"gold = {gold!r}: a List answer needs at least one element")
    return items


# --- the scorer ---------------------------------------------------------------------------------------------


class LLMScorer:
    """Rescores the ok docvqa results of a run with answer extraction or the judge (``config.llm_scoring``)."""

    def __init__(self, config: EvalConfig, out_dir: str | Path, *, api_key: str | None = None,
                 show_progress: bool = False):
        self.mode = config.llm_scoring
        self.model, self.max_tokens = config.judge_model, config.judge_max_tokens
        self.concurrency = config.judge_concurrency
        self.client = ChatClient(config.judge_base_url, api_key=api_key, timeout_s=config.judge_timeout_s,
                                 max_retries=config.judge_retries, count=self._count)
        self.cache = JsonFileCache(config.judge_cache_dir or Path(out_dir) / "judge_cache")
        self.show_progress = show_progress
        self.stats: Counter = Counter()  # rescored, asked, cached, http_calls, retried, unparsed, failed
        self._lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def applies(self, item: EvalItem) -> bool:
        return item.suite == "docvqa" and (self.mode == "judge" or item.metric in EXTRACTING_METRICS)

    def rescore(self, items: Sequence[EvalItem], results: Sequence[EvalResult]) -> list[EvalResult]:
        """``results`` with every ok result this mode applies to rescored; the others as they were."""
        by_id = {item.item_id: item for item in items}
        jobs = [i for i, r in enumerate(results) if r.status == "ok" and self.applies(by_id[r.item_id])]
        rescored = map_bounded(lambda i: self._rescore_one(by_id[results[i].item_id], results[i]), jobs,
                               max_workers=self.concurrency, desc=f"{self.mode} {self.model}",
                               show_progress=self.show_progress)
        out = list(results)
        for i, result in zip(jobs, rescored):
            out[i] = result
        return out

    def summary(self) -> dict:
        return {"mode": self.mode, "model": self.model, "url": self.client.url, **dict(sorted(self.stats.items()))}

    def _rescore_one(self, item: EvalItem, result: EvalResult) -> EvalResult:
        details = json.loads(result.metadata)
        try:
            score, verdict = (self._extract(item, result.prediction) if self.mode == "extract"
                              else self._judge(item, result.prediction))
        except RequestFailure as failure:
            self._count("failed")
            return dataclasses.replace(result, status="error", score=0.0, error=f"{self.mode} LLM {failure}")
        except (ValueError, TypeError) as exc:
            return dataclasses.replace(result, status="error", score=0.0, error=f"scoring failed: {exc}")
        self._count("rescored")
        details.update({"rule_score": result.score, self.mode: verdict})
        return dataclasses.replace(result, score=round(float(score), 6), metadata=details_json(details))

    def _extract(self, item: EvalItem, response: str) -> tuple[float, dict]:
        style = item.metric
        reply = self._ask(extraction_prompt(style, item.question, response))
        text = parse_extraction(style, reply)
        gold = item.answers[0] if len(item.answers) == 1 else list(item.answers)
        if text is None:
            self._count("unparsed")
            return 0.0, {"reply": reply, "extracted": FAIL_TO_EXTRACT}
        value = extracted_value(style, text)
        score = metrics.score(style, value, gold, item.answer_format)
        return score, {"reply": reply, "extracted": text}

    def _judge(self, item: EvalItem, response: str) -> tuple[float, dict]:
        prediction = parse_answer(response)
        gold = item.answers[0] if len(item.answers) == 1 else json.dumps(list(item.answers))
        is_list = item.answer_format == "List"
        reply = self._ask(judge_prompt(item.question, gold, prediction, is_list=is_list))
        if not is_list:
            value = parse_single_verdict(reply)
            if value is None:
                self._count("unparsed")
            return value or 0.0, {"reply": reply, "verdict": value}
        counts = parse_list_verdict(reply)
        if counts is None or (counts[1] > 0 and counts[0] <= 0):
            self._count("unparsed")
            return 0.0, {"reply": reply, "verdict": None}
        answered, covered = counts
        score = metrics.judge_list_f1(covered=covered, n_pred=answered, n_gold=len(reference_items(gold)))
        return score, {"reply": reply, "verdict": {"answer_items": answered, "covered_items": covered}}

    def _ask(self, prompt: str) -> str:
        payload = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.0,
                   "max_tokens": self.max_tokens}
        key = payload_key(payload)
        hit = self.cache.get(key)
        if hit is not None and isinstance(hit.get("content"), str):
            self._count("cached")
            return hit["content"]
        self._count("asked")
        content = message_content(self.client.post(payload, rng=random.Random(key)), allow_empty=True)
        self.cache.put(key, {"model": self.model, "content": content})
        return content
