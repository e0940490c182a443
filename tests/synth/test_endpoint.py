"""The endpoint generator against a real HTTP server on 127.0.0.1 with scripted replies.

The server reads the page texts it was shown and answers from them, so a good reply passes qa.verify;
other scripts return broken JSON, schema violations, HTTP errors or nothing in time. Every request ends
as one candidate or one None counted by reason, and nothing malformed comes back.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import shutil
import time

import pytest
from chat_server import MODEL, Reply, Script, serve
from PIL import Image

from mmprolong.errors import ConfigError, DataError
from mmprolong.synth.documents import DocumentView, Section
from mmprolong.synth.generators import QARequest
from mmprolong.synth.generators.endpoint import (
    PROMPTS_DIR,
    EndpointConfig,
    EndpointGenerator,
    choose_segment,
    convert_anchors,
    image_data_url,
)
from mmprolong.synth.qa import ANSWER_FORMATS, EVIDENCE_SOURCES, OPERATIONS, anchored_pages, verify

# --- documents -----------------------------------------------------------------------------------------

def _fact(doc_id: str, page: int) -> str:
    return f"The plant in region {doc_id.upper()}{page} produced {100 + 7 * page} tonnes of steel in 2023."


def _png(page: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 10), (page * 10 % 256, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_doc(doc_id: str = "d", pages: int = 20, sections: tuple[Section, ...] = (), images: bool = True):
    texts = tuple(f"{doc_id} annual report\n{_fact(doc_id, p)}\nFooter {p + 1}" for p in range(pages))
    return DocumentView(doc_id=doc_id, source=f"{doc_id}.pdf", page_texts=texts, page_tokens=(100,) * pages,
                        sections=sections, load_image=_png if images else None)


# --- the scripted server -------------------------------------------------------------------------------

def shown_pages(body: dict) -> dict[int, dict]:
    """{K: {"image": url, "text": text layer}} for each "Page K:" the request shows, in order."""
    pages, current = {}, None
    for part in body["messages"][1]["content"]:
        if part["type"] == "text" and re.fullmatch(r"Page \d+:", part["text"]):
            current = int(part["text"][5:-1])
            pages[current] = {}
        elif part["type"] == "image_url":
            pages[current]["image"] = part["image_url"]["url"]
        elif part["text"].startswith(f"Text layer of page {current}:\n"):
            pages[current]["text"] = part["text"].split("\n", 1)[1]
    return pages


def _fact_line(text: str) -> str:
    return next(line for line in text.split("\n") if line.startswith("The plant"))


def _value(line: str) -> int:
    return int(re.search(r"produced (\d+)", line).group(1))


def good_reply(body: dict) -> dict:
    """A grounded QA about the pages shown: a lookup for extract-single, a difference for reasoning."""
    pages = shown_pages(body)
    ks = sorted(pages)
    task_text = body["messages"][1]["content"][-1]["text"]
    if "reasoning" in task_text:
        a, b = ks[1], ks[-1]
        la, lb = _fact_line(pages[a]["text"]), _fact_line(pages[b]["text"])
        return {"question": f"Across pages {{page:{a}}}-{{page:{b}}}, how many more tonnes did the plant on page "
                            f"{{page:{b}}} produce than the one on page {{page:{a}}}?",
                "answer": _value(lb) - _value(la), "answer_format": "Integer", "operation": "difference",
                "evidence": [{"page": b, "quote": lb, "value": _value(lb), "label": None},
                             {"page": a, "quote": la, "value": str(_value(la)), "label": None}],
                "source": "text"}
    k = ks[1]
    line = _fact_line(pages[k]["text"])
    return {"question": f"On page {{page:{k}}}, how many tonnes of steel did the plant produce in 2023?",
            "answer": _value(line), "answer_format": "Integer", "operation": "lookup",
            "evidence": [{"page": k, "quote": line, "value": str(_value(line)), "label": "steel"}],
            "source": "Text"}


def answer_well(body: dict, hit: int) -> Reply:
    return Reply(content=good_reply(body))


def make_generator(server, tmp_path, **overrides) -> EndpointGenerator:
    settings = {"base_url": server.url, "model": MODEL, "cache_dir": str(tmp_path / "cache"), "timeout_s": 2.0,
                "max_retries": 2, "backoff_s": 0.01, "max_concurrency": 4} | overrides
    api_key = settings.pop("api_key", None)
    return EndpointGenerator(EndpointConfig.from_dict(settings), api_key=api_key)


def requests_for(doc, task="extract-single", seeds=range(1), target_tokens=0):
    return [QARequest(doc=doc, task=task, seed=s, target_tokens=target_tokens) for s in seeds]


# --- happy path ----------------------------------------------------------------------------------------

def test_request_shows_labelled_page_images_and_texts_and_the_candidate_is_0_based(tmp_path):
    doc = make_doc()
    with serve(answer_well) as server:
        generator = make_generator(server, tmp_path, api_key="sk-test")
        [candidate] = generator.propose_many(requests_for(doc))
    body = server.bodies[0]
    assert body["model"] == MODEL and body["response_format"] == {"type": "json_object"}
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    pages = shown_pages(body)
    ks = sorted(pages)
    assert 8 <= len(ks) <= 15 and ks == list(range(ks[0], ks[0] + len(ks)))  # consecutive, 1-based labels
    for k in ks:
        assert pages[k]["image"] == "data:image/png;base64," + base64.b64encode(_png(k - 1)).decode()
        assert pages[k]["text"] == doc.page_texts[k - 1]
    instruction = body["messages"][1]["content"][-1]["text"]
    assert f"pages {ks[0]}-{ks[-1]} of a 20-page document" in instruction and '"evidence"' in instruction
    assert body["messages"][0]["content"] == (PROMPTS_DIR / "qa_system.txt").read_text().strip()

    k = ks[1]  # the reply quotes the second page shown, in 1-based numbers
    assert candidate.evidence[0].page == k - 1
    assert candidate.question.startswith(f"On page {{page:{k - 1}}},")
    assert anchored_pages(candidate.question) == [k - 1]
    assert candidate.answer_value == 100 + 7 * (k - 1) and candidate.answer_format == "Integer"
    assert candidate.generator == f"endpoint:{MODEL}" and candidate.doc_id == "d"
    assert candidate.task == "extract-single" and candidate.source == "text"
    assert candidate.extra["segment"] == [ks[0] - 1, ks[-1] - 1]
    assert verify(candidate, doc.page_texts) is None
    assert generator.stats["ok"] == 1 and generator.stats["http_calls"] == 1


def test_reasoning_converts_every_anchor_and_evidence_page(tmp_path):
    doc = make_doc()
    with serve(answer_well) as server:
        generator = make_generator(server, tmp_path)
        candidates = generator.propose_many(requests_for(doc, "reasoning", range(3)))
    assert len(candidates) == server.hits == 3
    for candidate in candidates:  # requests run concurrently: match each to the body that showed its pages
        first, last = candidate.extra["segment"]
        [ks] = [sorted(shown_pages(b)) for b in server.bodies if min(shown_pages(b)) == first + 1]
        assert ks[-1] == last + 1
        a, b = ks[1] - 1, ks[-1] - 1
        assert candidate.evidence_pages == (a, b)
        assert anchored_pages(candidate.question) == [a, b, b, a]
        assert candidate.answer_value == 7 * (b - a)
        assert verify(candidate, doc.page_texts) is None


def test_convert_anchors_checks_the_shown_pages():
    assert convert_anchors("On page {page:12} and {PAGE: 13}?", range(11, 20)) == "On page {page:11} and {page:12}?"
    for bad in ("On page {page:11}?", "On page {page:21}?", "On page 12?", "On pages 12-13?", "See p. 12",
                "On {page:12-13}?"):
        with pytest.raises(Exception, match="schema_invalid"):
            convert_anchors(bad, range(11, 20))


# --- failures: each counted by reason, nothing bad returned --------------------------------------------

def _without(field_name: str) -> Script:
    def script(body, hit):
        reply = good_reply(body)
        del reply[field_name]
        return Reply(content=reply)
    return script


def _with(**changes) -> Script:
    def script(body, hit):
        reply = good_reply(body)
        for name, change in changes.items():
            reply[name] = change(reply, body) if callable(change) else change
        return Reply(content=reply)
    return script


BAD_REPLIES = {
    "not json": (lambda body, hit: Reply(content="Sure! Here is the question: {"), "malformed_json"),
    "json list": (lambda body, hit: Reply(content="[1, 2]"), "malformed_json"),
    "no choices": (lambda body, hit: Reply(raw=b'{"error": "busy"}'), "bad_response"),
    "missing evidence": (_without("evidence"), "schema_invalid"),
    "question not a string": (_with(question=12), "schema_invalid"),
    "page as a string": (_with(evidence=lambda r, b: [dict(r["evidence"][0], page=str(r["evidence"][0]["page"]))]),
                         "schema_invalid"),
    "evidence page outside the segment": (
        _with(evidence=lambda r, b: [dict(r["evidence"][0], page=max(shown_pages(b)) + 1)]), "schema_invalid"),
    "unknown operation": (_with(operation="transcribe"), "schema_invalid"),
    "bare page number": (_with(question="On page 12, how many tonnes?"), "schema_invalid"),
    "non-integer Integer": (_with(answer=12.5), "schema_invalid"),
    "wrong operation for the task": (_with(operation="sum"), "schema_invalid"),
}


@pytest.mark.parametrize("case", sorted(BAD_REPLIES))
def test_bad_replies_are_asked_once_more_then_dropped(tmp_path, case):
    script, reason = BAD_REPLIES[case]
    with serve(script) as server:
        generator = make_generator(server, tmp_path)
        assert generator.propose_many(requests_for(make_doc())) == [None]
    assert server.hits == 2  # one retry: models are stochastic
    assert generator.stats[reason] == 1 and generator.stats["ok"] == 0
    assert not list((tmp_path / "cache").rglob("*.json"))  # failures are not cached


def test_a_bad_reply_then_a_good_one_succeeds(tmp_path):
    def script(body, hit):
        return Reply(content="{oops") if hit == 1 else Reply(content=good_reply(body))

    with serve(script) as server:
        generator = make_generator(server, tmp_path)
        [candidate] = generator.propose_many(requests_for(make_doc()))
    assert candidate is not None and server.hits == 2 and generator.stats["content_retried"] == 1


def test_a_fenced_reply_is_accepted(tmp_path):
    with serve(lambda body, hit: Reply(content="```json\n" + json.dumps(good_reply(body)) + "\n```")) as server:
        [candidate] = make_generator(server, tmp_path).propose_many(requests_for(make_doc()))
    assert candidate is not None and server.hits == 1


def test_http_500_then_success_is_retried(tmp_path):
    def script(body, hit):
        return Reply(500, "overloaded") if hit == 1 else Reply(content=good_reply(body))

    with serve(script) as server:
        generator = make_generator(server, tmp_path)
        [candidate] = generator.propose_many(requests_for(make_doc()))
    assert candidate is not None and server.hits == 2
    assert generator.stats["retried"] == 1 and generator.stats["ok"] == 1


def test_persistent_500_exhausts_the_retries(tmp_path):
    with serve(lambda body, hit: Reply(503, "down")) as server:
        generator = make_generator(server, tmp_path, max_retries=3)
        assert generator.propose_many(requests_for(make_doc())) == [None]
    assert server.hits == 4 and generator.stats["retries_exhausted"] == 1


def test_429_waits_as_retry_after_says(tmp_path):
    def script(body, hit):
        return Reply(429, "slow down", headers={"Retry-After": "0.4"}) if hit == 1 else Reply(content=good_reply(body))

    with serve(script) as server:
        generator = make_generator(server, tmp_path, backoff_s=0.001)
        start = time.monotonic()
        [candidate] = generator.propose_many(requests_for(make_doc()))
    assert candidate is not None and server.hits == 2 and time.monotonic() - start >= 0.4


def test_http_400_is_not_retried(tmp_path):
    with serve(lambda body, hit: Reply(400, "context too long")) as server:
        generator = make_generator(server, tmp_path)
        assert generator.propose_many(requests_for(make_doc())) == [None]
    assert server.hits == 1 and generator.stats["http_error"] == 1
    assert any("HTTP 400" in k for k in generator.failures)


def test_a_slow_server_times_out(tmp_path):
    with serve(lambda body, hit: Reply(content=good_reply(body), delay_s=1.0)) as server:
        generator = make_generator(server, tmp_path, timeout_s=0.2, max_retries=1)
        assert generator.propose_many(requests_for(make_doc())) == [None]
    assert server.hits == 2 and generator.stats["timeout"] == 1


def test_connection_refused_is_counted(tmp_path):
    with serve(answer_well) as server:
        url = server.url
    config = EndpointConfig(base_url=url, model=MODEL, cache_dir=str(tmp_path), max_retries=1, backoff_s=0.01)
    generator = EndpointGenerator(config)
    assert generator.propose_many(requests_for(make_doc())) == [None]
    assert generator.stats["connection_error"] == 1


def test_a_mixed_batch_finishes_with_one_outcome_per_request(tmp_path):
    docs = {name: make_doc(name) for name in ("good", "bad", "err", "slow")}

    def script(body, hit):
        name = shown_pages(body)[min(shown_pages(body))]["text"].split()[0]
        return {"good": Reply(content=good_reply(body)), "bad": Reply(content="nope"),
                "err": Reply(400, "no"), "slow": Reply(content=good_reply(body), delay_s=1.0)}[name]

    requests = [r for name in ("good", "bad", "err", "slow", "good") for r in requests_for(docs[name])]
    requests.append(QARequest(doc=docs["good"], task="ocr-needle", seed=0))
    requests.append(QARequest(doc=make_doc("noimg", images=False), task="extract-single", seed=0))
    with serve(script) as server:
        generator = make_generator(server, tmp_path, timeout_s=0.3, max_retries=0)
        results = generator.propose_many(requests)
    assert [r is not None for r in results] == [True, False, False, False, True, False, False]
    assert results[0] == results[4] and results[0].doc_id == "good"
    counts = {k: generator.stats[k] for k in ("ok", "malformed_json", "http_error", "timeout", "skipped_task",
                                              "no_images")}
    assert counts == {"ok": 2, "malformed_json": 1, "http_error": 1, "timeout": 1, "skipped_task": 1, "no_images": 1}
    assert generator.stats["requests"] == len(requests)


# --- cache ---------------------------------------------------------------------------------------------

def test_cache_rerun_makes_no_http_call_and_changes_miss(tmp_path):
    doc = make_doc()
    requests = requests_for(doc, "extract-single", range(4)) + requests_for(doc, "reasoning", range(2))
    with serve(answer_well) as server:
        first = make_generator(server, tmp_path).propose_many(requests)
        assert server.hits == 6 and all(first)
        again = make_generator(server, tmp_path)
        assert again.propose_many(requests) == first
        assert server.hits == 6 and again.stats["cache_hit"] == 6

        make_generator(server, tmp_path, model="other-vlm").propose_many(requests)
        assert server.hits == 12
        prompts = tmp_path / "prompts"
        shutil.copytree(PROMPTS_DIR, prompts)
        (prompts / "qa_system.txt").write_text("You write one grounded QA pair.\n")
        make_generator(server, tmp_path, prompts_dir=str(prompts)).propose_many(requests)
        assert server.hits == 18
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 18 and not list((tmp_path / "cache").rglob("*.tmp"))


def test_failed_requests_are_asked_again_on_rerun(tmp_path):
    doc = make_doc()
    with serve(lambda body, hit: Reply(400, "no")) as server:
        make_generator(server, tmp_path).propose_many(requests_for(doc))
        make_generator(server, tmp_path).propose_many(requests_for(doc))
    assert server.hits == 2


# --- concurrency and determinism -----------------------------------------------------------------------

def test_at_most_max_concurrency_in_flight_and_results_in_request_order(tmp_path):
    docs = [make_doc(f"doc{i}") for i in range(8)]
    requests = [r for doc in docs for r in requests_for(doc)]
    script = lambda body, hit: Reply(content=good_reply(body), delay_s=0.1)  # noqa: E731
    with serve(script) as server:
        results = make_generator(server, tmp_path / "a", max_concurrency=2).propose_many(requests)
        assert server.max_in_flight == 2
        sequential = make_generator(server, tmp_path / "b", max_concurrency=1).propose_many(requests)
    assert [r.doc_id for r in results] == [d.doc_id for d in docs]
    assert results == sequential


# --- segments, prompts, config -------------------------------------------------------------------------

def test_segments_are_whole_section_runs_of_8_to_15_pages():
    bounds = [(0, 3), (4, 9), (10, 12), (13, 19), (20, 29), (30, 39)]
    sections = tuple(Section(title=f"S{i}", level=1, start_page=a, end_page=b) for i, (a, b) in enumerate(bounds))
    doc = make_doc(pages=40, sections=sections)
    starts, ends = {a for a, _ in bounds}, {b for _, b in bounds}
    seen = set()
    for seed in range(50):
        segment = choose_segment(doc, random.Random(seed), range(40), 8, 15)
        assert segment.start in starts and segment.stop - 1 in ends and 8 <= len(segment) <= 15
        seen.add((segment.start, segment.stop))
    assert len(seen) > 1
    plain = make_doc(pages=40)
    for seed in range(50):
        segment = choose_segment(plain, random.Random(seed), range(40), 8, 15)
        assert 8 <= len(segment) <= 15 and 0 <= segment.start and segment.stop <= 40
    assert choose_segment(make_doc(pages=5), random.Random(0), range(5), 8, 15) == range(5)


def test_segments_fit_the_length_being_built(tmp_path):
    doc = make_doc(pages=40)
    with serve(answer_well) as server:
        generator = make_generator(server, tmp_path)
        generator.propose_many(requests_for(doc, seeds=range(5), target_tokens=600))  # 4 pages of 102 fit 480
    for body in server.bodies:
        assert len(shown_pages(body)) <= 4


def test_ocr_tasks_make_no_request(tmp_path):
    with serve(answer_well) as server:
        generator = make_generator(server, tmp_path)
        requests = [QARequest(doc=make_doc(), task=t, seed=0) for t in ("ocr-full", "ocr-needle")]
        assert generator.propose_many(requests) == [None, None]
    assert server.hits == 0 and generator.stats["skipped_task"] == 2


def test_schema_file_matches_the_qa_contract():
    schema = json.loads((PROMPTS_DIR / "qa_schema.json").read_text())
    props = schema["properties"]
    assert set(props["operation"]["enum"]) == set(OPERATIONS) - {"transcribe"}
    assert props["answer_format"]["enum"] == list(ANSWER_FORMATS)
    assert props["source"]["enum"] == list(EVIDENCE_SOURCES)


def test_image_types_are_read_from_magic_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    assert image_data_url(buffer.getvalue()).startswith("data:image/jpeg;base64,")
    assert image_data_url(_png(0)).startswith("data:image/png;base64,")
    with pytest.raises(DataError):
        image_data_url(b"GIF89a....")


@pytest.mark.parametrize("field_name, value", [("base_url", "localhost:8000"), ("max_concurrency", 0),
                                               ("segment_max_pages", 4), ("timeout_s", 0), ("temperature", 3.0),
                                               ("image_detail", "ultra"), ("max_retries", -1)])
def test_config_errors_name_the_field(tmp_path, field_name, value):
    settings = {"base_url": "http://127.0.0.1:1/v1", "model": MODEL, "cache_dir": str(tmp_path), field_name: value}
    with pytest.raises(ConfigError, match=field_name):
        EndpointConfig.from_dict(settings)


def test_missing_prompt_files_are_a_config_error(tmp_path):
    config = EndpointConfig(base_url="http://127.0.0.1:1/v1", model=MODEL, cache_dir=str(tmp_path / "c"),
                            prompts_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="prompts_dir"):
        EndpointGenerator(config)


def test_the_synth_factory_sends_ocr_tasks_to_the_text_layer(tmp_path):
    from mmprolong.synth.config import SynthConfig
    from mmprolong.synth.generators.factory import make_generator as make_synth_generator

    with serve(answer_well) as server:
        config = SynthConfig.from_dict({"generator": "endpoint", "endpoint": {
            "base_url": server.url, "model": MODEL, "cache_dir": str(tmp_path), "backoff_s": 0.01}})
        generator = make_synth_generator(config, api_key=None)
        doc = make_doc()
        ocr, qa = generator.propose_many([QARequest(doc=doc, task="ocr-needle", seed=0),
                                          QARequest(doc=doc, task="extract-single", seed=0)])
    assert generator.name == "endpoint+textlayer" and server.hits == 1
    assert ocr.generator == "textlayer" and qa.generator == f"endpoint:{MODEL}"
