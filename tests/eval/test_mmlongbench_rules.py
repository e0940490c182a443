"""MMLongBench's answer parsing and its NIAH metrics, rule by rule as its utils.py applies them (parse_output,
drqa_metric_max_over_ground_truths, extract_cnt_list / soft_acc, extract_choice_letter / mc_acc,
extract_binary_label / binary_acc, anls_compute), and each benchmark's ANLS case rule."""

import json

import pytest

from mmprolong.eval import metrics
from mmprolong.eval.items import make_item
from mmprolong.eval.scoring import parse_answer, score_item


@pytest.mark.parametrize("text,expected", [
    ("Answer: 42", "42"),
    ("answer: 42", "42"),  # the prefix in any case
    ("ANSWER:42", "42"),
    ("Answer: Answer: 42", "42"),  # a chat model repeating the prefix the prompt showed
    ("answer: Answer: 42", "42"),
    ("The code is 7. Answer: 42\nbecause ...", "42\nbecause ..."),  # everything after the first prefix
    ("  just 42  ", "just 42"),  # no prefix: all of it
    ("Answer: Answer: Answer: 42", "Answer: 42"),  # the official parser drops one repeat, not all
])
def test_parse_answer_follows_mmlongbench_parse_output(text, expected):
    assert parse_answer(text) == expected


def test_nested_gold_lists_are_alternatives_not_text():
    golds = [["Paris", "City of Light"], ["Lutetia"]]
    assert metrics.gold_alternatives(golds) == ["Paris", "City of Light", "Lutetia"]
    assert metrics.substring_exact_match("It is Lutetia, of course.", golds) == 1.0
    assert metrics.substring_exact_match("It is City of Light.", [["Paris", "City of Light"]]) == 1.0
    assert metrics.token_f1("Paris", [["Rome", "Paris"]]) == 1.0
    # a flat list and a plain string as before
    assert metrics.gold_alternatives(["a", 3]) == ["a", "3"] and metrics.gold_alternatives("x") == ["x"]
    with pytest.raises(ValueError, match="empty"):
        metrics.gold_alternatives([[]])


def test_anls_case_follows_each_benchmark():
    # DocVQA / ST-VQA lower-case both sides; MMLongBench's anls_compute compares them as written, unthresholded.
    assert metrics.anls("Apple", "apple") == 1.0
    assert metrics.anls("Apple", "apple", case_sensitive=True) == pytest.approx(0.8)
    assert metrics.mmlongbench_anls("Apple", "apple") == pytest.approx(0.8)
    assert metrics.mmlongbench_anls("xyz", "abc") == 0.0 and metrics.mmlongbench_anls("ab", "ax") == 0.5
    assert metrics.mmlongbench_anls("", "") == 1.0
    assert metrics.score("mmlongbench-anls", "Apple", "apple") == pytest.approx(0.8)
    # MMLongBench-Doc and LongDocURL clean (lower-case) before their ANLS: case never matters there
    assert metrics.mmlongbench_doc_score("NORTHWIND TRADERS", "Northwind Traders", "Str") == 1.0
    assert metrics.longdocurl_score("NORTHWIND TRADERS", "Northwind Traders", "String") == 1.0


@pytest.mark.parametrize("prediction,expected", [
    ("[1, 0, 2]", [1, 0, 2]),
    ("First [9, 9] then, finally, [1, 2, 3]", [1, 2, 3]),  # the last integer list
    ("[1, 2, 'three']", [1, 2]),  # not an integer list: the last bracketed JSON, ints kept
    ('["1", "2"]', [1, 2]),
    ("[1,, 2]", [1, 2]),  # not JSON: the digits
    ("three, then 4 and 5", [4, 5]),
    ("none", []),
])
def test_count_list_extraction(prediction, expected):
    assert metrics.count_list(prediction) == expected


def test_soft_accuracy_is_mmlongbench_sum_rule():
    assert metrics.soft_accuracy("[2, 1, 0]", ["1", "2", "0"]) == 1.0  # same sum, other order: right
    assert metrics.soft_accuracy("[3]", [1, 2]) == 1.0  # MMLongBench compares sums, not positions
    assert metrics.soft_accuracy("[1, 2, 1]", [1, 2]) == 0.0
    assert metrics.score("soft-acc", "Answer: [1, 1]", ["1", "1"]) == 1.0


@pytest.mark.parametrize("prediction,expected", [
    ("The answer is (C).", 2),
    ("Answer: B", 1),
    ("answer: d", -1),  # "[aA]nswer:\s*([A-J])": the letter must be a capital
    ("Maybe A, but on reflection D", 3),  # the last lone capital
    ("I think it is B", 1),
    ("I think so", 8),  # "I" is option I, as in the official extractor
    ("no idea", -1),
])
def test_choice_index(prediction, expected):
    assert metrics.choice_index(prediction) == expected


def test_multiple_choice_accuracy_takes_letter_or_index():
    assert metrics.multiple_choice_accuracy("Answer: C", "C") == 1.0
    assert metrics.multiple_choice_accuracy("Answer: C", 2) == 1.0
    assert metrics.multiple_choice_accuracy("Answer: C", "1") == 0.0
    with pytest.raises(ValueError, match="option letter"):
        metrics.multiple_choice_accuracy("A", "AB")


def test_binary_accuracy_reads_the_last_yes_no_and_falls_back_to_the_default():
    assert metrics.binary_label("No wait, yes.") == 1 and metrics.binary_label("Yes... no") == 0
    assert metrics.binary_label("1") == 1 and metrics.binary_label("unclear") == -1
    assert metrics.binary_label("nobody knows") == -1  # whole words only
    assert metrics.binary_accuracy("Answer: Yes", "yes", default_label=0) == 1.0
    assert metrics.binary_accuracy("I cannot tell", "Yes", default_label=1) == 1.0
    assert metrics.binary_accuracy("I cannot tell", "Yes", default_label=0) == 0.0


def _item(metric: str, answers, metadata=None, suite="mmniah"):
    return make_item(suite=suite, task="t", length=8, depth=-1.0, parts=("q",), question="q",
                     answers=tuple(answers), answer_format="String", metric=metric,
                     metadata=json.dumps(metadata or {}))


def test_needle_codes_get_partial_credit_beside_sub_em_and_other_suites_do_not():
    score, details = score_item(_item("niah", ["814485"], suite="niah"), "Answer: 114485")
    assert score == 0.0 and details == {"parsed": "114485", "in_place": 0.833333,
                                        "in_place_by_position": [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]}
    score, details = score_item(_item("niah-all", ["507593", "220017"], suite="niah"), "507593 and 920017")
    assert score == 0.5 and details["found"] == [1.0, 0.0] and details["in_place"] == pytest.approx(11 / 12, abs=1e-6)
    assert details["in_place_by_position"] == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]  # per place, the mean over the needles
    details = score_item(_item("niah-all", ["507593", "2200"], suite="niah"), "507593 2200")[1]
    assert details["in_place"] == 1.0 and "in_place_by_position" not in details  # codes of two lengths
    assert "in_place" not in score_item(_item("niah", ["saffron"]), "answer: Saffron.")[1]  # MM-NIAH: text answers


def test_default_post_process_keeps_the_better_of_raw_and_parsed():
    # raw: the digit lists of the reasoning and the answer mix; parsed: only the answer's list
    item = _item("soft-acc", ["2", "3"])
    assert score_item(item, "I saw [1, 1] at first. Answer: [2, 3]")[0] == 1.0
    # raw "...Answer: C": pattern 2 reads C; parsed "the one after B" reads B: max keeps the raw
    item = _item("mc-acc", ["C"])
    assert score_item(item, "Answer: C is the one after B")[0] == 1.0
    assert score_item(_item("niah", ["saffron"]), "answer: Saffron.")[0] == 1.0
    score, details = score_item(_item("binary-acc", ["No"], {"default_label": 0}), "I am not sure.")
    assert score == 1.0 and details == {"default_label": 0}
