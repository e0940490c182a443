"""EvalConfig: which suite, at which lengths and depths, how items are built, scored and generated.

Lengths are exact cross-modal token counts (``ChatTemplate.count`` of the item with its gold answer, the
same accounting synth and train use), written as "8k"/"128K" = multiples of 1024 on the command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mmprolong.config import Config, field
from mmprolong.errors import ConfigError
from mmprolong.eval.rope_scaling import RopeScaling
from mmprolong.models import DEFAULT_FAMILY, FAMILIES, get_family

SUITES = ("niah", "docvqa", "synth-heldout", "mmniah")
DOCVQA_DATASETS = ("mmlongbench-doc", "longdocurl", "slidevqa")
# MMLongBench's needle tasks (mmprolong.eval.suites.mmniah): MM-NIAH's, the paper's, and the visual haystack.
MMNIAH_TASKS = ("retrieval-text", "counting-text", "reasoning-text", "retrieval-image", "counting-image",
                "reasoning-image")
VISUAL_HAYSTACK_TASKS = ("vh_single", "vh_multi")
_LENGTH = re.compile(r"^\s*(\d+)\s*([kKmM]?)\s*$")


def parse_length(text: str | int) -> int:
    """"8k" / "128K" -> 8192 / 131072 (K = 1024, M = 1024*1024); a bare number is tokens."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _LENGTH.match(str(text))
        if not match:
            raise ConfigError("lengths", text, "write a length as tokens (4096) or with a K/M suffix (8k, 128K, 1M)")
        value = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    if value <= 0:
        raise ConfigError("lengths", text, "a length must be a positive number of tokens")
    return value


def parse_lengths(text: str | list) -> list[int]:
    """"8k,16k,128K" (or a list of such) -> [8192, 16384, 131072], order kept, duplicates dropped."""
    pieces = text.split(",") if isinstance(text, str) else list(text)
    lengths = []
    for piece in pieces:
        if isinstance(piece, str) and not piece.strip():
            continue
        value = parse_length(piece)
        if value not in lengths:
            lengths.append(value)
    if not lengths:
        raise ConfigError("lengths", text, "give at least one length, e.g. 8k,16k,32k")
    return lengths


def format_length(tokens: int) -> str:
    """131072 -> "128K"; 1000 -> "1000"."""
    return f"{tokens // 1024}K" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)


def depth_grid(steps: int) -> list[float]:
    """``steps`` depths evenly from 0 to 1 (0%, ..., 100%); one step is depth 0.5."""
    if steps == 1:
        return [0.5]
    return [round(i / (steps - 1), 6) for i in range(steps)]


HELDOUT_DEPTHS = 4  # evidence at 0, 1/3, 2/3 and 1 of the context
# synth's tasks as synth-heldout asks them; the OCR ones are scored as transcripts (char-similarity) and need
# max_new_tokens at least as long as the transcript
HELDOUT_TASKS = ("extract-single", "extract-multi", "aggregate", "reasoning", "ocr-full", "ocr-needle")


def niah_config(lengths: list[int], items: int, *, depth_steps: int = 5, **fields) -> EvalConfig:
    """Single-needle niah at ``lengths``, ``items`` needles per (length, depth), short greedy answers (a needle's
    code is a few tokens): the grid the quickstart, the starting point's card and reproduce use."""
    return EvalConfig(suite="niah", lengths=lengths, depth_steps=depth_steps, needles=[1], items_per_cell=items,
                      max_new_tokens=12, **fields)


def heldout_config(lengths: list[int], items: int, **fields) -> EvalConfig:
    """synth-heldout at ``lengths`` with about ``items`` questions per task and length (rounded up to a multiple of
    the 4 depths they are spread over)."""
    return EvalConfig(suite="synth-heldout", lengths=lengths, depth_steps=HELDOUT_DEPTHS,
                      items_per_cell=max(1, -(-items // HELDOUT_DEPTHS)), **{"max_new_tokens": 24, **fields})


@dataclass(kw_only=True)
class EvalConfig(Config):
    """Settings of the eval stage (model x suite -> results table and plots)."""

    suite: Literal["niah", "docvqa", "synth-heldout", "mmniah"] = field(
        "niah", help="what to measure: niah (multimodal needle), docvqa, synth-heldout, mmniah (MMLongBench's "
                     "MM-NIAH / visual haystack files)")
    lengths: list[int] = field(default_factory=lambda: [65536, 131072],
                               help="input lengths (tokens; the CLI takes 8k,16k,...,512k)")
    depth_steps: int = field(11, help="needle/evidence depths evenly from 0% to 100% (11 = every 10%)")
    seed: int = field(0, help="fixes the item grid: same seed and inputs, same items for every model")
    store_dir: str | None = field(None, help="page store (haystack for niah, documents for synth-heldout, "
                                             "extra padding documents for docvqa)")
    data_dir: str | None = field(None, help="docvqa: folder with one sub-folder per dataset in its released layout")
    datasets: list[str] = field(default_factory=lambda: list(DOCVQA_DATASETS),
                                help="docvqa datasets to read: mmlongbench-doc, longdocurl, slidevqa")
    max_questions: int = field(100, help="docvqa: questions per dataset and length (paper: 100); -1 = all")
    docvqa_metric: Literal["mmlongbench", "native"] = field(
        "mmlongbench", help="mmlongbench: MMLongBench's rule-based doc-QA score for all three datasets (the paper's "
                            "setting without the judge); native: each dataset's official scorer")
    pdf_max_dpi: float = field(144.0, help="docvqa PDFs are rendered at this resolution, lowered to fit max_pixels")
    docvqa_source: Literal["released", "mmlongbench"] = field(
        "released", help="docvqa inputs. released: each benchmark's own files (DATA_DIR/<dataset>/), cut or padded "
                         "here to each length; mmlongbench: MMLongBench's prebuilt inputs (DATA_DIR/mmlb_data/"
                         "documentQA/<name>_K<n>.jsonl + DATA_DIR/mmlb_image/), the files behind its published "
                         "numbers, at 8K-128K")
    longdocurl_pages: Literal["document", "window"] = field(
        "document", help="LongDocURL pages a question sees. document: the whole document, cut or padded like the "
                         "others (MMLongBench's and the paper's protocol); window: the record's start_end_idx "
                         "window, never padded (LongDocURL's own protocol and leaderboard)")
    render_cache_dir: str | None = field(None, help="docvqa: rendered PDF pages and extracted slides, kept between "
                                                    "runs by file content (SHA-256) and render settings; none: "
                                                    "DATA_DIR/.mmprolong-cache")
    needles: list[int] = field(default_factory=lambda: [1, 3],
                               help="niah variants by needle count: 1 = single needle, k > 1 = k needles asked at once")
    lookalikes: list[int] = field(
        default_factory=list, help="niah variants with one needle asked and L notes about other archives, with other "
                                   "codes, hidden in its haystack (RULER's multi-key needle): whether a model picks "
                                   "the note by its name, as synth's extract-single questions about a register ask, "
                                   "or just copies the one code it sees. E.g. [1, 3, 7]; default none")
    items_per_cell: int = field(1, help="niah and synth-heldout: items per (length, depth, variant) cell")
    haystacks: Literal["per-length", "per-item"] = field(
        "per-length", help="niah: per-length, item i of every depth at a length hides its needle in the same "
                           "documents (the classic grid: depths compared on equal haystacks; a length's items are "
                           "items_per_cell haystacks, not independent draws); per-item, each (depth, item) draws its "
                           "own, so a length's items are independent as its interval assumes (the quickstart's)")
    heldout_fraction: float = field(0.05, help="synth-heldout: share of store documents held out from training "
                                               "(hash split of doc_id, mmprolong.split); the value synth used")
    heldout_tasks: list[str] = field(default_factory=lambda: ["extract-single", "extract-multi", "reasoning"],
                                     help="synth-heldout: synth tasks to ask (extract-single, extract-multi, "
                                          "aggregate, reasoning; ocr-full, ocr-needle: transcription, scored by "
                                          "character similarity, with max_new_tokens >= the transcript)")
    heldout_anchor_share: float = field(
        1.0, help="synth-heldout: share of extract-single questions that say where their fact is (synth's "
                  "anchor_share; 1 = the paper's form). Ask held-out questions in the form the model was trained on, "
                  "or in both, to tell reading from the question's form")
    truth_dir: str | None = field(None, help="synth-heldout: folder of the corpus' *.truth.json files; none: the "
                                             "folder the store was ingested from, as synth does")
    length_tolerance: int = field(-1, help="an item may be this many tokens short of its length; -1 = one page "
                                           "(the largest page span that could have been added)")
    family: str = field("auto", help=f"model family items are laid out and counted for ({', '.join(FAMILIES)}); "
                                     "auto: the model's, else the tokenizer folder's config.json, else the store's, "
                                     f"else {DEFAULT_FAMILY.name}. Set, it must agree with the model's")
    min_pixels: int | None = field(None, help="pixel budget for token counting; none: the model's image processor, "
                                              "else the store's, else the family's default")
    max_pixels: int | None = field(None, help="pixel budget for token counting; none: the model's image processor, "
                                              "else the store's, else the family's default")
    max_new_tokens: int = field(128, help="tokens generated per item, greedy (paper: 128)")
    batch_size: int = field(1, help="items handed to the backend per call")
    max_model_len: int = field(-1, help="items whose prompt + max_new_tokens exceed this fail as per-item errors "
                                        "(tokens); -1 = no limit beyond the backend's own")
    backend: Literal["hf", "vllm", "openai"] = field("hf", help="how answers are generated when a model is given")
    base_url: str = field("http://127.0.0.1:8000/v1", help="openai: the endpoint's base URL")
    api_model: str = field("", help="openai: model name sent to the endpoint")
    timeout_s: float = field(600.0, help="openai: seconds to wait for one answer")
    retries: int = field(3, help="openai: retries of a failed request (connection error, 429, 5xx)")
    concurrency: int = field(4, help="openai: requests in flight")
    tokenizer: str | None = field(None, help="tokenizer folder for counting when the backend has none (openai); "
                                             "none: the model path, else the shipped tokenizer")
    rope_scaling: Literal["none", "yarn", "dynamic", "yarn-dynamic"] = field(
        "none", help="RoPE scaling applied to the model config before loading; none = the model as trained (paper); "
                     "yarn-dynamic (hf backend): each input past rope_window tokens with YaRN of factor tokens / "
                     "rope_window over the positions that window spans in it (mmprolong.eval.rope_scaling)")
    rope_factor: float = field(4.0, help="rope_scaling factor (MMLongBench's YaRN for Qwen2.5-VL: 4)")
    original_max_positions: int = field(32768, help="positions the model was trained for, where scaling starts "
                                                    "(Qwen2.5-VL: 32768)")
    rope_window: int = field(0, help="yarn-dynamic: the model's trained window, tokens (the quickstart's LongPT: "
                                     "4096); an input no longer is computed as unscaled")
    attn_logn_window: int | None = field(
        None, help="hf backend: log-length attention scaling at inference (ModelConfig.attn_logn_window: queries "
                   "past token W sharpened by ln(i+1)/ln(W)); none: the model's own setting, 0: off. The paper "
                   "runs without; it recovers retrieval a model lost beyond its window (benchmarks/logn.py)")
    attn_page_window: int = field(
        0, help="hf backend: page-local attention at inference: in the language model a vision token attends only "
                "to the prompt's preamble and the last P tokens (text tokens to all), so a page is computed as in a "
                "P-token prompt however far into the input it stands (LM-Infinite's mask, for page tokens); 0: "
                "off. The paper runs without (benchmarks/page_window.py)")
    label: str = field("", help="model name in tables and plots; empty: the model path or backend")
    cache_dir: str | None = field(None, help="answer cache folder (shareable between runs); none: OUT/cache")
    mmniah_tasks: list[str] = field(default_factory=lambda: list(MMNIAH_TASKS),
                                    help="mmniah: MMLongBench needle tasks read from data_dir/NIAH (MM-NIAH, the "
                                         "paper's: retrieval-text, counting-text, reasoning-text, retrieval-image, "
                                         "counting-image, reasoning-image; visual haystack: vh_single, vh_multi)")
    mmniah_questions: int = field(50, help="mmniah: records per task and length (MMLongBench's MM-NIAH configs: "
                                           "50); -1 = all")
    image_dir: str | None = field(None, help="mmniah: folder the records' image paths are relative to "
                                             "(MMLongBench's mmlb_image); none: data_dir")
    llm_scoring: Literal["none", "extract", "judge"] = field(
        "none", help="docvqa: none = rule-based scores only; extract = an LLM first extracts the short answer, "
                     "then docvqa_metric=native scores it (the official MMLongBench-Doc and LongDocURL pipelines; "
                     "SlideVQA has no extraction step); judge = MMLongBench v1.1's LLM judge (0/1 per answer, F1 "
                     "for lists: the paper's setting)")
    judge_base_url: str = field("", help="extract/judge: the scoring LLM's OpenAI-compatible base URL, e.g. "
                                         "http://127.0.0.1:8001/v1")
    judge_model: str = field("", help="extract/judge: model name sent to the scoring LLM (part of its cache key)")
    judge_timeout_s: float = field(120.0, help="extract/judge: seconds to wait for one reply")
    judge_retries: int = field(4, help="extract/judge: retries of a failed request (connection error, 429, 5xx)")
    judge_concurrency: int = field(8, help="extract/judge: requests in flight")
    judge_max_tokens: int = field(256, help="extract/judge: tokens the scoring LLM may write (MMLongBench's judge "
                                            "and MMLongBench-Doc's extractor: 256)")
    judge_cache_dir: str | None = field(None, help="extract/judge: reply cache folder (a rerun asks nothing twice); "
                                                   "none: OUT/judge_cache")

    def validate(self) -> None:
        if not self.lengths:
            raise ConfigError("lengths", self.lengths, "give at least one length, e.g. 8k,16k")
        self.lengths = [parse_length(x) for x in self.lengths]
        for name in ("depth_steps", "items_per_cell", "max_new_tokens", "batch_size", "concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "expected an integer >= 1")
        if self.max_questions == 0 or self.max_questions < -1:
            raise ConfigError("max_questions", self.max_questions, "expected a positive count or -1 (all)")
        if any(k < 1 for k in self.needles) or not (self.needles or self.lookalikes):
            raise ConfigError("needles", self.needles, "expected needle counts >= 1, e.g. [1, 3] (empty only with "
                                                       "lookalikes)")
        if any(n < 1 for n in self.lookalikes):
            raise ConfigError("lookalikes", self.lookalikes, "expected counts of other notes >= 1, e.g. [1, 3, 7]")
        unknown = [d for d in self.datasets if d not in DOCVQA_DATASETS]
        if unknown:
            raise ConfigError("datasets", self.datasets, f"unknown {unknown}; known: {', '.join(DOCVQA_DATASETS)}")
        bad_tasks = [t for t in self.heldout_tasks if t not in HELDOUT_TASKS]
        if bad_tasks or not self.heldout_tasks:
            raise ConfigError("heldout_tasks", self.heldout_tasks, f"expected some of {', '.join(HELDOUT_TASKS)}")
        if not 0 < self.heldout_fraction < 1:
            raise ConfigError("heldout_fraction", self.heldout_fraction, "expected a share in (0, 1), e.g. 0.05")
        if not 0 <= self.heldout_anchor_share <= 1:
            raise ConfigError("heldout_anchor_share", self.heldout_anchor_share, "must be in [0, 1]")
        if self.length_tolerance < -1:
            raise ConfigError("length_tolerance", self.length_tolerance, "expected tokens >= 0, or -1 (one page)")
        if self.max_model_len == 0 or self.max_model_len < -1:
            raise ConfigError("max_model_len", self.max_model_len, "expected tokens > 0, or -1 (no limit)")
        if self.attn_logn_window is not None and self.attn_logn_window < 0:
            raise ConfigError("attn_logn_window", self.attn_logn_window, "expected 0 (off) or a window in tokens")
        if self.attn_logn_window and self.backend != "hf":
            raise ConfigError("attn_logn_window", self.attn_logn_window, f"the {self.backend} backend cannot apply "
                                                                         "log-length scaling: use backend hf")
        if self.attn_page_window < 0:
            raise ConfigError("attn_page_window", self.attn_page_window, "expected 0 (off) or a window in tokens")
        if self.attn_page_window and self.backend != "hf":
            raise ConfigError("attn_page_window", self.attn_page_window, f"the {self.backend} backend cannot apply "
                                                                         "page-local attention: use backend hf")
        if self.rope_factor < 1:
            raise ConfigError("rope_factor", self.rope_factor, "expected a factor >= 1 (4 extends 32K to 128K)")
        if self.original_max_positions < 1:
            raise ConfigError("original_max_positions", self.original_max_positions, "expected positions >= 1")
        RopeScaling.from_config(self)  # the settings the backend scales with (yarn-dynamic's rope_window among them)
        if self.rope_scaling == "yarn-dynamic" and self.backend != "hf":
            raise ConfigError("rope_scaling", self.rope_scaling, f"the {self.backend} backend cannot scale each "
                                                                 "input by its length: use backend hf, or yarn")
        if self.retries < 0 or self.timeout_s <= 0:
            raise ConfigError("retries" if self.retries < 0 else "timeout_s",
                              self.retries if self.retries < 0 else self.timeout_s, "expected retries >= 0, "
                                                                                    "timeout_s > 0")
        if self.pdf_max_dpi <= 0:
            raise ConfigError("pdf_max_dpi", self.pdf_max_dpi, "expected dots per inch > 0")
        for name in ("min_pixels", "max_pixels"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, value, "must be a positive number of pixels")
        if self.family != "auto":
            get_family(self.family)
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise ConfigError("min_pixels", self.min_pixels, f"must not exceed max_pixels={self.max_pixels}")
        if self.docvqa_source == "mmlongbench" and self.longdocurl_pages == "window":
            raise ConfigError("longdocurl_pages", self.longdocurl_pages, "MMLongBench's prebuilt inputs fix every "
                                                                          "page: use docvqa_source released")
        if self.suite == "docvqa" and not self.data_dir:
            raise ConfigError("data_dir", self.data_dir, "the docvqa suite reads a local folder: set data_dir "
                                                         "(write_docvqa_samples makes a small one)")
        if self.suite in ("niah", "synth-heldout") and not self.store_dir:
            raise ConfigError("store_dir", self.store_dir, f"the {self.suite} suite needs a page store "
                                                           "(`mmprolong ingest`)")
        self._validate_mmniah()
        self._validate_llm_scoring()

    def _validate_mmniah(self) -> None:
        known = MMNIAH_TASKS + VISUAL_HAYSTACK_TASKS
        if not self.mmniah_tasks or any(t not in known for t in self.mmniah_tasks):
            raise ConfigError("mmniah_tasks", self.mmniah_tasks, f"expected some of {', '.join(known)}")
        if self.mmniah_questions == 0 or self.mmniah_questions < -1:
            raise ConfigError("mmniah_questions", self.mmniah_questions, "expected a positive count or -1 (all)")
        if self.suite == "mmniah" and not self.data_dir:
            raise ConfigError("data_dir", self.data_dir, "the mmniah suite reads MMLongBench's released files: set "
                                                         "data_dir to its mmlb_data folder (write_mmniah_samples "
                                                         "makes a small one)")

    def _validate_llm_scoring(self) -> None:
        for name in ("judge_concurrency", "judge_max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "expected an integer >= 1")
        if self.judge_retries < 0 or self.judge_timeout_s <= 0:
            raise ConfigError("judge_retries" if self.judge_retries < 0 else "judge_timeout_s",
                              self.judge_retries if self.judge_retries < 0 else self.judge_timeout_s,
                              "expected judge_retries >= 0, judge_timeout_s > 0")
        if self.llm_scoring == "none":
            return
        if self.suite != "docvqa":
            raise ConfigError("llm_scoring", self.llm_scoring, f"extraction and the judge score docvqa answers; the "
                                                               f"{self.suite} suite has rule-based metrics only: set "
                                                               "llm_scoring=none")
        if self.llm_scoring == "extract" and self.docvqa_metric != "native":
            raise ConfigError("docvqa_metric", self.docvqa_metric, "llm_scoring=extract feeds the extracted answer "
                                                                   "to each dataset's official scorer: set "
                                                                   "docvqa_metric=native")
        if not self.judge_base_url.startswith(("http://", "https://")):
            raise ConfigError("judge_base_url", self.judge_base_url, "give the scoring LLM's http:// or https:// "
                                                                     "URL, e.g. http://127.0.0.1:8001/v1")
        if not self.judge_model.strip():
            raise ConfigError("judge_model", self.judge_model, "name the model the scoring endpoint serves")

    def item_fields(self) -> dict:
        """The fields that decide which items are built (not how answers are generated)."""
        keys = ("suite", "lengths", "depth_steps", "seed", "datasets", "max_questions", "pdf_max_dpi", "needles",
                "items_per_cell", "heldout_fraction", "heldout_tasks", "length_tolerance", "docvqa_metric",
                "docvqa_source", "longdocurl_pages")
        if self.suite == "mmniah":  # only then, so the fingerprints of the other suites' runs stay as they were
            keys += ("mmniah_tasks", "mmniah_questions")
        if self.heldout_anchor_share != 1.0:  # likewise
            keys += ("heldout_anchor_share",)
        if self.lookalikes:  # likewise
            keys += ("lookalikes",)
        return {k: getattr(self, k) for k in keys}
