"""Questions from a vision-language model behind an OpenAI-compatible chat-completions endpoint.

"Short to long" (RECIPE.md, Data): for each request a run of 8-15 consecutive pages (whole sections where
the document has them) is shown to a strong VLM, page by page as "Page K:" + image + text layer, and the
model writes ONE question-answer pair with its evidence as JSON. The reply is checked against a fixed
schema (``prompts/qa_schema.json``) and the task's rules, then converted to a ``QACandidate`` whose page
numbers are 0-based; grounding is left to ``qa.verify``, which the caller runs on every candidate.

Each request ends in exactly one outcome counted in ``stats`` (see OUTCOMES); validated replies are cached
one file per request, keyed by the exact request payload, so a rerun makes no HTTP call for them.
HTTP, retries, the cache and the ``max_concurrency`` requests in flight are ``mmprolong.chat_client``'s.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import string
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmprolong.chat_client import ChatClient, JsonFileCache, RequestFailure, map_bounded, message_content, payload_key
from mmprolong.config import Config, field
from mmprolong.errors import ConfigError, DataError
from mmprolong.synth.documents import DocumentView
from mmprolong.synth.generators import QARequest, evidence_window
from mmprolong.synth.qa import ANSWER_FORMATS, EVIDENCE_SOURCES, Evidence, QACandidate, parse_number

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
SYSTEM_FILE, USER_FILE, SCHEMA_FILE = "qa_system.txt", "qa_user.txt", "qa_schema.json"
CONTENT_RETRIES = 1  # a reply that is not valid JSON for the schema is asked again once, then given up
IMAGE_DETAILS = ("low", "high", "auto")
MAX_FAILURE_KINDS = 1000  # distinct failure details kept for the report; counts by reason are always kept
# One outcome per request. Failures are the request's final reason; retried attempts count in "retried".
OUTCOMES = ("ok", "skipped_task", "no_images", "image_error", "http_error", "timeout", "connection_error",
            "retries_exhausted", "bad_response", "malformed_json", "schema_invalid")


@dataclass(frozen=True, slots=True)
class TaskRule:
    operations: tuple[str, ...]
    min_pages: int = 1  # distinct evidence pages
    max_pages: int | None = None
    min_items: int = 1  # evidence items


# What each task may ask (RECIPE.md): one fact on one page; facts over 2+ pages; arithmetic over 2+ points.
TASK_RULES = {
    "extract-single": TaskRule(("lookup", "list"), max_pages=1),
    "extract-multi": TaskRule(("list",), min_pages=2, min_items=2),
    "aggregate": TaskRule(("sum", "average", "count"), min_items=2),
    "reasoning": TaskRule(("difference", "ratio", "sum", "average", "argmax", "argmin", "count"), min_items=2),
}


@dataclass(kw_only=True)
class EndpointConfig(Config):
    base_url: str = field(help="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1 (POST {base_url}"
                               "/chat/completions)")
    model: str = field(help="model name sent with each request; part of the cache key")
    api_key_env: str | None = field(None, help="environment variable holding the API key; the CLI reads it and "
                                               "passes the key (library code never reads the environment)")
    max_concurrency: int = field(8, help="requests in flight at once, >= 1")
    timeout_s: float = field(120.0, help="socket timeout per HTTP attempt, seconds")
    max_retries: int = field(4, help="retries after a connection error, timeout, HTTP 429 or 5xx, >= 0")
    backoff_s: float = field(1.0, help="first retry pause, seconds; doubles per retry, with jitter (Retry-After "
                                       "wins when the server sends it)")
    temperature: float = field(0.0, help="sampling temperature, 0-2")
    max_tokens: int = field(1024, help="most tokens the model may write per reply")
    segment_min_pages: int = field(8, help="fewest consecutive pages shown per question (paper: 8); shorter "
                                           "documents are shown whole")
    segment_max_pages: int = field(15, help="most consecutive pages shown per question (paper: 15)")
    cache_dir: str = field(help="folder of cached replies, one file per request; a rerun reuses them")
    prompts_dir: str | None = field(None, help="folder with qa_system.txt, qa_user.txt, task_<task>.txt and "
                                               "qa_schema.json; default: the packaged prompts")
    image_detail: str | None = field(None, help="image_url detail sent with each page (low, high, auto); "
                                                "default: not sent")

    def validate(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url", self.base_url, "give an http:// or https:// URL, e.g. "
                                                         "http://127.0.0.1:8000/v1")
        for name in ("model", "cache_dir"):
            if not getattr(self, name).strip():
                raise ConfigError(name, getattr(self, name), "must not be empty")
        for name in ("max_concurrency", "max_tokens", "segment_min_pages"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.segment_max_pages < self.segment_min_pages:
            raise ConfigError("segment_max_pages", self.segment_max_pages,
                              f"must be >= segment_min_pages ({self.segment_min_pages})")
        if self.timeout_s <= 0:
            raise ConfigError("timeout_s", self.timeout_s, "must be > 0 seconds")
        if self.max_retries < 0:
            raise ConfigError("max_retries", self.max_retries, "must be >= 0")
        if self.backoff_s < 0:
            raise ConfigError("backoff_s", self.backoff_s, "must be >= 0 seconds")
        if not 0 <= self.temperature <= 2:
            raise ConfigError("temperature", self.temperature, "must be in [0, 2]")
        if self.image_detail is not None and self.image_detail not in IMAGE_DETAILS:
            raise ConfigError("image_detail", self.image_detail, f"use one of {', '.join(IMAGE_DETAILS)} or leave "
                                                                 "it unset")


# --- prompts -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Prompts:
    system: str
    user: string.Template  # ${first_page} ${last_page} ${page_count} ${task_instruction} ${schema}
    tasks: dict[str, str]  # task -> instruction
    schema: dict
    schema_text: str

    @classmethod
    def load(cls, folder: str | Path | None) -> Prompts:
        folder = Path(folder) if folder is not None else PROMPTS_DIR
        names = [SYSTEM_FILE, USER_FILE, SCHEMA_FILE] + [f"task_{t}.txt" for t in TASK_RULES]
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise ConfigError("prompts_dir", str(folder), f"missing {', '.join(missing)}; start from a copy of "
                                                          f"{PROMPTS_DIR}")
        text = {n: (folder / n).read_text(encoding="utf-8").strip() for n in names}
        try:
            schema = json.loads(text[SCHEMA_FILE])
        except json.JSONDecodeError as exc:
            raise ConfigError("prompts_dir", str(folder / SCHEMA_FILE), f"not valid JSON: {exc}") from None
        return cls(system=text[SYSTEM_FILE], user=string.Template(text[USER_FILE]),
                   tasks={t: text[f"task_{t}.txt"] for t in TASK_RULES}, schema=schema,
                   schema_text=text[SCHEMA_FILE])


# --- the request ---------------------------------------------------------------------------------------

def choose_segment(doc: DocumentView, rng: random.Random, window: range, min_pages: int, max_pages: int) -> range:
    """Consecutive pages inside ``window``: a run of whole sections of min..max pages when the document has
    one, else any min..max-page run; a window shorter than min_pages is taken whole."""
    if len(window) <= min_pages:
        return window
    runs = sorted(_section_runs(doc, window, min_pages, max_pages))
    if runs:
        first, last = rng.choice(runs)
        return range(first, last + 1)
    length = rng.randint(min_pages, min(max_pages, len(window)))
    start = rng.randint(window.start, window.stop - length)
    return range(start, start + length)


def _section_runs(doc: DocumentView, window: range, min_pages: int, max_pages: int) -> set[tuple[int, int]]:
    """(first, last) page of every run of consecutive same-level sections spanning min..max pages in window."""
    runs = set()
    for level in sorted({s.level for s in doc.sections}):
        sections = sorted((s for s in doc.sections if s.level == level), key=lambda s: (s.start_page, s.end_page))
        for i, head in enumerate(sections):
            for tail in sections[i:]:
                first, last = head.start_page, max(tail.end_page, head.end_page)
                if last - first + 1 > max_pages:
                    break
                if last - first + 1 >= min_pages and window.start <= first and last < window.stop:
                    runs.add((first, last))
    return runs


_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def image_data_url(data: bytes) -> str:
    """A data: URL for encoded image bytes, its type read from the magic bytes (PNG, JPEG, WebP)."""
    mime = next((m for magic, m in _IMAGE_MAGIC if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        raise DataError(f"page image is not PNG, JPEG or WebP (starts with {data[:8]!r})")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_payload(config: EndpointConfig, prompts: Prompts, doc: DocumentView, task: str, segment: range) -> dict:
    """The chat-completions request body: per page "Page K:" (K 1-based in the document), image, text layer."""
    content: list[dict] = []
    for page in segment:
        k = page + 1
        image = {"url": image_data_url(doc.load_image(page))}
        if config.image_detail:
            image["detail"] = config.image_detail
        text = doc.page_texts[page].strip() or "(no text on this page)"
        content += [{"type": "text", "text": f"Page {k}:"}, {"type": "image_url", "image_url": image},
                    {"type": "text", "text": f"Text layer of page {k}:\n{text}"}]
    instruction = prompts.user.safe_substitute(
        first_page=segment.start + 1, last_page=segment.stop, page_count=doc.page_count,
        task_instruction=prompts.tasks[task], schema=prompts.schema_text)
    content.append({"type": "text", "text": instruction})
    return {"model": config.model, "temperature": config.temperature, "max_tokens": config.max_tokens,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": prompts.system}, {"role": "user", "content": content}]}


# --- the reply -----------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_reply(text: str) -> dict:
    """The JSON object of a reply (a code fence around it is tolerated; NaN and Infinity are not)."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise RequestFailure("malformed_json", str(exc)[:120]) from None
    if not isinstance(data, dict):
        raise RequestFailure("malformed_json", f"expected a JSON object, got {type(data).__name__}")
    return data


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


_JSON_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def schema_error(value: object, schema: dict, path: str = "$") -> str | None:
    """The first violation of ``schema`` (the JSON-schema subset qa_schema.json uses: type, enum, required,
    properties, items, minItems, minLength), or None. Unknown keywords and extra properties are ignored."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_JSON_TYPES[k](value) for k in kinds):
            return f"{path}: expected {'|'.join(kinds)}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} not one of {schema['enum']}"
    if isinstance(value, str) and len(value.strip()) < schema.get("minLength", 0):
        return f"{path}: shorter than {schema['minLength']} characters"
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                return f"{path}: missing {name!r}"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found = schema_error(value[name], sub, f"{path}.{name}")
                if found:
                    return found
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{path}: fewer than {schema['minItems']} items"
        for i, item in enumerate(value):
            found = schema_error(item, schema.get("items", {}), f"{path}[{i}]")
            if found:
                return found
    return None


_ANCHOR_1BASED = re.compile(r"\{\s*page\s*:\s*(\d+)\s*\}", re.IGNORECASE)
_ANCHOR_0BASED = re.compile(r"\{page:\d+\}")
# A page number the model wrote without an anchor ("page 12", "pages 3-5", "p. 7"): wrong once the document
# sits among other pages, since the layout renders anchors as positions in the sample.
_BARE_PAGE = re.compile(r"\bpages?\s*(?:no\.?\s*|#\s*)?\d|\bpp?\.\s*\d|\{\s*page", re.IGNORECASE)


def convert_anchors(question: str, segment: range) -> str:
    """Model anchors {page:K} (K 1-based, inside the segment) -> candidate anchors {page:K-1} (0-based)."""
    def convert(match: re.Match) -> str:
        page = int(match.group(1)) - 1
        if page not in segment:
            raise RequestFailure("schema_invalid", f"question anchors page {page + 1}, outside the pages shown "
                                             f"({segment.start + 1}-{segment.stop})")
        return f"{{page:{page}}}"

    converted = _ANCHOR_1BASED.sub(convert, question)
    if _BARE_PAGE.search(_ANCHOR_0BASED.sub("", converted)):
        raise RequestFailure("schema_invalid", "question names a page without a {page:K} anchor")
    return converted


def _answer(value: object, answer_format: str) -> str | int | float | list:
    if answer_format == "List":
        if not isinstance(value, list) or not value:
            raise RequestFailure("schema_invalid", "answer_format List needs a non-empty list answer")
        return value
    if isinstance(value, list):
        raise RequestFailure("schema_invalid", f"a list answer needs answer_format List, not {answer_format}")
    if answer_format == "String":
        return value if isinstance(value, str) else str(value)
    number = parse_number(value)
    if number is None:
        raise RequestFailure("schema_invalid", f"answer {value!r} is not a number ({answer_format})")
    if answer_format == "Integer":
        if number != int(number):
            raise RequestFailure("schema_invalid", f"answer {value!r} is not an integer")
        return int(number)
    return number if isinstance(value, str) else value


def _canonical_enums(data: dict) -> None:
    """Case-only slips in enum fields ("Text", "integer") are corrected; anything else stays for the schema."""
    if isinstance(data.get("source"), str) and data["source"].lower() in EVIDENCE_SOURCES:
        data["source"] = data["source"].lower()
    formats = {f.lower(): f for f in ANSWER_FORMATS}
    if isinstance(data.get("answer_format"), str):
        data["answer_format"] = formats.get(data["answer_format"].lower(), data["answer_format"])


def to_candidate(data: dict, request: QARequest, segment: range, schema: dict, model: str) -> QACandidate:
    """A candidate from a parsed reply, pages converted to 0-based; a RequestFailure("schema_invalid") otherwise."""
    _canonical_enums(data)
    problem = schema_error(data, schema)
    if problem:
        raise RequestFailure("schema_invalid", problem)
    evidence = []
    for item in data["evidence"]:
        page = item["page"] - 1
        if page not in segment:
            raise RequestFailure("schema_invalid", f"evidence page {item['page']} outside the pages shown "
                                             f"({segment.start + 1}-{segment.stop})")
        evidence.append(Evidence(page=page, quote=item["quote"], value=item["value"], label=item.get("label")))
    rule = TASK_RULES[request.task]
    pages = len({e.page for e in evidence})
    if data["operation"] not in rule.operations:
        raise RequestFailure("schema_invalid", f"operation {data['operation']!r} not allowed for {request.task}")
    if pages < rule.min_pages or (rule.max_pages is not None and pages > rule.max_pages):
        raise RequestFailure("schema_invalid", f"{request.task} evidence spans {pages} pages")
    if len(evidence) < rule.min_items:
        raise RequestFailure("schema_invalid", f"{request.task} needs >= {rule.min_items} evidence items")
    return QACandidate(
        doc_id=request.doc.doc_id, task=request.task, question=convert_anchors(data["question"].strip(), segment),
        answer_value=_answer(data["answer"], data["answer_format"]), answer_format=data["answer_format"],
        operation=data["operation"], evidence=tuple(evidence), source=data["source"],
        generator=f"endpoint:{model}", extra={"segment": [segment.start, segment.stop - 1]})


# --- the generator -------------------------------------------------------------------------------------

class EndpointGenerator:
    """QAGenerator over an OpenAI-compatible VLM endpoint; OCR tasks are not its job (they return None)."""

    name = "endpoint"

    def __init__(self, config: EndpointConfig, *, api_key: str | None = None, show_progress: bool = False):
        config.validate()
        self.config = config
        self.prompts = Prompts.load(config.prompts_dir)
        self.client = ChatClient(config.base_url, api_key=api_key, timeout_s=config.timeout_s,
                                 max_retries=config.max_retries, backoff_s=config.backoff_s, count=self._count)
        self.cache = JsonFileCache(config.cache_dir)  # validated reply texts, keyed by the exact request
        self.show_progress = show_progress
        self.stats: Counter = Counter()  # OUTCOMES, plus requests, cache_hit, http_calls, retried, ...
        self.failures: Counter = Counter()  # "reason: detail" of failed requests (details cut short)
        self._lock = threading.Lock()

    def propose_many(self, requests: Sequence[QARequest]) -> list[QACandidate | None]:
        results = map_bounded(self.propose, requests, max_workers=self.config.max_concurrency,
                              desc=f"endpoint {self.config.model}", show_progress=self.show_progress)
        if requests:
            log.info("endpoint %s: %s", self.config.model, dict(sorted(self.stats.items())))
        return results

    def propose(self, request: QARequest) -> QACandidate | None:
        self._count("requests")
        doc = request.doc
        if request.task not in TASK_RULES:
            return self._fail(RequestFailure("skipped_task", request.task))
        if doc.load_image is None:
            return self._fail(RequestFailure("no_images", doc.doc_id))
        rng = random.Random(request.seed)
        segment = choose_segment(doc, rng, evidence_window(request, rng), self.config.segment_min_pages,
                                 self.config.segment_max_pages)
        try:
            payload = build_payload(self.config, self.prompts, doc, request.task, segment)
        except (DataError, OSError) as exc:
            return self._fail(RequestFailure("image_error", f"{doc.doc_id}: {exc}"))
        key = payload_key(payload, self.config.model)
        cached = self.cache.get(key)
        if cached is not None and isinstance(cached.get("content"), str):
            try:
                candidate = self._candidate(cached["content"], request, segment)
                self._count("cache_hit")
                self._count("ok")
                return candidate
            except RequestFailure:
                self._count("cache_invalid")  # written by other prompts or rules: ask again
        return self._ask(payload, key, request, segment)

    def _ask(self, payload: dict, key: str, request: QARequest, segment: range) -> QACandidate | None:
        backoff_rng = random.Random(f"{request.seed}/backoff")
        for attempt in range(CONTENT_RETRIES + 1):
            try:
                content = message_content(self.client.post(payload, rng=backoff_rng))
                candidate = self._candidate(content, request, segment)
            except RequestFailure as failure:
                if failure.reason in ("bad_response", "malformed_json", "schema_invalid") and attempt < CONTENT_RETRIES:
                    self._count("content_retried")
                    continue
                return self._fail(failure)
            self.cache.put(key, {"model": self.config.model, "content": content})
            self._count("ok")
            return candidate
        raise AssertionError("unreachable")

    def _candidate(self, content: str, request: QARequest, segment: range) -> QACandidate:
        return to_candidate(parse_reply(content), request, segment, self.prompts.schema, self.config.model)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _fail(self, failure: RequestFailure) -> None:
        with self._lock:
            self.stats[failure.reason] += 1
            detail = f"{failure.reason}: {failure.detail[:80]}"
            if detail in self.failures or len(self.failures) < MAX_FAILURE_KINDS:
                self.failures[detail] += 1
        log.debug("endpoint request failed: %s", failure)
        return None
