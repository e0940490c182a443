"""The training config: one keyword-only section per component, validated before any IO or GPU work.

    config = TrainConfig.from_yaml("recipes/mmprolong-7b.yaml", {"run_dir": "runs/7b", "data.data_dir": "data"})

Sections: ``model`` (ModelConfig), ``data`` (DataConfig), ``optim``, ``schedule``, ``checkpoint``, ``parallel``,
``logging``. A bad value or a bad combination raises ConfigError naming the dotted field (``schedule.
global_batch_tokens``). Checks that need the world size (micro-batches per step) run in ``check_world``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path
from typing import Any, Literal, Self

from mmprolong.config import Config, field
from mmprolong.errors import ConfigError
from mmprolong.models.config import ModelConfig
from mmprolong.train.data import DataConfig

PAPER_BUDGET_TOKENS = 5 * 2**30  # 5B tokens (B = 2^30)
PAPER_GLOBAL_BATCH_TOKENS = 32 * 131_072  # 4M tokens = 32 rows of 128K


@dataclasses.dataclass(kw_only=True)
class OptimConfig(Config):
    """AdamW. Weight decay applies to matrices only (no decay on norms and biases)."""

    lr: float = field(1e-5, help="peak learning rate, reached at the end of warm-up (paper: 1e-5)")
    weight_decay: float = field(0.1, help="AdamW decoupled weight decay on weights of 2+ dims (paper: 0.1)")
    beta1: float = field(0.9, help="AdamW beta1 (paper: 0.9)")
    beta2: float = field(0.95, help="AdamW beta2 (paper: 0.95)")
    eps: float = field(1e-8, help="AdamW epsilon (paper: not stated; PyTorch default)")
    max_grad_norm: float = field(1.0, help="clip the global gradient L2 norm to this; -1 disables clipping "
                                           "(the norm is still logged)")

    def validate(self) -> None:
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError("lr", self.lr, "must be a positive finite learning rate (paper: 1e-5)")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", self.weight_decay, "must be 0 or more (paper: 0.1)")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be in [0, 1)")
        if not self.eps > 0:
            raise ConfigError("eps", self.eps, "must be positive")
        if not (self.max_grad_norm > 0 or self.max_grad_norm == -1):
            raise ConfigError("max_grad_norm", self.max_grad_norm, "must be positive, or -1 to disable clipping")


@dataclasses.dataclass(kw_only=True)
class ScheduleConfig(Config):
    """The run's size in tokens and the learning-rate shape: steps = ceil(budget_tokens / global_batch_tokens)."""

    budget_tokens: int = field(PAPER_BUDGET_TOKENS, help="training tokens of the whole run, counted as row "
                                                         "capacity (paper: 5B = 5 * 2^30)")
    global_batch_tokens: int = field(PAPER_GLOBAL_BATCH_TOKENS, help="tokens per optimizer step over all "
                                     "ranks = data.max_seq_len x micro-batches x data-parallel ranks "
                                     "(paper: 4M = 32 x 131072)")
    warmup_fraction: float = field(0.1, help="share of the steps with a linear warm-up from 0 to optim.lr "
                                             "(paper: 0.1)")
    decay: Literal["cosine", "linear", "constant"] = field(
        "cosine", help="after warm-up: cosine or linear from optim.lr to min_lr, or constant at optim.lr "
                       "(paper: cosine)")
    min_lr: float = field(1e-6, help="learning rate at the last step with cosine/linear decay (paper: 1e-6)")
    stop_at_step: int | None = field(None, help="end this session after this step, saving a checkpoint; the "
                                                "schedule still spans the whole budget; none: run to the end")

    def validate(self) -> None:
        if self.budget_tokens <= 0:
            raise ConfigError("budget_tokens", self.budget_tokens, "must be a positive number of tokens")
        if self.global_batch_tokens <= 0:
            raise ConfigError("global_batch_tokens", self.global_batch_tokens, "must be a positive number of tokens")
        if self.global_batch_tokens > self.budget_tokens:
            raise ConfigError("global_batch_tokens", self.global_batch_tokens,
                              f"is larger than budget_tokens={self.budget_tokens}: the run would not fill one step")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError("warmup_fraction", self.warmup_fraction, "must be in [0, 1) (paper: 0.1)")
        if self.min_lr < 0:
            raise ConfigError("min_lr", self.min_lr, "must be 0 or more (paper: 1e-6)")
        if self.stop_at_step is not None and self.stop_at_step <= 0:
            raise ConfigError("stop_at_step", self.stop_at_step, "must be a positive step, or none")

    @property
    def total_steps(self) -> int:
        return -(-self.budget_tokens // self.global_batch_tokens)

    @property
    def warmup_steps(self) -> int:
        return round(self.warmup_fraction * self.total_steps)


@dataclasses.dataclass(kw_only=True)
class CheckpointConfig(Config):
    """Resumable checkpoints in RUN/checkpoints/step-NNNNNNNN and the final Hugging Face model in RUN/final."""

    interval_steps: int = field(100, help="save every this many steps (also on SIGTERM and at the end); "
                                          "-1: only on SIGTERM, divergence and at the end")
    keep_last: int = field(2, help="checkpoints kept; older ones are deleted after a new one is complete")
    resume: str = field("auto", help="'auto': continue from the latest complete checkpoint in run_dir (fresh "
                                     "start if none); 'never': refuse a run_dir that holds checkpoints; or the "
                                     "path of one checkpoint folder")
    save_final: bool = field(True, help="write RUN/final with save_pretrained (safetensors, tokenizer, image "
                                        "processor) at the end of the run")
    final_dtype: Literal["same", "bfloat16", "float32"] = field(
        "same", help="dtype of the weights in RUN/final; 'same' keeps the training dtype")

    def validate(self) -> None:
        if not (self.interval_steps > 0 or self.interval_steps == -1):
            raise ConfigError("interval_steps", self.interval_steps, "must be positive, or -1 to save only at the "
                                                                     "end and on SIGTERM")
        if self.keep_last < 1:
            raise ConfigError("keep_last", self.keep_last, "must be at least 1 (the latest checkpoint)")
        if self.resume not in ("auto", "never") and not Path(self.resume).is_dir():
            raise ConfigError("resume", self.resume, "expected 'auto', 'never' or an existing checkpoint folder")


@dataclasses.dataclass(kw_only=True)
class ParallelConfig(Config):
    """How the work is spread and how memory is saved. World size comes from the launcher (torchrun)."""

    data_parallel: Literal["fsdp2", "ddp"] = field(
        "fsdp2", help="with 2+ processes: FSDP2 (fully_shard per decoder layer and vision block) or DDP")
    sequence_parallel: Literal["none", "ring", "kv_allgather", "ulysses", "context_parallel"] = field(
        "none", help="split each row's sequence over sp_degree processes: 'ring' = ring-flash-attn's llama3 "
                     "varlen attention (GPU, flash-attn); 'kv_allgather' = the same schedule in plain PyTorch "
                     "(SDPA with an explicit mask; any device, for checks); 'ulysses' and 'context_parallel' are "
                     "not wired (refused)")
    sp_degree: int = field(1, help="GPUs per sequence-parallel group (1 = off); divides the world size")
    activation_checkpointing: bool = field(False, help="recompute decoder layers and vision blocks in the "
                                                       "backward pass instead of keeping their activations")
    activation_checkpointing_every_n_layers: int = field(1, help="checkpoint every n-th layer only (1 = all)")
    activation_checkpointing_offload: bool = field(False, help="keep the checkpointed layer inputs in pinned host "
                                                               "memory instead of GPU memory (slower, GPU only)")
    mixed_precision: Literal["auto", "bfloat16", "none"] = field(
        "auto", help="FSDP2 MixedPrecisionPolicy: bfloat16 compute with float32 gradient reduction; 'auto' = "
                     "bfloat16 on GPU, none on CPU")
    reshard_after_forward: bool = field(True, help="FSDP2: free gathered weights after forward (ZeRO-3); false "
                                                   "keeps them until backward (ZeRO-2, more memory, less traffic)")
    fused_loss: Literal["none", "liger"] = field(
        "none", help="'liger': Liger-Kernel fused linear cross-entropy (GPU only); 'none': the target-only loss "
                     "that never builds full-vocabulary logits for a row")
    backend: Literal["auto", "nccl", "gloo"] = field("auto", help="process-group backend; auto: nccl on GPU, "
                                                                 "gloo on CPU")
    vision_cache_mb: int = field(1024, help="with the vision tower and merger frozen, on one process: keep each "
                                            "image's vision features (up to this many MB) and encode an image seen "
                                            "again only once (0 = off; the tower then runs on every row)")

    def validate(self) -> None:
        if self.sp_degree < 1:
            raise ConfigError("sp_degree", self.sp_degree, "must be 1 or more")
        if self.vision_cache_mb < 0:
            raise ConfigError("vision_cache_mb", self.vision_cache_mb, "must be 0 (off) or more")
        if self.sequence_parallel == "none" and self.sp_degree != 1:
            raise ConfigError("sp_degree", self.sp_degree, "set sequence_parallel to 'ring' or use sp_degree 1")
        if self.sequence_parallel != "none" and self.sp_degree < 2:
            raise ConfigError("sp_degree", self.sp_degree,
                              f"sequence_parallel={self.sequence_parallel!r} needs sp_degree 2 or more")
        if self.sequence_parallel in ("ulysses", "context_parallel"):
            raise ConfigError("sequence_parallel", self.sequence_parallel,
                              "not wired in mmprolong: use 'ring' (ring-flash-attn llama3 varlen, exact for packed "
                              "rows). PyTorch context_parallel cannot take the block-diagonal mask of packed rows, "
                              "and no Ulysses implementation is integrated")
        if self.sequence_parallel != "none" and self.data_parallel != "fsdp2":
            raise ConfigError("data_parallel", self.data_parallel, "sequence parallelism runs with fsdp2")
        if self.activation_checkpointing_every_n_layers < 1:
            raise ConfigError("activation_checkpointing_every_n_layers", self.activation_checkpointing_every_n_layers,
                              "must be 1 or more")


@dataclasses.dataclass(kw_only=True)
class LoggingConfig(Config):
    """What the run reports: RUN/metrics.jsonl always, plus a progress bar, TensorBoard and RUN/loss.png."""

    log_interval_steps: int = field(1, help="write a metrics line (JSONL, log, TensorBoard) every this many steps")
    progress_bar: bool = field(True, help="tqdm bar on rank 0 with tokens/s and ETA")
    tensorboard: bool = field(True, help="also write RUN/tensorboard when the tensorboard package is installed")
    plot: bool = field(True, help="draw RUN/loss.png at the end")

    def validate(self) -> None:
        if self.log_interval_steps < 1:
            raise ConfigError("log_interval_steps", self.log_interval_steps, "must be 1 or more")


SECTIONS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "schedule": ScheduleConfig,
            "checkpoint": CheckpointConfig, "parallel": ParallelConfig, "logging": LoggingConfig}


@dataclasses.dataclass(kw_only=True)
class TrainConfig(Config):
    """Continued pre-training of a Qwen-VL model on a synth data folder (the MMProLong recipe)."""

    run_dir: str = field(help="output folder: config.yaml, metrics.jsonl, checkpoints/, final/, summary.json")
    seed: int = field(0, help="seed of the torch and python RNGs of the training loop (model init and data "
                              "order have their own: model.seed, data.seed)")
    device: Literal["auto", "cpu", "cuda"] = field("auto", help="'auto': cuda when available, else cpu")
    deterministic: bool = field(False, help="torch.use_deterministic_algorithms (bitwise-repeatable runs)")
    model: ModelConfig = field(default_factory=ModelConfig, help="the base model")
    data: DataConfig = field(help="the synth data folder and packing")
    optim: OptimConfig = field(default_factory=OptimConfig, help="AdamW")
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig, help="token budget and learning-rate shape")
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig, help="checkpoints and the final model")
    parallel: ParallelConfig = field(default_factory=ParallelConfig, help="parallelism and memory savers")
    logging: LoggingConfig = field(default_factory=LoggingConfig, help="metrics, progress, plots")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, prefix: str = "", validate: bool = True) -> Self:
        data = dict(data or {})
        for name, kind in SECTIONS.items():
            if isinstance(data.get(name), dict):
                with _section(name):
                    data[name] = kind.from_dict(data[name], prefix=f"{name}.")
        return super().from_dict(data, prefix=prefix, validate=validate)

    def validate(self) -> None:
        self.validate_settings()
        for name, folder in [("data.data_dir", self.data.data_dir),
                             *((f"data.mix_dirs[{i}]", d) for i, d in enumerate(self.data.mix_dirs))]:
            if not (Path(folder) / "summary.json").is_file():
                raise ConfigError(name, folder, "no summary.json there: give the output folder of `mmprolong synth`")

    def validate_settings(self) -> None:
        """Everything but the data folder: lets a pipeline refuse a bad recipe before it makes the data."""
        for name in SECTIONS:
            with _section(name):
                getattr(self, name).validate()
        if not self.run_dir:
            raise ConfigError("run_dir", self.run_dir, "give an output folder")
        self._validate_combinations()

    def _validate_combinations(self) -> None:
        s, d, p, m = self.schedule, self.data, self.parallel, self.model
        if s.global_batch_tokens % d.max_seq_len:
            raise ConfigError("schedule.global_batch_tokens", s.global_batch_tokens,
                              f"must be a multiple of data.max_seq_len={d.max_seq_len} (a step is whole rows)")
        if s.min_lr > self.optim.lr and s.decay != "constant":
            raise ConfigError("schedule.min_lr", s.min_lr, f"is above optim.lr={self.optim.lr}")
        if d.max_seq_len % p.sp_degree:
            raise ConfigError("parallel.sp_degree", p.sp_degree,
                              f"must divide data.max_seq_len={d.max_seq_len} (each GPU holds an equal chunk)")
        if self.device == "cpu":
            gpu_only = {"parallel.sequence_parallel": (p.sequence_parallel, p.sequence_parallel == "ring"),
                        "parallel.fused_loss": (p.fused_loss, p.fused_loss != "none"),
                        "parallel.mixed_precision": (p.mixed_precision, p.mixed_precision == "bfloat16"),
                        "parallel.activation_checkpointing_offload": (p.activation_checkpointing_offload,
                                                                      p.activation_checkpointing_offload),
                        "model.attn_implementation": (m.attn_implementation,
                                                      m.attn_implementation == "flash_attention_2"),
                        "parallel.backend": (p.backend, p.backend == "nccl")}
            for name, (value, bad) in gpu_only.items():
                if bad:
                    raise ConfigError(name, value, "needs a GPU (device is 'cpu')")
        if p.mixed_precision == "bfloat16" and m.dtype == "float64":
            raise ConfigError("parallel.mixed_precision", p.mixed_precision,
                              "bfloat16 compute contradicts model.dtype=float64: use mixed_precision 'none'")
        if m.attn_logn_window and p.sequence_parallel != "none":
            raise ConfigError("model.attn_logn_window", m.attn_logn_window,
                              f"log-length scaling runs in sdpa_packed, which sequence_parallel "
                              f"{p.sequence_parallel!r} replaces: set it to 0 or sequence_parallel to 'none'")
        if p.sequence_parallel == "ring" and m.attn_implementation != "flash_attention_2":
            raise ConfigError("model.attn_implementation", m.attn_implementation,
                              "sequence_parallel 'ring' runs on flash-attn: set flash_attention_2")
        if s.stop_at_step is not None and s.stop_at_step > s.total_steps:
            raise ConfigError("schedule.stop_at_step", s.stop_at_step,
                              f"is past the last step ({s.total_steps} = ceil(budget_tokens / global_batch_tokens))")


@contextlib.contextmanager
def _section(name: str):
    """Re-raise a section's ConfigError with the section in the field path (``max_seq_len`` -> ``data.max_seq_len``)."""
    try:
        yield
    except ConfigError as exc:
        if exc.field.startswith(f"{name}."):
            raise
        raise ConfigError(f"{name}.{exc.field}", exc.value, exc.fix) from None


def micro_batches_per_step(config: TrainConfig, world_size: int) -> int:
    """Rows each data-parallel rank runs per step; ConfigError naming the field unless the split is exact."""
    p = config.parallel
    if world_size % p.sp_degree:
        raise ConfigError("parallel.sp_degree", p.sp_degree, f"must divide the world size ({world_size} processes)")
    dp = world_size // p.sp_degree
    per_step = config.data.max_seq_len * dp
    if config.schedule.global_batch_tokens % per_step:
        raise ConfigError("schedule.global_batch_tokens", config.schedule.global_batch_tokens,
                          f"must be a multiple of data.max_seq_len x data-parallel ranks = {config.data.max_seq_len}"
                          f" x {dp} = {per_step} (world size {world_size}, sp_degree {p.sp_degree})")
    return config.schedule.global_batch_tokens // per_step


def resume_relevant(config: TrainConfig) -> dict:
    """The settings a resumed run must share with the run it continues (not logging, workers, stop step...)."""
    d = config.to_dict()
    for key in ("run_dir", "logging", "checkpoint", "deterministic"):
        d.pop(key)
    d["schedule"].pop("stop_at_step")
    for key in ("num_workers", "prefetch_factor"):
        d["data"].pop(key)
    for key in ("activation_checkpointing", "activation_checkpointing_every_n_layers",
                "activation_checkpointing_offload", "reshard_after_forward", "backend"):
        # memory and communication knobs: same numbers either way
        d["parallel"].pop(key)
    return d
