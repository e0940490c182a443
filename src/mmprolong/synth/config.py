"""SynthConfig: the mixture a synth run builds. Defaults are the paper's final recipe (RECIPE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmprolong.config import Config, field
from mmprolong.decontam.exclusion import load_exclusion
from mmprolong.errors import ConfigError
from mmprolong.synth.plan import default_boundaries, make_buckets
from mmprolong.synth.qa import MULTI_ITEMS, TASKS, canonical_task

PAPER_BUDGET_TOKENS = 5 * 2**30  # 5B tokens (B = 2^30)


@dataclass(kw_only=True)
class SynthConfig(Config):
    target_tokens: int = field(131_072, help="longest sample, tokens (the paper trains at 128K = 131,072)")
    buckets: list[int] | None = field(
        None, help="length bucket boundaries in tokens, e.g. [8192, 16384, 32768, 65536, 131073]; "
                   "default: 4 doubling buckets ending at target_tokens")
    distribution: Literal["balanced", "target", "native", "custom"] = field(
        "balanced", help="balanced: equal tokens per bucket (the paper's choice); target: target_share in the "
                         "last bucket; native: the store's own document lengths; custom: bucket_weights")
    target_share: float = field(0.8, help="share of tokens in the last bucket when distribution=target")
    bucket_weights: list[float] | None = field(None, help="one weight per bucket when distribution=custom")
    task_mix: dict[str, float] = field(
        default_factory=lambda: {"extract-single": 0.4, "extract-multi": 0.4, "reasoning": 0.2},
        help=f"share of tokens per task ({', '.join(TASKS)}); the paper's 8:2 extraction:reasoning by default")
    multi_items: list[int] = field(
        default_factory=lambda: list(MULTI_ITEMS),
        help="[least, most] facts one extract-multi question asks for, each on its own page (offline generator; the "
             "page window can allow fewer)")
    anchor_share: float = field(
        1.0, help="share of ground-truth extract-single questions that say where their fact is (on page K, in the "
                  "section S, on pages K-L), as the paper's do; the others name only the entity and attribute, where "
                  "the document gives that pair one value, and their samples take no filler document that names the "
                  "entity (the quickstart uses 0: niah's question names no place)")
    questions_per_sample: int = field(
        1, help="questions asked about one sample's pages, one turn each, every answer a training target: 1 is the "
                "paper's one question a sample; more give more answers per token of pages (follow-ups about the "
                "same document, kept where their pages fit the sample's length; not for the OCR tasks)")
    depth_power: float = field(
        1.0, help="where a sample's first evidence page is asked to sit: at depth U^(1/depth_power) of the sequence, "
                  "U uniform in [0, 1); 1 places it evenly (the default); above 1 later, nearer the question (4: 94% "
                  "of samples past the middle). What the evidence pages span of a sample is kept whole, so with "
                  "several questions a sample the depth only places what is left (summary.json: "
                  "evidence_pages_by_fifth)")
    short_share: float = field(0.0, help="share of tokens in short samples below the first bucket (paper: 0)")
    short_tokens: int = field(4096, help="upper length of short samples, tokens")
    budget_tokens: int | None = field(
        None, help="total tokens to build (paper: 5B); default: what the store fills, store tokens x store_passes")
    store_passes: float = field(1.0, help="default budget as a multiple of the store's tokens (pages reused)")
    generator: Literal["offline", "endpoint"] = field(
        "offline", help="offline: ground truth where the corpus has it, else text-layer clozes; endpoint: an "
                        "OpenAI-compatible VLM (see the endpoint section)")
    endpoint: dict | None = field(None, help="EndpointConfig fields when generator=endpoint")
    truth_dir: str | None = field(None, help="folder of <name>.truth.json beside the PDFs; default: the store's "
                                             "ingested folder")
    tokenizer: str | None = field(None, help="folder of the model's tokenizer, used to count text tokens exactly; "
                                           "default: the tiny preset's")
    heldout_fraction: float = field(0.05, help="share of documents (a hash split of doc_id) left out of the mixture "
                                               "for eval's synth-heldout suite, which must be given the same value; "
                                               "0 uses every document")
    exclude: list[str] | str | None = field(
        None, help="documents never used, as a sample's document or as filler: doc_ids and/or paths of "
                   "exclusion lists (one doc_id a line, e.g. decontaminate's exclude.txt), comma-separated")
    seed: int = field(0, help="seed: the same store, config and seed give byte-identical output")
    unit_tokens: int = field(2_000_000, help="tokens per work unit (a shard file; the unit of parallelism "
                                             "and resume)")
    workers: int = field(1, help="processes")
    executor: Literal["local", "ray"] = field("local", help="local processes or a Ray cluster (mmprolong[ray])")
    max_attempts: int = field(40, help="candidates tried per sample planned before a unit gives up, >= 1")

    def validate(self) -> None:
        if self.target_tokens < 64:
            raise ConfigError("target_tokens", self.target_tokens, "must be >= 64")
        make_buckets(self.boundaries())
        for name in ("target_share", "short_share", "heldout_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be in [0, 1)")
        if not self.task_mix or any(v < 0 for v in self.task_mix.values()) or sum(self.task_mix.values()) <= 0:
            raise ConfigError("task_mix", self.task_mix, "need non-negative shares, not all 0")
        for task in self.task_mix:
            try:
                canonical_task(task)
            except ValueError as exc:
                raise ConfigError(f"task_mix.{task}", self.task_mix[task], str(exc)) from None
        if len(self.multi_items) != 2 or not 2 <= self.multi_items[0] <= self.multi_items[1]:
            raise ConfigError("multi_items", self.multi_items, "give [least, most] with 2 <= least <= most")
        if self.distribution == "custom" and (self.bucket_weights is None
                                              or len(self.bucket_weights) != len(self.boundaries()) - 1):
            raise ConfigError("bucket_weights", self.bucket_weights, "give one weight per bucket with custom")
        if not 0 <= self.anchor_share <= 1:
            raise ConfigError("anchor_share", self.anchor_share, "must be in [0, 1]")
        if not self.depth_power > 0:
            raise ConfigError("depth_power", self.depth_power, "must be > 0 (1: evidence placed evenly)")
        if self.short_share and self.short_tokens >= self.boundaries()[0]:
            raise ConfigError("short_tokens", self.short_tokens, "must be below the first bucket boundary")
        for name in ("unit_tokens", "workers", "max_attempts", "questions_per_sample"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.budget_tokens is not None and self.budget_tokens < 1:
            raise ConfigError("budget_tokens", self.budget_tokens, "must be >= 1")
        if self.store_passes <= 0:
            raise ConfigError("store_passes", self.store_passes, "must be > 0")
        load_exclusion(self.exclude)  # a missing file or a line that is not a doc_id fails before any work
        if self.generator == "endpoint" and not self.endpoint:
            raise ConfigError("endpoint", self.endpoint, "set the endpoint section when generator=endpoint")

    def boundaries(self) -> list[int]:
        return list(self.buckets) if self.buckets else default_boundaries(self.target_tokens)

    def tasks(self) -> dict[str, float]:
        """task_mix with canonical names, normalised to shares that sum to 1."""
        total = sum(self.task_mix.values())
        return {canonical_task(k): v / total for k, v in self.task_mix.items() if v > 0}
