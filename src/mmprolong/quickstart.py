"""The whole recipe on the embedded default, sized for a laptop CPU, with a report of what it achieved.

Steps (each resumable; rerunning the command skips what is done):
  1. corpus   generated large-print PDFs with ground truth (fact cards, ``corpus.cards``)   RUN/corpus
  2. ingest   pages at 72 dpi, 12 x 10 vision tokens each, legible at that size            RUN/store
  3. decontaminate  the store against the held-out documents the eval asks about; matches
              are kept out of the mixture                                                 RUN/decontam
  4. synth    the LongPT mixture: balanced 1K-4K buckets, 8:2 extraction:reasoning          RUN/data-long
  5. train    LongPT from the shipped starting point (a mini Qwen2.5-VL that mmprolong trained to read at 1K,
              ``mmprolong.startpoint``) to 4K, with the RoPE base raised 4x as the paper raises 1e6 to 4e6
  6. eval     both models on niah at 1K..16K (4x the new window) and on synth tasks about held-out documents,
              as the paper evaluates; then both on the same needles up to 8K with two inference settings: dynamic
              YaRN past each model's own window and page-local attention (RUN/eval-*-inference-niah;
              --no-yarn --attn-page-window 0: not; --attn-logn-window W adds log-length attention scaling)
  7. report   RUN/report.md, RUN/report.html and RUN/quickstart.json; every number comes from the run

``rebuild_start=True`` first rebuilds the starting point from ``recipes/miniature-start.yaml`` into RUN/start
(hours on a CPU) instead of using the shipped one.

With a recipe (``recipe=recipes/mmprolong-7b.yaml, model=PATH``) the same steps are the paper's run: the
documents are the user's PDFs (or a generated corpus of 20-200 pages each), pages are rendered at the model's
pixel budget, the mixture is synth's default fitted to the recipe's window, the given model is the starting
point and is trained by the recipe, and both are evaluated at 1/2, 1, 2 and 4 times the window (as the paper
evaluates: no scaling).
Under torchrun, rank 0 makes the data while the other ranks wait, every rank trains, and rank 0 evaluates.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mmprolong.errors import ConfigError
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.report import Section, write_report
from mmprolong.train.launch import distributed_env, lead, leader_barrier

if TYPE_CHECKING:
    from mmprolong.decontam import DecontamConfig
    from mmprolong.synth.config import SynthConfig

log = logging.getLogger(__name__)

START_WINDOW, LONG_WINDOW = 1024, 4096
START_THETA, LONG_THETA = 10_000.0, 40_000.0  # the starting point's base, raised 4x as the paper's 1e6 -> 4e6
NIAH_LENGTHS = [1024, 2048, 4096, 8192, 16384]
HELDOUT_LENGTHS = [1024, 2048, 4096]
# Each needle in a haystack of its own (EvalConfig.haystacks "per-item"). With the classic grid's per-length
# haystacks, the 25 needles of a length are 5 haystacks, each holding its needle at 5 depths, and a length's score is
# those 5 draws': the four LongPT seeds found 73, 70 and 94% at 4K on three needle seeds, and their misses were
# codes begun with the figure of a page beside the needle, already at 1.5K (benchmarks/niah_misses.py). Per item,
# the same needles and questions: 85, 85 and 86% (benchmarks/results/niah-haystacks-needles*.json); a length's
# interval then counts 25 independent draws, as Wilson's assumes.
HAYSTACKS = "per-item"
HAYSTACK_NOTE = {"per-item": ", each in a haystack of its own, so that a length's needles are independent draws",
                 "per-length": ", needle i of every depth in the same haystack"}
INGEST = {"max_pixels": DEFAULT_FAMILY.pixels_for_tokens(128), "max_dpi": 72.0}  # 128 tokens a page
WORKERS = os.cpu_count() or 1  # ingest, decontaminate and synth processes (the same bytes for any count)
# LongPT's DataLoader workers (its rows are the same for any count), half the cores, the rest left to training: on
# an H200 with 16 cores the miniature's step took 0.27 s with 8 workers, 0.30 s with 2. None on 2 cores, where a
# worker only takes turns with training for them: there the step took 0.63 s with the rows made in the training
# process, 0.67 s with 1 worker and 0.68 s with 2 (2026-12-06)
LOADER_WORKERS = min(8, WORKERS // 2) if WORKERS > 2 else 0
DEVICES = ("auto", "cpu", "cuda")  # LongPT's (TrainConfig.device); evaluation takes the GPU when there is one
# The starting point's world (its `registers` corpus): archive registers whose notes stand among catalogue cards,
# as the needle stands in its haystack, so LongPT's extract-single questions about a register ask for the kind of
# retrieval niah measures. On the default shares (15% registers, notes only) the starting point answered 12.5% of
# held-out extract-single questions at 1K; here 56%. Up to 10 catalogue cards after each note (the starting point's
# corpora: 5): a long question about a note stands among half as many look-alike notes, which no model here tells
# apart by name; LongPT then carries the needle further (after LongPT at 4K, two seeds: 7% and 20% -> 27% and 47%
# exact; benchmarks/results/quickstart-gap.json).
QUICK_CORPUS = {"min_pages": 20, "max_pages": 60, "layout": "large-print", "register_share": 0.6,
                "specimen_share": 0.2, "register_gap": 10}
HELDOUT_FRACTION = 0.2  # of the documents, kept out of LongPT for the synth-heldout eval
# The CPU default's size: 192 documents and up to 8 questions a LongPT sample (one chat turn each, every answer a
# target; the paper asks one), 1.6M LongPT tokens in 391 steps. Niah after LongPT at 4K / 8K over four seeds, as
# trained: 24 / 11% with 24 documents, one question and 196 steps (the default until 2026-12-05), 42 / 15% with 192
# and up to 4 at 196 steps (benchmarks/results/longpt-documents-questions.json), 49 / 34% at 293 (-15x.json), 53 /
# 41% at 391 (-2x.json); with log-length scaling past W=1024 at inference 69 / 58% at 293 and 84 / 66% at 391,
# every seed at 80% or more at 4K (niah-own-logn1024.json). Steps are what moved it; 391 fit the quickstart's 15
# minutes here. From today's starting point, over three seeds, 63 / 29% at 391 and 68 / 36% at 489 (2.0M tokens,
# longpt-489-seeds.json): within the noise of 75 needles, for 100 s more; the 25% faster step of 2026-12-06
# (longpt-step.json) is kept as time instead: the slowest day measured (18.3 minutes, LongPT step 1.22 s) scaled by
# it comes to about 14.5.
# Up to 8 questions a sample since 2026-12-06 (2,593 answers in 724 samples against 1,833 in 722, the same tokens and
# steps): over LongPT seeds 0-3, as trained, 4K / 8K / 16K 73 / 61 / 9% against 70 / 51 / 3% with up to 4, held-out
# extract-single at 4K 59.4% against 57.8% (benchmarks/results/longpt-questions-8*.json)
CPU_DOCS, CPU_QUESTIONS, CPU_TRAIN_TOKENS = 192, 8, 1_600_000
RECIPE_DOCS = 24  # a recipe's generated corpus (when it is given no PDFs): 24 documents of 20-200 pages
# LongPT's extract-single questions name no place (synth's anchor_share 0; the paper's name one): niah asks for a
# note by its name alone, and questions that say "on page 7" let LongPT find the evidence by counting images. After
# LongPT at 4K, four paired runs (two worlds, two seeds each): with anchors 13 / 13 / 33 / 27%, without 47 / 13 /
# 53 / 47% (pooled 22% -> 40% of 60 needles; at 1K 83% -> 80%; benchmarks/results/anchor-share*.json)
# Each sample's first evidence page asked at depth U^(1/4) of it (synth's depth_power 4; 1 draws it evenly), nearer
# the question: in a 1K-4K mixture whose samples ask several questions, most evidence pages sit in the first 1K
# (1,884 of 3,209) and 36 more than 3K tokens in, where a needle late in a 4K haystack stands. Over LongPT seeds 0-3,
# niah as trained at 4K 73.0% against 64.0% (every seed up), on 25 needles a length no run asks 74.7% against 61.3%
# (seeds 0-2); 8K and held-out extract-single alike (benchmarks/results/longpt-depth-power.json, niah-depth-power.json)
# LongPT's samples reach relative positions up to 3x their own (data.position_skip, PoSE): a 4K row of pages spans
# about 520 mRoPE positions and an 8K prompt 989, and unlike Qwen2.5-VL-7B, whose text pretraining saw 32K positions,
# the starting point never trained past its 1K window's 160. LongPT seeds 0-3, the run's needles as trained at 4K /
# 8K: 73 / 31% without, 70 / 51% with x3 (8K a seed 28 / 24 / 40 / 32 -> 52 / 52 / 56 / 44%), 71 / 53% with x5;
# held-out extract-single at 4K 53.1% without, 57.8% with x3, 35.9% with x5
# (benchmarks/results/longpt-position-skip*.json)
POSITION_SKIP = 3.0
LONG_SYNTH = {"target_tokens": LONG_WINDOW, "buckets": [1024, 2048, 3072, LONG_WINDOW + 1],
              "heldout_fraction": HELDOUT_FRACTION, "anchor_share": 0.0, "depth_power": 4.0}
START_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "miniature-start.yaml"
MODELS = {"base": "starting point", "trained": "after LongPT"}
# Both models also answer the needles with inference settings ("NAME-inference"). Dynamic YaRN past each model's own
# window (EvalConfig.rope_scaling "yarn-dynamic", the YaRN paper's dynamic scaling): an input of n tokens past a window
# of W is computed with YaRN of factor n/W over the mRoPE positions W of its tokens span (here 122 tokens a page span
# 14 positions: YaRN over W positions barely acts, after LongPT 56% of this run's needles at 8K against 84%); inside
# its window a model runs as trained. On 25 needles a length that no default run asks, LongPT's four seeds found
# 4K / 8K 75 / 34% as trained, 75 / 77% with YaRN, 79 / 80% with YaRN and P=512 (below), 86 / 61% with W=1024 and
# P=512 (the default earlier on 2026-12-06; YaRN and W together sharpen twice, lower); the starting point 0 / 0, 16 / 4,
# 28 / 12 and 44 / 16% (benchmarks/results/niah-yarn.json).
YARN = True
# Log-length attention scaling past W tokens (off by default since YaRN): a query at token i is sharpened by
# ln(i+1)/ln(W). Beyond the window a reading head spreads its attention over every page for the answer's first
# digits, which then come out at chance (benchmarks/results/logn.json); trained with the scaling, LongPT learns it
# away (longpt-logn.json), so it is an inference setting. W=1024, the starting point's window, measured best: on
# 30 needles a length no default run asks, the six-stage start's four LongPT seeds found 4K / 8K 63 / 36% as trained,
# 60 / 48% with W=256, 76 / 66% with 512, 78 / 69% with 1024, 77 / 60% with 2048, 63 / 53% with 4096 (the LongPT
# window), 1K and 2K about as trained; the starting point 0% at both with any W (niah-logn-windows.json).
LOGN_WINDOW = START_WINDOW  # the W to pass; the default is 0
# Page-local attention (EvalConfig.attn_page_window P): in the language model a page's tokens attend only to the
# prompt's preamble and the last P tokens, the question to everything. As trained, the needle is lost where it stands
# late in a long prompt (after LongPT at 8K: 40-60% at depths 0-0.5, 0% at 0.75-1): the question finds it, but the page
# itself, computed after more tokens than the model trained at, reads wrong digits. P is half the starting point's
# window: on 25 needles a length that no default run asks, with W=1024, LongPT seeds 0-2 found 4K / 8K 80 / 52, 84 /
# 56 and 80 / 60% with P=512 against 68 / 36, 80 / 52 and 64 / 52% without; the starting point 92 / 44 / 16% at
# 2K / 4K / 8K against 52 / 0 / 0% (P=1024: its 2K fell to 40%; benchmarks/results/page-window-select.json)
PAGE_WINDOW = START_WINDOW // 2
INFERENCE = "-inference"
# ... at up to 2x the LongPT window: a 16K needle costs as much as 1K-8K together (attention grows with the square
# of the length: 60 of the 86 s of one niah run), and with W=1024 the LongPT seeds found 14% there
INFERENCE_MAX_LENGTH = 2 * LONG_WINDOW


@dataclass
class Plan:
    """What one run does: the CPU default (``cpu_plan``) or a training recipe (``recipe_plan``)."""

    corpus: dict | None  # make_corpus options; None: the user's PDFs in ``pdfs``
    pdfs: Path | None
    ingest: dict
    long_synth: dict
    decontam: dict  # DecontamConfig fields of the decontamination against the held-out documents
    base_model: Path | None  # the starting checkpoint; None: rebuilt from ``start_recipe`` into RUN/start
    start_recipe: Path | None
    long_train: dict  # TrainConfig fields (run_dir, data_dir and model.path are set by the run)
    window: int
    niah_lengths: list[int]
    heldout_lengths: list[int]
    niah_items: int  # per (length, depth) cell
    heldout_items: int  # per task and length
    description: str  # the training paragraph of the report
    logn_window: int = 0  # both models' niah again with EvalConfig.attn_logn_window = this (0: off) ...
    page_window: int = 0  # ... and attn_page_window = this (0: off) ...
    yarn: bool = False  # ... and dynamic YaRN past each model's own window; none of the three: no second pass ...
    inference_lengths: list[int] = field(default_factory=list)  # ... at these lengths (of niah_lengths)

    @property
    def evaluates_inference(self) -> bool:
        """Whether both models answer the needles a second time, with the inference settings."""
        return bool((self.logn_window or self.page_window or self.yarn) and self.inference_lengths)

    @property
    def synth_config(self) -> SynthConfig:
        """LongPT's ``SynthConfig`` (``long_synth`` checked): a new one each time, for a caller to change."""
        from mmprolong.synth.config import SynthConfig

        return SynthConfig(**self.long_synth)


def window_grid(window: int) -> list[int]:
    """Evaluation lengths around a LongPT window: 1/2, 1, 2 and 4 times it (inside, at, and beyond it)."""
    return [window // 2, window, 2 * window, 4 * window]


def cpu_plan(*, docs: int, seed: int, train_tokens: int, niah_lengths: list[int] | None, niah_items: int,
             heldout_items: int, rebuild_start: bool = False, start: str | Path | None = None,
             logn_window: int = 0, page_window: int = 0, yarn: bool = False, device: str = "auto",
             questions: int = 1, position_skip: float = 1.0) -> Plan:
    from mmprolong.startpoint import shipped_path

    if start is not None and not (Path(start) / "config.json").is_file():
        raise ConfigError("start", os.fspath(start), "not a model folder (no config.json)")
    base = None if rebuild_start else Path(start) if start is not None else shipped_path()
    lengths = niah_lengths or NIAH_LENGTHS
    long_train = {"seed": seed, "device": device,
                  # max_pixels: the budget the store was rendered at. The vision tower and merger stay as the
                  # starting point has them (frozen there too: trained, a tower this small loses the glyphs;
                  # benchmarks/vision_probe.py)
                  "model": {"rope_theta": LONG_THETA, "max_position_embeddings": LONG_WINDOW,
                            "max_pixels": INGEST["max_pixels"], "train_vision": False, "train_merger": False},
                  "data": {"max_seq_len": LONG_WINDOW, "seed": seed, "num_workers": LOADER_WORKERS,
                           "position_skip": position_skip},
                  # 3e-4: at 1e-3 LongPT erased the starting point's retrieval (niah 1K 53% -> 33%; 3e-4: 73%).
                  # One 4K row a step: 4x the optimizer steps of 4 rows for the same tokens and time; code
                  # characters in place at 4K 11% -> 36% (benchmarks/results/longpt-steps.json)
                  "optim": {"lr": 3e-4, "weight_decay": 0.1},
                  "schedule": {"budget_tokens": train_tokens, "global_batch_tokens": LONG_WINDOW,
                               "warmup_fraction": 0.1, "min_lr": 3e-5},
                  "checkpoint": {"interval_steps": 20, "keep_last": 1}}
    return Plan(
        corpus={"docs": docs, "seed": seed, **QUICK_CORPUS}, pdfs=None,
        # as many sample tokens as LongPT trains on: one pass over distinct samples (each page is asked about in
        # several of them, at other positions and with other questions), not a few passes over a small mixture
        ingest={**INGEST, "workers": WORKERS},
        long_synth={**LONG_SYNTH, "budget_tokens": train_tokens, "seed": seed, "workers": WORKERS,
                    "questions_per_sample": questions},
        # Large-print cards carry 5-30 words a page: at decontaminate's default (20) most pages count as text-less
        # and are matched by image, where same-template register cards look alike (measured on the default run:
        # 4 false matches among 18 training documents; none at 5 words, where 196 of 213 pages have text).
        decontam={"min_page_words": 5, "workers": WORKERS}, base_model=base,
        start_recipe=START_RECIPE if rebuild_start else None, long_train=long_train, window=LONG_WINDOW,
        niah_lengths=lengths, heldout_lengths=HELDOUT_LENGTHS, niah_items=niah_items,
        heldout_items=heldout_items, logn_window=logn_window, page_window=page_window, yarn=yarn,
        inference_lengths=[n for n in lengths if n <= INFERENCE_MAX_LENGTH],  # asked when a setting is on
        description=f"Starting point: {'RUN/start (rebuilt)' if rebuild_start else base}, a mini Qwen2.5-VL trained "
                    f"by mmprolong to read large-print pages at {START_WINDOW:,} tokens with RoPE base {START_THETA:g} "
                    f"(its model card is beside it). LongPT: its language model continued at {LONG_WINDOW:,} tokens "
                    f"with the base raised to {LONG_THETA:g} (vision tower and merger frozen, as in the starting "
                    f"point), loss on answers only, packed rows"
                    + (f", each sample's mRoPE positions skipping ahead once (PoSE) to reach up to {position_skip:g}x "
                       "its own span (not in the paper, whose 7B had trained at 32K text positions before LongPT, "
                       "where the shipped starting point trained at about 160, its 1K window of pages; "
                       "`--position-skip 1` turns it off)"
                       if position_skip > 1 else "")
                    + "; its extract-single questions name no page, as niah's"
                    + (f"; a sample asks up to {questions} questions about its pages, one turn each, every answer a "
                       "target." if questions > 1 else "."))


def recipe_plan(recipe: str | Path, *, model: str | Path | None, pdfs: str | Path | None, docs: int, seed: int,
                niah_lengths: list[int] | None, niah_items: int, heldout_items: int, device: str = "auto",
                questions: int = 1) -> Plan:
    """The paper's run (or any recipe): the given model is the starting point, trained as the recipe says."""
    import yaml

    from mmprolong.config import merge_overrides
    from mmprolong.models.loading import model_pixel_budget
    from mmprolong.train.config import TrainConfig, micro_batches_per_step

    recipe = Path(recipe)
    if not recipe.is_file():
        raise ConfigError("recipe", str(recipe), "file not found")
    overrides = {"model.path": os.fspath(model)} if model else {}
    if device != "auto":
        overrides["device"] = device
    fields = merge_overrides(yaml.safe_load(recipe.read_text()) or {}, overrides)
    config = TrainConfig.from_dict(fields, validate=False)
    config.validate_settings()  # refuse a bad recipe now, not after the data is made
    micro_batches_per_step(config, distributed_env()["world_size"])
    if not config.model.path:
        raise ConfigError("model", None, "a recipe run trains a checkpoint: give --model PATH (a local folder)")
    if not Path(config.model.path).is_dir():
        raise ConfigError("model", config.model.path, "not a folder: give a local checkpoint folder")
    if pdfs is not None and not Path(pdfs).is_dir():
        raise ConfigError("pdfs", os.fspath(pdfs), "not a folder of PDFs")
    window = config.data.max_seq_len
    family, min_pixels, max_pixels = model_pixel_budget(config.model)  # pages are counted as the model sees them
    return Plan(
        corpus=None if pdfs else {"docs": docs, "seed": seed, "min_pages": 20, "max_pages": 200},
        pdfs=Path(pdfs) if pdfs else None,
        ingest={"family": family.name, "min_pixels": min_pixels, "max_pixels": max_pixels, "workers": WORKERS},
        long_synth={"target_tokens": window, "seed": seed, "workers": WORKERS, "questions_per_sample": questions},
        decontam={"workers": WORKERS},
        base_model=Path(config.model.path), start_recipe=None, long_train=fields, window=window,
        niah_lengths=niah_lengths or window_grid(window),
        heldout_lengths=[window // 2, window], niah_items=niah_items, heldout_items=heldout_items,
        description=f"Starting point: {config.model.path}. LongPT: {recipe.name} at {window:,} tokens with RoPE base "
                    f"{config.model.rope_theta:g}, loss on answers only, packed sequences.")


def quickstart(out_dir: str | Path, *, show_progress: bool = True, **options) -> dict:
    """Run every step of ``make_plan(**options)`` into ``out_dir``; returns the summary also written to
    quickstart.json."""
    return run_plan(Path(out_dir), make_plan(**options), show_progress=show_progress)


def make_plan(*, docs: int | None = None, seed: int = 0, train_tokens: int | None = None,
              niah_lengths: list[int] | None = None, niah_items: int = 5, heldout_items: int = 16,
              recipe: str | Path | None = None, model: str | Path | None = None, pdfs: str | Path | None = None,
              rebuild_start: bool = False, start: str | Path | None = None, logn_window: int | None = None,
              page_window: int | None = None, yarn: bool | None = None, device: str = "auto",
              questions: int | None = None, position_skip: float | None = None) -> Plan:
    """What a quickstart with these options does, checked (a bad option is refused before anything is made).

    ``docs``: documents in the generated corpus (default ``CPU_DOCS``; with a recipe ``RECIPE_DOCS``);
    ``train_tokens``: LongPT's token budget (default ``CPU_TRAIN_TOKENS``); ``niah_lengths``: needle lengths
    (default 1K..16K); ``niah_items``: needles per (length, depth) cell; ``heldout_items``: held-out synth items
    per task and length. Smaller values give a faster, noisier run of the same steps. ``rebuild_start``: rebuild
    the starting point from its recipe instead of using the shipped one; ``start``: a starting point of your own
    (e.g. one rebuilt before); ``logn_window``: W > 0, both models also answer the needles up to 2x the LongPT
    window with log-length attention scaling at inference past W tokens (``EvalConfig.attn_logn_window``; default
    0, not; ``LOGN_WINDOW``, the starting point's window, measured best; a recipe's run is evaluated as the paper
    does, without);
    ``page_window``: P > 0, that second pass also with page-local attention (``EvalConfig.attn_page_window``; default
    ``PAGE_WINDOW``, half the starting point's window; 0: not; never with a recipe); ``yarn``: that second pass
    also with dynamic YaRN past each model's own window (``EvalConfig.rope_scaling="yarn-dynamic"``; default
    ``YARN``; never with a recipe).
    ``device``: where LongPT trains (``auto``: the GPU when there is one, as evaluation always does); with a
    recipe, ``auto`` keeps the recipe's own setting. ``questions``: questions a LongPT sample asks about its pages
    (``SynthConfig.questions_per_sample``; default ``CPU_QUESTIONS``; with a recipe 1, the paper's).
    ``position_skip``: LongPT's position skipping (``DataConfig.position_skip``; default ``POSITION_SKIP``; 1: the
    paper's LongPT; a recipe has its own).
    ``recipe`` (a train config YAML) with ``model`` (its starting checkpoint) and optionally ``pdfs`` (the user's
    documents) runs that recipe instead of the CPU default; its budget is the recipe's own (``train_tokens`` is
    refused)."""
    if rebuild_start and start is not None:
        raise ConfigError("start", os.fspath(start), "give a starting point or rebuild one, not both")
    for name, value in (("logn_window", logn_window), ("page_window", page_window)):
        if value is not None and value < 0:
            raise ConfigError(name, value, "must be >= 0 (0: off)")
    if device not in DEVICES:
        raise ConfigError("device", device, f"one of {', '.join(DEVICES)}")
    if questions is not None and questions < 1:
        raise ConfigError("questions", questions, "must be >= 1")
    if position_skip is not None and not position_skip >= 1:
        raise ConfigError("position_skip", position_skip, "must be >= 1 (1: off)")
    if docs is not None and docs < 1:
        raise ConfigError("docs", docs, "must be >= 1")
    from mmprolong.train.run import resolve_device

    resolve_device(device)  # cuda where there is none: refused now, not after the data is made
    if recipe is not None:
        for name, value in (("logn_window", logn_window), ("page_window", page_window), ("yarn", yarn)):
            if value:
                raise ConfigError(name, value, "goes with the CPU default: a recipe's run is evaluated as the paper "
                                               "does")
        if rebuild_start or start is not None:
            raise ConfigError("rebuild_start" if rebuild_start else "start", True,
                              "goes with the CPU default: a recipe starts from --model")
        if train_tokens is not None:
            raise ConfigError("train_tokens", train_tokens, "goes with the CPU default: a recipe's budget is its "
                                                            "schedule.budget_tokens")
        if position_skip is not None:
            raise ConfigError("position_skip", position_skip, "goes with the CPU default: a recipe's is its "
                                                              "data.position_skip")
        plan = recipe_plan(recipe, model=model, pdfs=pdfs, docs=RECIPE_DOCS if docs is None else docs, seed=seed,
                           niah_lengths=niah_lengths, niah_items=niah_items, heldout_items=heldout_items,
                           device=device, questions=questions or 1)
    elif model is not None or pdfs is not None:
        raise ConfigError("recipe", None, "--model and --pdfs go with --recipe (the default starts from the "
                                          "shipped starting point)")
    else:
        plan = cpu_plan(docs=CPU_DOCS if docs is None else docs, seed=seed,
                        train_tokens=CPU_TRAIN_TOKENS if train_tokens is None else train_tokens,
                        niah_lengths=niah_lengths, niah_items=niah_items, heldout_items=heldout_items,
                        rebuild_start=rebuild_start, start=start, device=device,
                        logn_window=0 if logn_window is None else logn_window,
                        page_window=PAGE_WINDOW if page_window is None else page_window,
                        yarn=YARN if yarn is None else yarn, questions=questions or CPU_QUESTIONS,
                        position_skip=POSITION_SKIP if position_skip is None else position_skip)
    return plan


def run_plan(out: Path, plan: Plan, *, show_progress: bool = True) -> dict:
    env = distributed_env()
    out.mkdir(parents=True, exist_ok=True)
    # seconds per step in this invocation, and summed over every invocation in this folder (kept on disk after
    # each step), so a quickstart that was interrupted and resumed still reports what its work cost
    timings: dict[str, float] = {}
    totals_path = out / "timings.json"
    totals: dict[str, float] = json.loads(totals_path.read_text()) if totals_path.is_file() else {}
    clock = time.perf_counter()
    leader = env["rank"] == 0

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        if leader:
            totals[name] = round(totals.get(name, 0.0) + timings[name], 1)
            totals_path.write_text(json.dumps(totals, indent=1) + "\n")
        clock = time.perf_counter()

    barrier = leader_barrier(env)  # kept alive to the end: rank 0 hosts it
    store, long, decontam = lead(barrier, env, "data", lambda: _make_data(out, plan, show_progress, lap)) or (
        None, None, None)
    base_model = plan.base_model
    if base_model is None:
        from mmprolong import startpoint

        base_model = startpoint.build(startpoint.load_recipe(plan.start_recipe), out / "start",
                                      show_progress=show_progress)
        lap("starting point")
    trained = train_stage(out / "train-long", out / "data-long", plan.long_train, env, init=base_model)
    lap("train")
    if not leader:  # rank 0 evaluates and reports alone
        return {"rank": env["rank"], "final_loss": trained.get("final_loss")}
    models = {"base": base_model, "trained": out / "train-long" / "final"}
    suites = {name: ("niah", "synth-heldout") for name in models}
    if plan.evaluates_inference:
        for name in list(models):
            models[name + INFERENCE], suites[name + INFERENCE] = models[name], ("niah",)
    from mmprolong.eval.backends.hf import VISION_CACHE_BYTES
    from mmprolong.models.features import FeatureCache

    # LongPT keeps the vision tower frozen: the trained model reuses the pages the starting point's evaluation
    # encoded (keyed by the tower's bytes, so a tower that did train encodes its own)
    features = FeatureCache(VISION_CACHE_BYTES)
    windows = {"base": START_WINDOW, "trained": plan.window}  # what YaRN scales past (a recipe's run has no YaRN)
    evals = {name: {suite: evaluate_suite(out / f"eval-{name}-{suite}", model, out / "store", suite, plan,
                                          model_label(name, plan), inference=name.endswith(INFERENCE),
                                          window=windows[name.removesuffix(INFERENCE)], features=features)
                    for suite in suites[name]}
             for name, model in models.items()}
    comparisons = {}
    for suite, name in (("niah", "compare-niah"), ("synth-heldout", "compare-heldout")):
        from mmprolong import api

        api.compare([out / f"eval-{model}-{suite}" for model in models if suite in suites[model]], out / name,
                    training_length=plan.window)
        comparisons[suite] = json.loads((out / name / "compare.json").read_text())
    lap("eval")
    from mmprolong.startpoint import scores_of

    scores = {name: {suite: scores_of(out / f"eval-{name}-{suite}") for suite in suites[name]} for name in models}
    facts = {"store": store, "long": long, "decontam": decontam, "trained": trained, "evals": evals,
             "comparisons": comparisons,
             "timings": timings, "totals": totals, "plan": plan, "base_model": base_model,
             "start_card": _start_card(base_model)}
    write_quickstart_report(out, facts)
    lap("report")
    summary = {"report": str(out / "report.md"), "timings_s": timings, "total_s": round(sum(timings.values()), 1),
               "total_all_invocations_s": round(sum(totals.values()), 1), "final_loss": trained.get("final_loss"),
               "samples": long["samples"], "questions": long["questions"], "scores": scores,
               "decontamination": decontam}
    (out / "quickstart.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def _start_card(model: Path) -> dict | None:
    from mmprolong.startpoint import CARD_JSON

    path = Path(model) / CARD_JSON
    return json.loads(path.read_text()) if path.is_file() else None


def make_store(out: Path, plan: Plan, show_progress: bool, lap) -> tuple[Path, dict]:
    """The plan's documents (generated into RUN/corpus, or the user's) ingested into RUN/store, both resumable;
    returns the PDF folder and the store's summary."""
    from mmprolong import api
    from mmprolong.ingest import IngestConfig

    pdfs = plan.pdfs
    if plan.corpus is not None:
        pdfs = out / "corpus"
        api.make_corpus(pdfs, **plan.corpus, show_progress=show_progress)
    lap("corpus")
    store = api.brief(api.ingest(pdfs, out / "store", IngestConfig(**plan.ingest), show_progress=show_progress))
    lap("ingest")
    return pdfs, store


def _make_data(out: Path, plan: Plan, show_progress: bool, lap) -> tuple:
    from mmprolong import api
    from mmprolong.decontam import DecontamConfig

    pdfs, store = make_store(out, plan, show_progress, lap)
    synth = plan.synth_config
    decontam = decontaminate_heldout(out / "store", pdfs, out / "decontam", synth.heldout_fraction,
                                     DecontamConfig(**plan.decontam), show_progress=show_progress)
    synth.exclude = decontam["exclusion_list"]
    lap("decontaminate")
    long = api.synth(out / "store", out / "data-long", synth, show_progress=show_progress)
    lap("synth")
    return store, long, decontam


def decontaminate_heldout(store: Path, pdfs: Path, out: Path, heldout_fraction: float, config: DecontamConfig,
                          *, show_progress: bool) -> dict:
    """Decontaminate the store against the documents synth-heldout evaluates on (the held-out split), and write
    the exclusion list LongPT's synth honours: every training document that matches one of them. The held-out
    documents themselves match exactly and are already out of training by the split, so they are not listed
    (listing them would empty synth's own held-out split). Returns ``{against: held-out documents,
    matches_by_kind, leaked_documents: those listed, exclusion_list: its path}``."""
    from mmprolong import api
    from mmprolong.decontam.exclusion import write_exclusion
    from mmprolong.split import heldout_split
    from mmprolong.synth.store import load_documents

    docs = load_documents(store)
    held = set(heldout_split([d.doc_id for d in docs], heldout_fraction)[1])
    if not held:  # a small store may hold none out: nothing is evaluated on unseen documents, nothing to match
        return {"against": 0, "matches_by_kind": {}, "leaked_documents": 0, "exclusion_list": None}
    summary = api.decontaminate(store, [pdfs / d.source for d in docs if d.doc_id in held], out, config,
                                show_progress=show_progress)
    report = json.loads((out / "report.json").read_text())
    leaked = sorted({m["doc_id"] for m in report["matches"]} - held)
    path = out / "exclude-training.txt"
    write_exclusion(path, leaked, [f"training documents matching one of the {len(held)} held-out documents "
                                   f"(decontaminate's report: {out / 'report.md'})"])
    return {"against": len(held), "matches_by_kind": summary["matches_by_kind"], "leaked_documents": len(leaked),
            "exclusion_list": str(path)}


def train_stage(run_dir: Path, data_dir: Path, fields: dict, env: dict, init: Path | None = None) -> dict:
    from mmprolong.config import merge_overrides
    from mmprolong.train.config import TrainConfig
    from mmprolong.train.run import train

    overrides = {"run_dir": str(run_dir), "data.data_dir": str(data_dir)}
    if init is not None:
        overrides["model.path"] = str(init)
    config = TrainConfig.from_dict(merge_overrides(fields, overrides))
    summary_path = run_dir / "summary.json"
    if summary_path.is_file() and (run_dir / "final").is_dir():
        return json.loads(summary_path.read_text())
    return train(config, **env)


def model_label(name: str, plan: Plan) -> str:
    if name.endswith(INFERENCE):
        return f"{MODELS[name.removesuffix(INFERENCE)]}, {_settings(plan)}"
    return MODELS[name]


def _settings(plan: Plan) -> str:
    """The second pass's inference settings, in words."""
    parts = ["YaRN past its window" if plan.yarn else "",
             f"log-length scaling W={plan.logn_window:,}" if plan.logn_window else "",
             f"page window P={plan.page_window:,}" if plan.page_window else ""]
    return ", ".join(p for p in parts if p)


def evaluate_suite(run_dir: Path, model: Path, store: Path, suite: str, plan: Plan, label: str, *,
                   inference: bool = False, window: int = 0, features=None) -> dict:
    """One suite of the run's grid for ``model``; ``inference``: niah with the plan's inference settings
    (``logn_window``, ``page_window``, ``yarn`` past ``window``, the model's own, tokens) at its
    ``inference_lengths``; ``features``: a vision ``FeatureCache`` shared with the run's other evaluations."""
    from mmprolong import api
    from mmprolong.eval.config import heldout_config, niah_config

    seed = plan.long_synth["seed"]
    if suite == "niah":
        settings = {"attn_logn_window": plan.logn_window, "attn_page_window": plan.page_window} if inference else {}
        if inference and plan.yarn:
            settings.update(rope_scaling="yarn-dynamic", rope_window=window)
        config = niah_config(plan.inference_lengths if inference else plan.niah_lengths, plan.niah_items,
                             store_dir=str(store), seed=seed, label=label, haystacks=HAYSTACKS, **settings)
    else:  # asked in the form LongPT's own questions take (with or without the place they name)
        synth = plan.synth_config
        config = heldout_config(plan.heldout_lengths, plan.heldout_items, store_dir=str(store), seed=seed,
                                heldout_fraction=synth.heldout_fraction, heldout_anchor_share=synth.anchor_share,
                                label=label)
    return api.evaluate(model, run_dir, config, show_progress=False, vision_features=features)


# --- the report ------------------------------------------------------------------------------------------


def write_quickstart_report(out: Path, facts: dict) -> None:
    images = _collect_images(out, inference=facts["plan"].evaluates_inference)
    sections = [_data_section(facts, images), _start_section(facts), _train_section(facts, images),
                _eval_section(facts, images), _timing_section(facts)]
    write_report(out, "mmprolong quickstart report", sections)


def _collect_images(out: Path, *, inference: bool) -> dict[str, str]:
    """Copy each figure next to the report under a stable name; returns name -> file name. ``inference``: whether
    this run's plan evaluates with the inference settings (else an earlier invocation's heatmaps are left out)."""
    sources = {"mixture": out / "data-long" / "mixture.png", "loss_trained": out / "train-long" / "loss.png",
               "heatmap_base": out / "eval-base-niah" / "needle_heatmap.png",
               "heatmap_trained": out / "eval-trained-niah" / "needle_heatmap.png",
               "accuracy": out / "compare-niah" / "accuracy_vs_length.png",
               "accuracy_heldout": out / "compare-heldout" / "accuracy_vs_length.png",
               "code_places": out / "compare-niah" / "code_places.png"}
    if inference:
        sources |= {f"heatmap_{name}_inference": out / f"eval-{name}{INFERENCE}-niah" / "needle_heatmap.png"
                    for name in MODELS}
    found = {}
    for name, path in sources.items():
        if path.is_file():
            shutil.copyfile(path, out / f"{name}.png")
            found[name] = f"{name}.png"
    return found


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _data_section(facts: dict, images: dict) -> Section:
    store, long, plan = facts["store"], facts["long"], facts["plan"]
    s = Section("Data")
    kind = "generated large-print " if plan.corpus and plan.corpus.get("layout") == "large-print" else (
        "generated " if plan.corpus else "")
    s.paragraphs.append(
        f"Corpus: {store['documents']} {kind}documents, {store['pages']} pages, "
        f"{store['vision_tokens']:,} vision tokens; {store['skipped']} files skipped; "
        f"{long['heldout_documents']} documents held out of training for the held-out eval. "
        f"LongPT mixture: {long['samples']} samples asking {long['questions']} questions, {long['tokens']:,} tokens; "
        f"{long['dropped_unverified']} candidates dropped because their answer did not follow from the evidence.")
    decontam = facts["decontam"]
    kinds = ", ".join(f"{n} {kind}" for kind, n in decontam["matches_by_kind"].items()) or "none"
    if not decontam["against"]:
        s.paragraphs.append("Decontamination: the split held out no document of this store, so there was nothing "
                            "to decontaminate against.")
    else:
        s.paragraphs.append(
            f"Decontamination (`mmprolong decontaminate`, exact, text and page-image matching): the store against "
            f"the {decontam['against']} held-out documents the synth-heldout eval asks about; matches: {kinds} (the "
            f"held-out documents match themselves exactly); {decontam['leaked_documents']} other documents matched "
            f"and were excluded from the LongPT mixture ({decontam['exclusion_list']}).")
    rows = [[b, _pct(long["planned"]["share_by_bucket"][b]), _pct(long["share_by_bucket"][b]),
             str(long["samples_by_bucket"][b])] for b in long["planned"]["share_by_bucket"]]
    s.tables.append((["length bucket", "planned tokens", "achieved tokens", "samples"], rows))
    rows = [[t, _pct(long["planned"]["share_by_task"][t]), _pct(long["share_by_task"][t])]
            for t in long["planned"]["share_by_task"]]
    s.tables.append((["task", "planned tokens", "achieved tokens"], rows))
    if "evidence_pages_by_offset" in long:  # synth summaries from before 2026-12-06 do not count them
        place = long["evidence_pages_by_offset"]
        counts = ", ".join(f"{n:,} at {lo // 1024}K-{hi // 1024}K"
                           for lo, hi, n in zip(place["edges"], place["edges"][1:], place["pages"]))
        power = plan.synth_config.depth_power
        placed = "" if power == 1 else (f"; each sample's first evidence page was asked at depth U^(1/{power:g}) "
                                        f"of it (synth's `depth_power` {power:g}), nearer the question than evenly")
        s.paragraphs.append(
            f"Where the evidence sits: the {long['questions']} questions need {sum(place['pages']):,} evidence pages, "
            f"by the tokens of the pages before them {counts}{placed}: a needle late in a haystack at the LongPT "
            "window is read where LongPT asked least.")
    if "mixture" in images:
        s.images.append((images["mixture"], "Length histogram and task mix of the LongPT data, planned vs achieved, "
                                            "and where its evidence pages sit"))
    return s


def _start_section(facts: dict) -> Section:
    card = facts["start_card"]
    s = Section("Starting point", paragraphs=[f"Model: {facts['base_model']}."])
    if card is None:
        s.paragraphs.append("The model has no mmprolong model card (a user checkpoint).")
        return s
    s.paragraphs.append(
        f"A Qwen2.5-VL of {card['parameters']:,} parameters that mmprolong trained to read at "
        f"{card['recipe']['window']:,} tokens ({card['command']}; {card['date']}, {card['hardware']}), in stages:")
    rows = [[st["stage"], f"{st['samples']:,}", f"{st['trained_tokens']:,}", st["steps"], f"{st['final_loss']:.3f}"]
            for st in card["stages"]]
    s.tables.append((["stage", "samples", "tokens trained", "steps", "final loss"], rows))
    for length, cell in card["scores"].get("reading", {}).get("ocr-full", {}).items():
        s.paragraphs.append(
            f"Reading (its card): transcripts of held-out pages at {int(length):,} tokens match the text layer at "
            f"{_pct(cell['accuracy'])} character similarity (1 - normalised edit distance; 95% interval "
            f"{_pct(cell['ci95'][0])}-{_pct(cell['ci95'][1])}, n={cell['n']}).")
    niah = sorted(card["scores"].get("niah", {}).get("single", {}).items(), key=lambda kv: int(kv[0]))
    if niah:
        s.paragraphs.append("Needle in a haystack (its card; the haystack from its own corpus): " + "; ".join(
            f"{int(length):,} tokens {_pct(c['accuracy'])} ({_pct(c['ci95'][0])}-{_pct(c['ci95'][1])}, n={c['n']})"
            + (f", code characters in place {_pct(c['in_place'])}" if "in_place" in c else "")
            for length, c in niah) + ".")
    return s


def _train_section(facts: dict, images: dict) -> Section:
    s = Section("Training", paragraphs=[facts["plan"].description])
    keys = ["steps", "tokens", "seconds", "tokens_per_s", "first_loss", "final_loss", "packing_efficiency"]
    s.tables.append((["run"] + keys, [["LongPT"] + [_fmt(facts["trained"].get(k)) for k in keys]]))
    if vision := facts["trained"].get("vision_features"):  # the frozen tower ran once per distinct page
        s.paragraphs.append(f"The frozen vision tower encoded {vision['encoded']:,} distinct page images once and "
                            f"reused their features for the other {vision['images'] - vision['encoded']:,} of "
                            f"{vision['images']:,} ({_pct(vision['reused'])}; `parallel.vision_cache_mb`).")
    if "loss_trained" in images:
        s.images.append((images["loss_trained"], "Loss of LongPT"))
    return s


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _question_form(plan: Plan) -> str:
    """How the held-out extract-single questions are asked: as LongPT's synth asks its own (``evaluate_suite``)."""
    share = plan.synth_config.anchor_share
    if share == 0:
        return "name no place, as LongPT's and niah's do"
    return "say where their fact is, as LongPT's do" + ("" if share == 1 else f" ({share:.0%} of them)")


def _eval_section(facts: dict, images: dict) -> Section:
    from mmprolong.eval.report import IN_PLACE_NOTE, fmt_compared_in_place, fmt_interval, fmt_places

    plan = facts["plan"]
    lengths, window = plan.niah_lengths, plan.window
    s = Section("Evaluation")
    s.paragraphs.append(
        f"Needle-in-a-haystack at {', '.join(f'{n // 1024}K' for n in lengths)} tokens (up to "
        f"{max(lengths) / window:g}x the {window:,}-token LongPT window; {plan.niah_items} needles per length and "
        f"depth{HAYSTACK_NOTE[HAYSTACKS]}) and synth tasks about documents that neither model was trained on, for "
        f"the starting point and the model after LongPT; their extract-single questions {_question_form(plan)}. "
        "Each score is a percentage with its 95% interval and the number of items answered; scores are whatever "
        "the models achieve.")
    if plan.evaluates_inference:
        said = []
        if plan.yarn:
            said.append(
                f"dynamic YaRN past each model's own window (`rope_scaling` yarn-dynamic: an input of n tokens past a "
                f"window of W, the starting point's {START_WINDOW:,} or LongPT's {plan.window:,}, is computed with "
                "YaRN of factor n/W over the mRoPE positions W of its tokens span, a page image spanning far fewer "
                "positions than tokens; the YaRN paper's dynamic scaling of the setting MMLongBench offers for "
                "Qwen2.5-VL; inside its window a model runs as trained; benchmarks/results/niah-yarn.json)")
        if plan.logn_window:
            said.append(
                f"log-length attention scaling (`attn_logn_window` W={plan.logn_window:,}"
                + (", the starting point's window" if plan.logn_window == START_WINDOW else "")
                + ": the query of a token i past W is multiplied by ln(i+1)/ln(W), sharper attention; beyond the "
                "window a model's reading head otherwise spreads its attention over every page for the answer's "
                "first digits, benchmarks/results/logn.json; trained with the scaling, LongPT learns it away, "
                "benchmarks/results/longpt-logn.json)")
        if plan.page_window:
            said.append(
                f"page-local attention (`attn_page_window` P={plan.page_window:,}: in the language model a page's "
                f"tokens attend only to the prompt's preamble and the last P tokens, the question to everything; as "
                "trained, a needle late in a long prompt is read wrong, the page itself computed after more tokens "
                "than the model trained at; benchmarks/results/page-window.json)")
        s.paragraphs.append(
            f"Both models also answer the needles at {', '.join(f'{n // 1024}K' for n in plan.inference_lengths)} "
            f"with inference settings the paper does not use, the same items and weights: {'; and '.join(said)}.")
    for comparison in facts["comparisons"].values():
        runs = comparison["runs"]
        rows = [[e["suite"], e["task"], f"{e['length'] // 1024}K"]
                + [fmt_interval({"score": e["scores"][r], "ci95": e["ci95"][r], "ok": e["ok"][r]})
                   + (f" ({e['errors'][r]} errors)" if e["errors"][r] else "") for r in runs]
                for e in comparison["rows"]]
        s.tables.append((["suite", "task", "length"] + [f"{r} (%)" for r in runs], rows))
        partial = [e for e in comparison["rows"] if any(v is not None for v in e["in_place"].values())]
        if partial:
            s.paragraphs.append(IN_PLACE_NOTE + " By place in the code: the share of the row's answers with that "
                                "digit in place (their 95% intervals are in quickstart.json, "
                                "in_place_by_position_ci95).")
            s.tables.append((["task", "length"] + [f"{r}: code characters in place (%)" for r in runs]
                             + [f"{r}: by place in the code (%)" for r in runs],
                             [[e["task"], f"{e['length'] // 1024}K"] + [fmt_compared_in_place(e, r) for r in runs]
                              + [fmt_places(e["in_place_by_position"].get(r)) for r in runs] for e in partial]))
    for name, caption in (("accuracy", "Needle accuracy against length (dotted: code characters in place; "
                                       "dashed: LongPT window)"),
                          ("heatmap_base", "Needle heatmap, starting point"),
                          ("heatmap_trained", "Needle heatmap, after LongPT"),
                          ("heatmap_base_inference", "Needle heatmap, starting point, inference settings"),
                          ("heatmap_trained_inference", "Needle heatmap, after LongPT, inference settings"),
                          ("code_places", "Needle codes: the share of answers with each character of the code "
                                          "in place, by length (which part of the code a model gets right)"),
                          ("accuracy_heldout", "Held-out synth tasks against length")):
        if name in images:
            s.images.append((images[name], caption))
    return s


def _timing_section(facts: dict) -> Section:
    rows = [[name, f"{facts['totals'][name]:.1f}", f"{seconds:.1f}"] for name, seconds in facts["timings"].items()]
    return Section("Time", paragraphs=["Seconds on this machine, summed over every invocation that worked in this "
                                       "folder, and in this one (a rerun skips the steps it finds done)."],
                   tables=[(["step", "all invocations (s)", "this invocation (s)"], rows)])
