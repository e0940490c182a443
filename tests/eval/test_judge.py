"""llm_scoring: answer extraction (MMLongBench-Doc / LongDocURL pipelines) and MMLongBench v1.1's judge, against a
real HTTP server on 127.0.0.1 that reads each request and answers as an extractor or a judge would."""

import ast
import json
import re

import pytest
from chat_server import Reply, serve
from eval_fixtures import FakeBackend

from mmprolong.errors import ConfigError
from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.backends.base import Answer
from mmprolong.eval.items import read_results
from mmprolong.eval.judge import (
    extracted_value,
    extraction_prompt,
    judge_prompt,
    parse_extraction,
    parse_list_verdict,
    parse_single_verdict,
)
from mmprolong.eval.metrics import parse_list
from mmprolong.eval.suites.docvqa_samples import write_docvqa_samples

INT_FORMATS = ("Int", "Integer")


def _case(prompt: str, *names: str) -> list[str]:
    """The fields of the case a prompt ends with (the examples before it have the same labels)."""
    tail = prompt[prompt.rindex(f"{names[0]}: "):]
    pattern = r"\n".join(rf"{re.escape(n)}: (.*?)" for n in names) + r"\n?(?:Reasons:)?$"
    return list(re.fullmatch(pattern, tail, re.DOTALL).groups())


def extractor(prompt: str) -> str:
    question, response = _case(prompt, "Question", "Response")
    body = re.split(r"answer:", response, flags=re.IGNORECASE)[-1].strip().rstrip(".")
    body = body.removesuffix(" people")
    if body.startswith("["):  # a list literal already (rows of a table)
        answer, fmt = body, "List"
    elif ", " in body:
        answer, fmt = repr(body.split(", ")), "List"
    elif re.fullmatch(r"-?\d+", body):
        answer, fmt = body, "Integer"
    elif re.fullmatch(r"-?\d*\.\d+", body):
        answer, fmt = body, "Float"
    else:
        answer, fmt = body, "String"
    if "<concise_answer>" in prompt:
        return f"Extracted answer: <concise_answer>{answer}</concise_answer>\nAnswer format: <answer_format>{fmt}" \
               "</answer_format>"
    return f"Extracted answer: {answer}\nAnswer format: {fmt}"


def judge(prompt: str) -> str:
    question, reference, student = _case(prompt, "Question", "Reference answer", "Student answer")
    if "reference answer is a list" in prompt:
        body = re.split(r"answer:", student, flags=re.IGNORECASE)[-1].strip().rstrip(".")
        items = (ast.literal_eval(body) if body.startswith("[")  # table rows, spelled as a list
                 else [i.strip() for i in re.split(r",| and ", student) if i.strip()])
        covered = sum(str(r).lower() in student.lower() for r in parse_list(reference))
        return f"The list has {len(items)} items.\n{{\"answer_items\": {len(items)}, \"covered_items\": {covered}}}"
    right = reference.lower().strip() in student.lower()
    return f"Compared the final answers.\n{{\"score\": {int(right)}}}"


@pytest.fixture
def server():
    """The extractor or the judge, chosen by the prompt; "garbage" and "bad-request" modes reply uselessly."""
    def script(body, hit):
        if server.mode == "bad-request":
            return Reply(400, raw=b'{"error": "no"}')
        prompt = body["messages"][0]["content"]
        if server.mode == "garbage":
            return Reply(content="I would rather not say.")
        # 50 ms a reply, so requests sent concurrently overlap on the server even on a loaded machine
        return Reply(content=extractor(prompt) if "Pull out of the response" in prompt else judge(prompt),
                     delay_s=0.05)

    with serve(script) as server:
        server.mode = "ok"
        yield server


def prompts(server) -> list[str]:
    return [body["messages"][0]["content"] for body in server.bodies]


class Verbose(FakeBackend):
    """Answers docvqa items right but wordily: an integer comes with its unit ("1840 people"), as free-form
    answers do; lists as "a, b"."""

    def generate_one(self, item, loader, settings) -> Answer:
        self.calls += 1
        gold = item.answers[0]
        if item.answer_format in INT_FORMATS:
            return Answer(f"Answer: {gold} people.")
        if item.answer_format == "List":
            items = parse_list(gold)
            if any(isinstance(x, dict) for x in items):  # table rows: a wordy answer still spells them out
                return Answer(f"Answer: {items!r}")
            return Answer("Answer: " + ", ".join(str(x) for x in items))
        return Answer(f"Answer: {gold}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("docvqa")
    write_docvqa_samples(root, seed=0, docs=3, pages=4)
    return root


def _config(data_dir, server=None, **overrides):
    judge_settings = {"judge_base_url": server.url, "judge_model": "judge-llm"} if server else {}
    return EvalConfig(suite="docvqa", data_dir=str(data_dir), pdf_max_dpi=72.0, lengths=[768], max_questions=-1,
                      **{"docvqa_metric": "native", **judge_settings, **overrides})


def _by_format(results, items_path):
    items = {json.loads(line)["item_id"]: json.loads(line) for line in items_path.read_text().splitlines()}
    return [(items[r.item_id]["answer_format"], r) for r in results]


def test_extraction_rescues_wordy_integers_and_is_cached(tmp_path, data_dir, server):
    native = evaluate(Verbose(), out_dir=tmp_path / "native", config=_config(data_dir))
    assert native["errors"] == 0 and not prompts(server)
    rule = _by_format(read_results(tmp_path / "native"), tmp_path / "native" / "items.jsonl")
    ints = [r for fmt, r in rule if fmt in INT_FORMATS and r.task != "slidevqa"]
    assert ints and all(r.score == 0.0 for r in ints)  # "1840 people" is no Integer for the official scorers

    config = _config(data_dir, server, llm_scoring="extract", judge_concurrency=3)
    summary = evaluate(Verbose(), out_dir=tmp_path / "extract", config=config)
    results = read_results(tmp_path / "extract")
    assert summary["errors"] == 0 and summary["llm_scoring"]["asked"] == len(prompts(server))
    for fmt, r in _by_format(results, tmp_path / "extract" / "items.jsonl"):
        meta = json.loads(r.metadata)
        if r.task == "slidevqa":  # no extraction step in SlideVQA's evaluation
            assert "extract" not in meta
            continue
        assert r.score == 1.0, (r.task, fmt, r.prediction, meta)
        if fmt in INT_FORMATS:
            assert meta["rule_score"] == 0.0 and meta["extract"]["extracted"] == r.prediction.split()[1]
    asked = len(prompts(server))  # the same question and answer (the unanswerable one, per document) asked once
    assert asked + summary["llm_scoring"].get("cached", 0) == sum(r.task != "slidevqa" for r in results)
    styles = {("<concise_answer>" in p) for p in prompts(server)}
    assert styles == {True, False}  # LongDocURL's tags and MMLongBench-Doc's lines
    assert 1 < server.max_in_flight <= 3

    again = evaluate(Verbose(), out_dir=tmp_path / "extract", config=config)  # resumed: answers and replies cached
    rescored = sum(r.task != "slidevqa" for r in results)
    assert len(prompts(server)) == asked and again["llm_scoring"]["cached"] == rescored
    assert [r.score for r in read_results(tmp_path / "extract")] == [r.score for r in results]


def test_judge_grades_all_three_datasets_with_list_f1(tmp_path, data_dir, server):
    config = _config(data_dir, server, llm_scoring="judge", docvqa_metric="mmlongbench")
    evaluate(Verbose(), out_dir=tmp_path / "judge", config=config)
    results = _by_format(read_results(tmp_path / "judge"), tmp_path / "judge" / "items.jsonl")
    assert {r.task for _, r in results} == {"mmlongbench-doc", "longdocurl", "slidevqa"}
    assert all(r.status == "ok" and r.score == 1.0 and "judge" in json.loads(r.metadata) for _, r in results)
    lists = [r for fmt, r in results if fmt == "List"]
    verdicts = [json.loads(r.metadata)["judge"]["verdict"] for r in lists]
    assert lists and all(v["covered_items"] == v["answer_items"] >= 1 for v in verdicts)
    assert sum("reference answer is a list" in p for p in prompts(server)) == len(lists)

    wrong = FakeBackend(answer="Answer: 7, 8 and 9")
    evaluate(wrong, out_dir=tmp_path / "wrong", config=config)
    for fmt, r in _by_format(read_results(tmp_path / "wrong"), tmp_path / "wrong" / "items.jsonl"):
        verdict = json.loads(r.metadata)["judge"]["verdict"]
        assert r.score == 0.0 and (verdict == 0.0 or verdict == {"answer_items": 3.0, "covered_items": 0.0})


def test_unparseable_verdicts_score_zero_and_failed_requests_are_errors(tmp_path, data_dir, server):
    server.mode = "garbage"
    config = _config(data_dir, server, llm_scoring="judge", datasets=["slidevqa"])
    summary = evaluate(Verbose(), out_dir=tmp_path / "garbage", config=config)
    assert summary["errors"] == 0 and summary["llm_scoring"]["unparsed"] == summary["items"]
    assert all(r.score == 0.0 for r in read_results(tmp_path / "garbage"))

    server.mode = "bad-request"
    config = _config(data_dir, server, llm_scoring="judge", datasets=["slidevqa"], judge_retries=0)
    summary = evaluate(Verbose(), out_dir=tmp_path / "refused", config=config)
    assert summary["errors"] == summary["items"] and summary["ok"] == 0
    assert all(r.status == "error" and "judge LLM http_error: HTTP 400" in r.error
               for r in read_results(tmp_path / "refused"))


def test_prompt_parsers():
    assert parse_extraction("mmlongbench-doc", "Extracted answer: 12\nAnswer format: Integer") == "12"
    assert parse_extraction("mmlongbench-doc", "The answer is 12") is None
    assert parse_extraction("longdocurl", "<concise_answer>[1, 2]</concise_answer>\n"
                                          "<answer_format>List</answer_format>") == "[1, 2]"
    assert parse_extraction("longdocurl", "<concise_answer>3</concise_answer>") is None  # format tag missing too
    assert extracted_value("longdocurl", "[1, 2]") == [1, 2] and extracted_value("longdocurl", "Oslo") == "Oslo"
    assert extracted_value("longdocurl", "{'a'}") == ["a"] and extracted_value("mmlongbench-doc", "3") == "3"
    assert parse_single_verdict('{"score": 1} then {"score": 0}') == 0.0
    assert parse_single_verdict('{"score": 5}') == 1.0 and parse_single_verdict("no json") is None
    assert parse_list_verdict('{"answer_items": 3, "covered_items": 2}') == (3.0, 2.0)
    assert parse_list_verdict('{"covered_items": 2}') is None
    prompt = judge_prompt("Q {reference}?", "R", "P", is_list=False)
    assert prompt.endswith("Question: Q {reference}?\nReference answer: R\nStudent answer: P\nReasons:")
    prompt = extraction_prompt("longdocurl", "Q?", "R.")
    assert "pages" in prompt and prompt.endswith("Question: Q?\nResponse: R.")


def test_llm_scoring_config_checks(data_dir, server):
    with pytest.raises(ConfigError, match="docvqa_metric"):
        _config(data_dir, server, llm_scoring="extract", docvqa_metric="mmlongbench").validate()
    with pytest.raises(ConfigError, match="llm_scoring"):
        EvalConfig(suite="niah", store_dir="s", llm_scoring="judge", judge_base_url=server.url,
                   judge_model="m").validate()
    with pytest.raises(ConfigError, match="judge_base_url"):
        _config(data_dir, None, llm_scoring="judge").validate()
    with pytest.raises(ConfigError, match="judge_model"):
        _config(data_dir, None, llm_scoring="judge", judge_base_url=server.url).validate()
    with pytest.raises(ConfigError, match="judge_concurrency"):
        _config(data_dir, server, judge_concurrency=0).validate()
    _config(data_dir, server, llm_scoring="judge").validate()
