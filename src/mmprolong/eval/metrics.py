"""Rule-based answer metrics of the long-document VQA benchmarks, as pure functions.

Each scorer follows its benchmark's official evaluation code (read, not copied), because that code
produced the published numbers; where the code differs from the paper or has a quirk that changes a
score, the docstring says so and we keep the code's behaviour.

Sources:
  ANLS              Biten et al. 2019 (ST-VQA, arXiv:1905.13648), as used by DocVQA / InfographicVQA.
  SQuAD EM / F1     Rajpurkar et al. 2016, official v1.1 script (normalise: lower, strip punctuation,
                    drop a/an/the, collapse whitespace).
  sub-EM            EdinburghNLP/MMLongBench utils.py (`substring_exact_match_score`), Wang et al. 2025.
  MMLongBench-Doc   mayubo2333/MMLongBench-Doc eval/eval_score.py (Ma et al. 2024).
  LongDocURL        dengc2023/LongDocURL utils/utils_score_v3.py + utils/calculate_metrics.py
                    (Deng et al. 2024).
  MMLongBench docqa EdinburghNLP/MMLongBench utils.py (`eval_docqa_score`): the relaxed rule-based
                    doc-VQA score MMLongBench applies to MMLongBench-Doc, LongDocURL and SlideVQA.
  SlideVQA          nttmdlab-nlp/SlideVQA evaluate.py (Tanaka et al. 2023).
"""

from __future__ import annotations

import ast
import json
import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

NOT_ANSWERABLE = "Not answerable"

# Answer formats: MMLongBench-Doc spells them Str/Int/Float/List/None, LongDocURL and MMLongBench
# String/Integer/Float/List/None. Every scorer accepts both spellings.
_FORMATS = {
    "Str": "str", "String": "str",
    "Int": "int", "Integer": "int",
    "Float": "float",
    "List": "list",
    "None": "none",
}  # fmt: skip


def _canonical_format(answer_format: str | None) -> str:
    if answer_format not in _FORMATS:
        raise ValueError(f"answer_format = {answer_format!r}: use one of {sorted(_FORMATS)}")
    return _FORMATS[answer_format]


def gold_alternatives(golds: str | Sequence) -> list[str]:
    """The reference answers any of which is right: a string is one; a list holds several; a list of lists
    (alternatives grouped per answer, as MM-NIAH and MMLongBench's sets store them) is flattened one level, as
    MMLongBench's ``drqa_metric_max_over_ground_truths`` does, never turned into the text of a list."""
    if isinstance(golds, str):
        out = [golds]
    else:
        out = [str(g) for item in golds for g in (item if isinstance(item, (list, tuple)) else [item])]
    if not out:
        raise ValueError("golds is empty: give at least one reference answer")
    return out


# --------------------------------------------------------------------------------------------------
# Edit distance and ANLS
# --------------------------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Levenshtein edit distance (unit-cost insert, delete, substitute): two-row DP, O(len(a)*len(b))."""
    if len(a) < len(b):
        a, b = b, a  # rows are as long as the shorter string
    prev = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (char_a != char_b))
        prev = cur
    return prev[-1]


def _nls_above(gold: str, pred: str, threshold: float, *, length: int | None = None) -> float:
    """1 - edit_distance / length if that similarity exceeds `threshold`, else 0; 1.0 for two empties."""
    length = max(len(gold), len(pred)) if length is None else length
    similarity = 1.0 if length == 0 else 1.0 - levenshtein(gold, pred) / length
    return similarity if similarity > threshold else 0.0


def char_similarity(pred: str, gold: str) -> float:
    """How much of a transcript is right: 1 - Levenshtein(pred, gold) / max(len), case-sensitive, after runs of
    whitespace become one space (line breaks and indentation are layout, not reading). The 1 - NED that OCR
    benchmarks report; unthresholded, so a half-read page scores about 0.5 rather than 0 as under ANLS."""
    pred, gold = " ".join(pred.split()), " ".join(gold.split())
    return _nls_above(gold, pred, -1.0)


def anls(pred: str, golds: str | Sequence[str], *, threshold: float = 0.5, case_sensitive: bool = False) -> float:
    """ANLS of one prediction (Biten et al. 2019): max over golds of NLS = 1 - d/max(len), kept only
    when the normalised distance is below `threshold` (so NLS must exceed 1 - threshold = 0.5).

    Leading/trailing whitespace is stripped and inner whitespace kept. Case follows the benchmark: the
    ST-VQA / DocVQA challenge evaluation compares lower-cased strings (the default); MMLongBench's
    ``anls_compute`` compares them as written (``case_sensitive=True``, see ``mmlongbench_anls``).
    Average this over questions for the ANLS.
    """
    def fold(text: str) -> str:
        return text.strip() if case_sensitive else text.strip().lower()

    pred_norm = fold(str(pred))
    return max(_nls_above(fold(g), pred_norm, 1.0 - threshold) for g in gold_alternatives(golds))


def mmlongbench_anls(pred: str, gold: str) -> float:
    """MMLongBench's "anls" metric (``anls_compute(prediction, answers, threshold=-1)`` in its utils.py):
    case-sensitive, nothing stripped, and no threshold, so it is the plain normalised Levenshtein similarity."""
    pred, gold = str(pred), str(gold)
    length = max(len(gold), len(pred))
    return 1.0 if length == 0 else 1.0 - levenshtein(gold, pred) / length


# --------------------------------------------------------------------------------------------------
# SQuAD-style EM / F1 and substring EM
# --------------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, drop ASCII punctuation, drop a/an/the, collapse spaces."""
    s = "".join(ch for ch in str(s).lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _tokens_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:  # also covers empty prediction or gold (SQuAD v1.1 convention)
        return 0.0
    precision, recall = num_same / len(pred_tokens), num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(pred: str, golds: str | Sequence[str]) -> float:
    """SQuAD exact match: 1.0 if the normalised prediction equals any normalised gold, else 0.0."""
    pred_norm = normalize_answer(pred)
    return float(any(pred_norm == normalize_answer(g) for g in gold_alternatives(golds)))


def token_f1(pred: str, golds: str | Sequence[str]) -> float:
    """SQuAD token-level F1 over normalised whitespace tokens (bag of tokens), max over golds.
    0.0 when no token is shared, including an empty prediction (SQuAD v1.1 script)."""
    pred_tokens = normalize_answer(pred).split()
    return max(_tokens_f1(pred_tokens, normalize_answer(g).split()) for g in gold_alternatives(golds))


def substring_exact_match(pred: str, golds: str | Sequence[str]) -> float:
    """Substring exact match (sub-EM) of MMLongBench (Wang et al. 2025; `substring_exact_match_score`
    in EdinburghNLP/MMLongBench utils.py): 1.0 if any SQuAD-normalised gold is a substring of the
    normalised prediction. A plain substring test, so gold "10" also matches prediction "100"."""
    pred_norm = normalize_answer(pred)
    return float(any(normalize_answer(g) in pred_norm for g in gold_alternatives(golds)))


def code_places(pred: str, gold: str) -> list[int]:
    """Partial credit for a code (ours, not a benchmark's): per character of ``gold`` (stripped, case-insensitive),
    1 where the best-matching word of ``pred`` (``best_word``) has it at the same position, else 0. Gold "814485"
    and answer "Code 114485" give [0, 1, 1, 1, 1, 1]: 5/6 in place; a random 6-digit answer 1/10 on average.
    Sub-EM says whether the needle was retrieved; the mean says how near an answer came, where sub-EM is 0 for
    nearly every answer (a model that finds the note but misreads a digit scores near 1, one that answers from
    the wrong page near 0.1), and the places say which part of the code it gets right."""
    gold = gold.strip().lower()
    word = best_word(pred, gold)
    return [int(i < len(word) and word[i] == char) for i, char in enumerate(gold)]


def best_word(pred: str, gold: str) -> str:
    """The word of ``pred`` (lower-cased run of letters and digits) with the most of ``gold``'s characters at their
    place, the first of equals; "" when ``pred`` has no word."""
    gold = gold.strip().lower()
    if not gold:
        raise ValueError("code_places and best_word need a non-empty gold")
    words = re.findall(r"[0-9a-z]+", str(pred).lower())
    return max(words, key=lambda word: sum(a == b for a, b in zip(word, gold)), default="")


# --------------------------------------------------------------------------------------------------
# Helpers shared by the MMLongBench-Doc and LongDocURL scorers (same rules, slightly different cleaning)
# --------------------------------------------------------------------------------------------------

_EXACT_FULL_PATTERNS = [
    re.compile(r"\b\d+(-\d+|\s\d+)?\b"),  # a number, phone number, "123-456", "123 456"
    re.compile(r"\b\d{4}[-\s]\d{2}[-\s]\d{2}\b"),  # YYYY-MM-DD
    re.compile(r"\b\d{4}[-\s]\d{2}\b"),  # YYYY-MM
    re.compile(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}"),  # e-mail
]


def _needs_exact_match(s: str) -> bool:
    """Gold strings that must match exactly rather than by ANLS (URL, code file, "page ...", numbers
    and phone numbers, times, dates, e-mails): `is_exact_match` of both official scorers."""
    return (
        "https://" in s
        or s.endswith((".py", "ipynb"))
        or s.startswith("page")
        or "a.m." in s
        or "p.m." in s
        or any(p.fullmatch(s) for p in _EXACT_FULL_PATTERNS)
    )


def _doc_anls(gold: str, pred: str) -> float:
    """ANLS of the doc benchmarks' `anls_compute`: threshold 0.5 (0 when NLS <= 0.5), no extra
    normalisation (inputs are already cleaned), length measured on the upper-cased strings."""
    return _nls_above(gold, pred, 0.5, length=max(len(gold.upper()), len(pred.upper())))


def _is_float(s: Any) -> bool:
    try:
        float(s)
    except (TypeError, ValueError):
        return False
    return True


def _decimals(x: float) -> int:
    text = str(x)
    return len(text.split(".")[-1]) if "." in text else 3


def _is_float_equal(reference: float, prediction: float) -> bool:
    """`is_float_equal(..., include_percentage=True, is_close=True)` of both official scorers: the
    prediction matches gold, gold/100 or gold*100 (percentages), either within 1% relative tolerance
    or equal after rounding both to max(2, fewer of the two decimal counts) decimals."""
    for item in (reference / 100, reference, reference * 100):
        if math.isclose(item, prediction, rel_tol=0.01):
            return True
        ndigits = max(min(_decimals(prediction), _decimals(item)), 2)
        if round(prediction, ndigits) == round(item, ndigits):
            return True
    return False


def _float_score(gold_clean: str, pred_clean: str) -> float:
    try:
        return float(_is_float_equal(float(gold_clean), float(pred_clean)))
    except (ValueError, OverflowError):  # unparseable gold or prediction, inf*100 ...
        return 0.0


def parse_list(value: Any) -> list:
    """A list as given, or the Python/JSON list literal a string starting with "[" holds, else [value]."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = ast.literal_eval(value)  # the official code uses eval(); literal_eval is the safe subset
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass  # not a list literal: scored as one element
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _quote_paren_money_percent(s: str, currencies: str) -> str:
    s = re.sub(r"\s*\([^)]*\)", "", s).strip()  # drop parenthesised parts
    s = re.sub(r"^['\"]|['\"]$", "", s).strip()  # one leading / trailing quote
    for currency in currencies:
        s = s.strip().lstrip(currency).strip()
    return s.strip().rstrip("%").strip()


# --------------------------------------------------------------------------------------------------
# MMLongBench-Doc (Ma et al. 2024)
# --------------------------------------------------------------------------------------------------


def _mmlbdoc_clean(s: Any) -> str:
    """`get_clean_string` of MMLongBench-Doc: lower, strip, drop parentheses, a quote, "$", "%".
    (Its mile/miles/million suffix stripping discards its result, so it is a no-op and omitted.)"""
    return _quote_paren_money_percent(str(s).lower().strip(), currencies="$")


def _mmlbdoc_int(gold: Any, pred: Any) -> float:
    try:  # the gold parsed as int, the prediction as float then truncated: "3.7" counts as 3
        gold_int = int(gold) if isinstance(gold, (int, float)) else int(str(gold))
        return float(gold_int == int(float(str(pred))))
    except (ValueError, OverflowError):
        return 0.0


def _mmlbdoc_list(gold: Any, pred: Any) -> float:
    golds, preds = parse_list(gold), parse_list(pred)
    if not golds:
        raise ValueError(f"gold = {gold!r}: a List answer needs at least one element")
    if len(golds) != len(preds):
        return 0.0
    golds = sorted(_mmlbdoc_clean(g) for g in golds)
    preds = sorted(_mmlbdoc_clean(p) for p in preds)
    if _is_float(golds[0]) or _needs_exact_match(golds[0]):
        return float(golds == preds)
    return min(_doc_anls(g, p) for g, p in zip(golds, preds))


def mmlongbench_doc_score(pred: Any, gold: Any, answer_format: str) -> float:
    """Score of one extracted answer on MMLongBench-Doc (`eval_score` in eval/eval_score.py).

    - Int: exact integer equality (prediction parsed as float, then truncated).
    - Float: cleaned numbers equal within 1% relative tolerance or after rounding to >= 2 decimals,
      also accepting gold/100 and gold*100 (so 12% == 0.12 == 12).
    - Str and None ("Not answerable"): cleaned strings; exact match when the gold is a URL, file,
      number, date, time, e-mail or "page ..."; otherwise ANLS with threshold 0.5.
    - List: 0 if the lengths differ; otherwise both sorted (order-insensitive); numeric/exact-type
      lists must match exactly, other lists score the minimum element ANLS. The paper speaks of
      list F1, but the official code does this instead; we follow the code.
    """
    kind = _canonical_format(answer_format)
    if kind == "int":
        return _mmlbdoc_int(gold, pred)
    if kind == "float":
        return _float_score(_mmlbdoc_clean(gold), _mmlbdoc_clean(pred))
    if kind in ("str", "none"):
        gold_clean, pred_clean = _mmlbdoc_clean(gold), _mmlbdoc_clean(pred)
        if _needs_exact_match(gold_clean):
            return float(gold_clean == pred_clean)
        return _doc_anls(gold_clean, pred_clean)
    return _mmlbdoc_list(gold, pred)


class AccF1(NamedTuple):
    accuracy: float
    f1: float


def generalized_acc_f1(
    scores: Sequence[float], golds: Sequence[Any], preds: Sequence[Any]
) -> AccF1:
    """MMLongBench-Doc aggregate (`eval_acc_and_f1`): accuracy = mean score; generalized F1 treats
    answerable questions as positives: recall = summed score on answerable golds / their count,
    precision = the same sum / number of predictions that are not "Not answerable". F1 = 0 when
    either count is 0 or recall + precision = 0."""
    if not (len(scores) == len(golds) == len(preds)):
        raise ValueError(f"lengths differ: {len(scores)} scores, {len(golds)} golds, {len(preds)} preds")
    if not scores:
        return AccF1(0.0, 0.0)
    accuracy = sum(scores) / len(scores)
    answerable_sum = sum(s for s, g in zip(scores, golds) if g != NOT_ANSWERABLE)
    n_answerable = sum(g != NOT_ANSWERABLE for g in golds)
    n_answered = sum(p != NOT_ANSWERABLE for p in preds)
    if n_answerable == 0 or n_answered == 0:
        return AccF1(accuracy, 0.0)
    recall, precision = answerable_sum / n_answerable, answerable_sum / n_answered
    f1 = 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0
    return AccF1(accuracy, f1)


# --------------------------------------------------------------------------------------------------
# LongDocURL (Deng et al. 2024)
# --------------------------------------------------------------------------------------------------

# Unit words LongDocURL's `get_clean_string` strips, in its order. It calls str.rstrip(word), which
# strips any trailing run of the word's *characters* ("kingdom" -> "kingdo" via "m"); we keep that,
# since it applies to gold and prediction alike and decides which scores match the paper's.
_LDU_UNITS = ("kg", "mm", "m", "meters", "acres", "minutes", "mile", "miles", "million",
              "thousand", "billion")  # fmt: skip
FAIL_TO_EXTRACT = "Fail to extract"


def _ldu_clean(s: Any) -> str:
    s = str(s).lower().strip().replace(",", "")
    for unit in _LDU_UNITS:
        if s.endswith(unit):
            s = s.rstrip(unit).strip()
    return _quote_paren_money_percent(s, currencies="$£")


def _ldu_int(gold: Any, pred: Any) -> float:
    try:  # int() of the cleaned strings: "3.0" is not an Integer prediction here
        return float(int(_ldu_clean(gold)) == int(_ldu_clean(pred)))
    except ValueError:
        return 0.0


def _ldu_item(value: Any) -> str:
    if isinstance(value, dict):  # a table-row answer: its values joined by "-"
        value = "-".join(str(v) for v in value.values())
    return _ldu_clean(value)


def _ldu_list(gold: Any, pred: Any) -> float:
    golds = [_ldu_item(g) for g in parse_list(gold)]
    preds = [_ldu_item(p) for p in parse_list(pred)] or [""]
    if not golds:
        raise ValueError(f"gold = {gold!r}: a List answer needs at least one element")
    if _is_float(golds[0]) or _needs_exact_match(golds[0]):
        return float("-".join(golds) == "-".join(preds))  # order-sensitive, unlike MMLongBench-Doc
    best = [max(_doc_anls(g, p) for p in preds) for g in golds]
    return sum(best) / len(golds) * min(1.0, len(golds) / len(preds)) ** 0.5


def longdocurl_score(pred: Any, gold: Any, answer_format: str) -> float:
    """Score of one extracted answer on LongDocURL (`eval_score` in utils/utils_score_v3.py, with
    "Fail to extract" scored 0 as in utils/calculate_metrics.py). The rules are MMLongBench-Doc's
    with a stronger cleaning (thousands commas, units, "£") and a different list score:

    - Integer: int() of the cleaned strings, so "1,200" == 1200 but "3.0" is wrong.
    - Float, String, None: as MMLongBench-Doc (1% / rounding tolerance with percentages; exact
      match for exact-type golds, else ANLS 0.5).
    - List: numeric/exact-type lists must match exactly *in order*; other lists score each gold by
      its best ANLS over predicted elements, averaged over golds and multiplied by
      sqrt(min(1, n_gold / n_pred)) to penalise extra elements.
    The benchmark's "generalized accuracy" is the mean score over all questions (2,325).
    """
    kind = _canonical_format(answer_format)
    if isinstance(pred, str) and pred == FAIL_TO_EXTRACT:
        return 0.0
    if kind == "int":
        return _ldu_int(gold, pred)
    if kind == "float":
        return _float_score(_ldu_clean(gold), _ldu_clean(pred))
    if kind in ("str", "none"):
        gold_clean, pred_clean = _ldu_clean(gold), _ldu_clean(pred)
        if _needs_exact_match(gold_clean):
            return float(gold_clean == pred_clean)
        return _doc_anls(gold_clean, pred_clean)
    return _ldu_list(gold, pred)


# --------------------------------------------------------------------------------------------------
# MMLongBench's own rule-based doc-VQA score (Wang et al. 2025), used for all three doc datasets
# --------------------------------------------------------------------------------------------------

_DOCQA_SUFFIXES = ("kg", "meters", "acres", "minutes", "miles", "mile", "feet", "million",
                   "thousand", "billion", "mm", "m")  # fmt: skip
_DOCQA_EXACT_PATTERNS = [
    re.compile(p)
    for p in (
        r"https://",
        r".*\.(py|ipynb)$",
        r"^page",
        r"^\d+(-\d+|\s\d+)?$",
        r"(a\.m\.|p\.m\.)",
        r"^\d{4}[-/\s]\d{1,2}[-/\s]\d{1,2}$",  # YYYY-MM-DD, YYYY/MM/DD
        r"^\d{1,2}[-/\s]\d{1,2}[-/\s]\d{2,4}$",  # DD-MM-YYYY, MM/DD/YYYY
        r"^\d{4}[-/\s]\d{1,2}$",  # YYYY-MM
        r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$",
    )
]
_NUMBER = re.compile(r"-?\d+(?:\.\d*)?|-?\.\d+")


def _docqa_clean(s: Any) -> str:
    """`get_docqa_clean_string`: lower, drop commas and one trailing unit word (a true suffix
    removal, applied in turn), a quote, and surrounding "$", "£", "%". Parentheses are kept."""
    s = str(s).lower().strip().replace(",", "")
    for suffix in _DOCQA_SUFFIXES:
        s = (s[: -len(suffix)] if s.endswith(suffix) else s).strip()
    s = re.sub(r"^['\"]|['\"]$", "", s).strip()
    return s.strip("$").strip().strip("£").strip().strip("%").strip()


def _docqa_needs_exact(s: str) -> bool:
    return any(p.search(s) for p in _DOCQA_EXACT_PATTERNS)


def _numbers_in(text: str) -> list[float]:
    numbers = (float(m) for m in _NUMBER.findall(text.replace(",", "")))
    return [x for x in numbers if math.isfinite(x)]


def _docqa_str_type(s: str) -> str:
    try:
        x = float(_docqa_clean(s))
        return "int" if x == int(x) and "%" not in s else "float"
    except (ValueError, OverflowError):
        return "str"


def _docqa_int(gold: Any, pred: str) -> float:
    try:
        gold_x = float(_docqa_clean(gold))
    except ValueError:
        raise ValueError(f"gold = {gold!r} is not a number but answer_format is Integer") from None
    if gold_x != int(gold_x):
        raise ValueError(f"gold = {gold!r} is not integral but answer_format is Integer")
    return float(any(x == int(gold_x) for x in _numbers_in(_docqa_clean(pred)) if x == int(x)))


def _docqa_float(gold: Any, pred: str) -> float:
    try:
        ref = float(_docqa_clean(gold))
    except ValueError:
        raise ValueError(f"gold = {gold!r} is not a number but answer_format is Float") from None
    candidates = (ref / 100, ref, ref * 100)  # no rounding rule here, only 1% relative tolerance
    numbers = _numbers_in(_docqa_clean(pred))
    return float(any(math.isclose(c, x, rel_tol=0.01) for x in numbers for c in candidates))


def _docqa_list(gold: Any, pred: str) -> float:
    items = [g if isinstance(g, (int, float)) else str(g) for g in parse_list(gold)]
    if not items:
        raise ValueError(f"gold = {gold!r}: a List answer needs at least one element")
    merge = [isinstance(g, str) and _docqa_str_type(g) == "str" and not _docqa_needs_exact(g) for g in items]
    merged = " ".join(g for g, m in zip(items, merge) if m).strip()
    if merged:  # free-text elements are scored together by token F1, for recall
        items = [merged] + [g for g, m in zip(items, merge) if not m]
    scores = []
    for item in items:
        kind = "int" if isinstance(item, int) else "float" if isinstance(item, float) else _docqa_str_type(item)
        scores.append(_DOCQA_BY_KIND[kind](item, pred))
    return sum(scores) / len(items)


def _docqa_str(gold: Any, pred: str) -> float:
    gold = str(gold)
    if _docqa_needs_exact(gold):
        return float(gold in pred)  # raw, case-sensitive containment
    return token_f1(pred, gold)


_DOCQA_BY_KIND = {"int": _docqa_int, "float": _docqa_float, "str": _docqa_str, "none": _docqa_str}


def mmlongbench_docqa_score(pred: str, gold: Any, answer_format: str) -> float:
    """MMLongBench's rule-based doc-VQA score (`eval_docqa_score`, metric "doc_qa"), applied to a
    free-form answer (no extraction step), for MMLongBench-Doc, LongDocURL and SlideVQA alike.

    - Integer: 1 if any integral number in the cleaned prediction equals the gold.
    - Float: 1 if any number in the prediction is within 1% (relative) of gold, gold/100 or gold*100.
    - String / None: exact-type golds (URL, file, "page...", number, date, time, e-mail) must occur
      verbatim in the prediction; others score SQuAD token F1.
    - List: free-text elements are joined into one string scored by token F1; each remaining element
      is scored against the whole prediction by its own type; the score is the mean.
    """
    kind = _canonical_format(answer_format)
    pred = str(pred)
    if kind == "list":
        return _docqa_list(gold, pred)
    return _DOCQA_BY_KIND[kind](gold, pred)


def judge_list_f1(*, covered: float, n_pred: float, n_gold: int) -> float:
    """List F1 from an LLM judge's counts, as MMLongBench scores List answers with a judge: recall =
    covered / n_gold, precision = covered / n_pred, F1 clipped to [0, 1]; 0 when nothing is covered."""
    if covered <= 0:
        return 0.0
    if n_pred <= 0 or n_gold <= 0:
        raise ValueError(f"n_pred = {n_pred!r}, n_gold = {n_gold!r}: both must be > 0 when covered > 0")
    recall, precision = covered / n_gold, covered / n_pred
    return max(min(2 * recall * precision / (recall + precision), 1.0), 0.0)


# --------------------------------------------------------------------------------------------------
# SlideVQA (Tanaka et al. 2023)
# --------------------------------------------------------------------------------------------------

_WORD_NUMBERS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split()
)}  # fmt: skip
# Plain substring replacements, in order ("and" also inside words: "brand" -> "br,"); "minites" is
# the official script's spelling.
_SLIDEVQA_REPLACEMENTS = (
    ("this is ", ""), ("it is ", ""), ("&", ","), ("and", ","), ("percent", ""),
    ("organisation", "organization"), ("because of", ""), ("because", ""), ("due to", ""),
    ("hours", "hrs"), ("minites", "min"),
)  # fmt: skip


def _remove_question_unit(text: str, question: str) -> str:
    """Drop the word after "how many" / "which" in the question (the unit) from the answer.
    Case-sensitive on the question, as in the official script."""
    for cue in ("how many", "which"):
        idx = question.find(cue)
        rest = question[idx + len(cue) :].split() if idx >= 0 else []
        if rest:
            text = text.replace(rest[0], "")
    return text


def normalize_slidevqa_answer(s: str, question: str = "") -> str:
    """SlideVQA's answer normalisation (evaluate.py): SQuAD's, plus phrase replacements, removal of
    the question's unit word, yes/no answers cut to their first word, and number words 0-19 as digits."""
    text = str(s).lower()
    for old, new in _SLIDEVQA_REPLACEMENTS:
        text = text.replace(old, new)
    text = _remove_question_unit(text, question)
    text = _ARTICLES.sub(" ", "".join(ch for ch in text if ch not in _PUNCTUATION))
    if text[:3] == "yes" or text[:2] == "no":  # also "north ..." -> "north": the script's rule
        text = text.split()[0]
    return " ".join(_WORD_NUMBERS.get(word, word) for word in text.split())


class EmF1(NamedTuple):
    em: float
    f1: float


def slidevqa_em_f1(pred: str, gold: str, *, question: str = "") -> EmF1:
    """SlideVQA QA exact match and token F1 (evaluate.py `evaluate_f1_em_qa`) on SlideVQA-normalised
    tokens. Both are 0 when no token is shared, so an empty prediction scores (0, 0) even against an
    empty gold."""
    pred_tokens = normalize_slidevqa_answer(pred, question).split()
    gold_tokens = normalize_slidevqa_answer(gold, question).split()
    f1 = _tokens_f1(pred_tokens, gold_tokens)
    return EmF1(em=float(f1 > 0 and pred_tokens == gold_tokens), f1=f1)


# --------------------------------------------------------------------------------------------------
# MMLongBench's NIAH metrics (EdinburghNLP/MMLongBench utils.py, `calculate_metrics`), for MM-NIAH and
# the visual haystack sets. Each parser below mirrors one of its extractors, quirks included.
# --------------------------------------------------------------------------------------------------

_INT_LIST = re.compile(r"\[[\d\s,]+\]")
_ANY_LIST = re.compile(r"\[.*?\]", re.DOTALL)
_YES_NO_LAST = re.compile(r"\b(?:yes|no)\b(?!.*\b(?:yes|no)\b)", re.IGNORECASE | re.DOTALL)
_CHOICE_PATTERNS = (re.compile(r"answer is \(?([A-J])\)?"), re.compile(r"[aA]nswer:\s*([A-J])"),
                    re.compile(r"\b([A-J])\b(?!.*\b[A-J]\b)", re.DOTALL))


def _normalize_keep_punctuation(s: str) -> str:
    """`normalize_answer_with_punc`: lower-case, drop a/an/the, collapse whitespace; punctuation stays."""
    return " ".join(_ARTICLES.sub(" ", str(s).lower()).split())


def count_list(prediction: str) -> list[int]:
    """`extract_cnt_list`: the last "[1, 2, 3]" of the answer; else the last bracketed JSON list, keeping the
    elements int() accepts; else every run of digits in order."""
    text = _normalize_keep_punctuation(prediction)
    for pattern, keep_ints in ((_INT_LIST, False), (_ANY_LIST, True)):
        found = pattern.findall(text)
        if not found:
            continue
        try:
            values = json.loads(found[-1])
        except json.JSONDecodeError:
            continue
        return _ints(values) if keep_ints else list(values)
    return [int(x) for x in re.findall(r"\d+", text)]


def _ints(values: list) -> list[int]:
    out = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError, OverflowError):
            continue  # `turn_int_list` drops what int() refuses
    return out


def soft_accuracy(prediction: str, golds: Any) -> float:
    """MMLongBench's "soft_acc" for the counting tasks: 1 when the counts read from the answer sum to the gold
    counts' sum. MM-NIAH's own soft accuracy (matched positions / gold length) was replaced by this sum in
    MMLongBench ("for robust evaluation", its utils.py notes); we follow MMLongBench, whose version the
    paper reports."""
    counts = [int(g) for g in gold_alternatives(golds)]
    return float(sum(count_list(prediction)) == sum(counts))


def choice_index(prediction: str) -> int:
    """`extract_choice_letter`: the option "answer is (B)", else "Answer: B", else the last lone capital A-J
    (so "I think" reads as option I, as in the official code); 0-based, -1 when there is none."""
    text = " ".join(str(prediction).split())
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match:
            return ord(match.group(1)) - ord("A")
    return -1


def multiple_choice_accuracy(prediction: str, gold: Any) -> float:
    """MMLongBench's "mc_acc": the option read from the answer is the gold one. ``gold``: a 0-based index
    (int or digits) or the option letter."""
    gold = str(gold).strip()
    index = int(gold) if gold.isdigit() else ord(gold.upper()) - ord("A") if len(gold) == 1 else None
    if index is None:
        raise ValueError(f"gold = {gold!r}: give an option letter or a 0-based option index")
    return float(choice_index(prediction) == index)


def binary_label(text: str) -> int:
    """`extract_binary_label`: 1 / 0 for the last "yes" / "no" word; else the number a bare digit string
    holds; else -1."""
    text = _normalize_keep_punctuation(text)
    match = _YES_NO_LAST.search(text)
    if match:
        return {"yes": 1, "no": 0}[match.group(0).lower()]
    return int(text.strip()) if text.strip().isdigit() else -1


def binary_accuracy(prediction: str, gold: str, *, default_label: int) -> float:
    """MMLongBench's "binary_acc" (visual haystack): the answer's yes/no label equals the gold's. An answer
    with neither word takes ``default_label``: the official loader cycles 0, 1, 1, 0 over a task's items in
    order, so a model that never says yes or no scores about 50%, not 0."""
    label = binary_label(prediction)
    return float((default_label if label == -1 else label) == binary_label(gold))


# --------------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------------

BENCHMARKS = ("mmlongbench-doc", "longdocurl", "mmlongbench-docqa", "slidevqa", "slidevqa-em", "niah", "soft-acc",
              "mc-acc", "binary-acc", "mmlongbench-anls", "char-similarity")


def score(
    benchmark: str, pred: Any, gold: Any, answer_format: str | None = None, *, question: str = "",
    default_label: int = -1,
) -> float:
    """One item's rule-based score on `benchmark`:

    mmlongbench-doc    mmlongbench_doc_score (needs answer_format; pred = the extracted answer)
    longdocurl         longdocurl_score (needs answer_format; pred = the extracted answer)
    mmlongbench-docqa  mmlongbench_docqa_score (needs answer_format; pred = the free-form answer)
    slidevqa           SlideVQA token F1 (slidevqa-em: exact match), max over golds; `question`
                       enables the official unit removal
    niah               substring exact match, max over golds (MMLongBench "sub_em": needle retrieval/reasoning)
    soft-acc           MMLongBench's counting score (gold: the counts)
    mc-acc             MMLongBench's multiple-choice letter accuracy (gold: the letter or 0-based index)
    binary-acc         MMLongBench's yes/no accuracy; `default_label` stands in for an answer with neither
    mmlongbench-anls   MMLongBench's case-sensitive, unthresholded ANLS
    char-similarity    a transcript's 1 - normalised edit distance (char_similarity)
    """
    if benchmark in ("mmlongbench-doc", "longdocurl", "mmlongbench-docqa"):
        scorer = {"mmlongbench-doc": mmlongbench_doc_score, "longdocurl": longdocurl_score,
                  "mmlongbench-docqa": mmlongbench_docqa_score}[benchmark]  # fmt: skip
        return scorer(pred, gold, _format_for(benchmark, answer_format))
    if benchmark in ("slidevqa", "slidevqa-em"):
        results = [slidevqa_em_f1(str(pred), g, question=question) for g in gold_alternatives(gold)]
        return max(r.f1 if benchmark == "slidevqa" else r.em for r in results)
    if benchmark == "niah":
        return substring_exact_match(str(pred), gold)
    if benchmark == "soft-acc":
        return soft_accuracy(str(pred), gold)
    if benchmark == "mc-acc":
        return multiple_choice_accuracy(str(pred), gold)
    if benchmark == "binary-acc":
        return binary_accuracy(str(pred), str(gold), default_label=default_label)
    if benchmark == "mmlongbench-anls":
        return mmlongbench_anls(str(pred), str(gold))
    if benchmark == "char-similarity":
        return max(char_similarity(str(pred), g) for g in gold_alternatives(gold))
    raise ValueError(f"benchmark = {benchmark!r}: use one of {list(BENCHMARKS)}")


def _format_for(benchmark: str, answer_format: str | None) -> str:
    if answer_format is None:
        raise ValueError(f"benchmark {benchmark!r} needs answer_format, one of {sorted(_FORMATS)}")
    return answer_format
