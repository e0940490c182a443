"""The training loop: ``Trainer.build(config, world).train()``.

One step = ``micro_batches`` packed rows per data-parallel rank. The number of answer tokens of the whole global
batch (all micro-batches, all ranks) is known before any forward pass; each micro-batch backpropagates
``loss_sum / global_targets`` and gradients are summed over ranks, so the step's gradient is that of the mean
loss over the global batch's answer tokens, whatever the split into ranks and micro-batches.

The loop checks every step that loss and gradient norm are finite (else: checkpoint of the last good state,
TrainingDivergedError naming the step and its samples) and whether any rank got SIGTERM (then: checkpoint at the
end of the step and a clean exit).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial

import torch

from mmprolong.errors import DataError, ResumeError, TrainingDivergedError
from mmprolong.models import family_of_config
from mmprolong.models.loading import load_model, parameter_counts
from mmprolong.train.checkpoint import (
    Checkpointer,
    latest_checkpoint,
    list_checkpoints,
    save_final_model,
)
from mmprolong.train.collate import pad_token_id
from mmprolong.train.config import TrainConfig, micro_batches_per_step, resume_relevant
from mmprolong.train.frozen_vision import FrozenVisionFeatures, frozen_vision_applies
from mmprolong.train.logging import MetricsLogger, peak_memory_gb
from mmprolong.train.loss import answer_loss_sum
from mmprolong.train.parallelize import (
    World,
    apply_activation_checkpointing,
    apply_ddp,
    apply_fsdp2,
    apply_sequence_parallel,
    check_liger,
    gradient_scale,
    liger_answer_loss_sum,
    unwrap,
)
from mmprolong.train.schedule import LRSchedule

log = logging.getLogger(__name__)


class _DataExhausted(Exception):
    """The loader ran out of rows (``data.num_epochs`` set) before the step was full."""


@dataclass
class StepCounts:
    """Global (all ranks) counts of one step, known before its forward passes."""

    targets: float  # answer tokens: the loss normaliser
    tokens: float  # sample tokens (no padding)
    rows: float


class Trainer:
    def __init__(self, config: TrainConfig, world: World, *, model, tokenizer, image_processor, loader, optimizer,
                 schedule: LRSchedule, micro_batches: int, loss_fn, sequence_parallel=None,
                 vision_features: FrozenVisionFeatures | None = None):
        self.config, self.world = config, world
        self.model, self.tokenizer, self.image_processor = model, tokenizer, image_processor
        self.loader, self.optimizer, self.schedule = loader, optimizer, schedule
        self.micro_batches, self.loss_fn, self.sp = micro_batches, loss_fn, sequence_parallel
        self.vision_features = vision_features  # the memo loss_fn reads frozen vision features from, if any
        self.total_steps = config.schedule.total_steps
        self.checkpointer = Checkpointer(config.run_dir, rank=world.rank, world_size=world.world_size,
                                         keep_last=config.checkpoint.keep_last)
        self.metrics = MetricsLogger(config.run_dir, enabled=world.is_main, total_steps=self.total_steps,
                                     progress_bar=config.logging.progress_bar,
                                     tensorboard=config.logging.tensorboard)
        self.grad_scale = gradient_scale(config.parallel.data_parallel, world)
        self.autocast = _autocast(config, world)
        self.step = 0  # optimizer steps done
        self.tokens_seen = 0
        self.first_loss: float | None = None
        self.last_loss: float | None = None
        self.last_checkpoint: str | None = None
        self.stop_reason: str | None = None
        self._signal_received = False
        self._session = {"start": time.perf_counter(), "start_step": 0, "start_tokens": 0}
        self._batches = None

    # --- build --------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, config: TrainConfig, world: World) -> Trainer:
        """Model (loaded, parallelised, on the device), data loader for this rank, AdamW, LR schedule."""
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
        micro_batches = micro_batches_per_step(config, world.world_size)
        model, tokenizer, image_processor = load_model(config.model)
        loader = build_loader(config, world, tokenizer, image_processor, model.config)
        model, loss_fn, sp, vision_features = parallelize(model, config, world, tokenizer)
        optimizer = build_optimizer(model, config)
        s = config.schedule
        schedule = LRSchedule(optimizer, peak_lr=config.optim.lr, min_lr=s.min_lr, total=s.total_steps,
                              warmup=s.warmup_steps, decay=s.decay)
        if world.is_main:
            counts = parameter_counts(unwrap(model))
            log.info("run %s: %d steps x %d tokens (budget %d); %d micro-batch(es) of %d tokens per rank per step; "
                     "warm-up %d steps; %d trainable parameters", config.run_dir, s.total_steps,
                     s.global_batch_tokens, s.budget_tokens, micro_batches, config.data.max_seq_len, s.warmup_steps,
                     counts["trainable"])
        return cls(config, world, model=model, tokenizer=tokenizer, image_processor=image_processor, loader=loader,
                   optimizer=optimizer, schedule=schedule, micro_batches=micro_batches, loss_fn=loss_fn,
                   sequence_parallel=sp, vision_features=vision_features)

    # --- the loop -----------------------------------------------------------------------------------------

    def train(self) -> dict:
        """Resume if there is a checkpoint, run steps until the budget, a stop step, SIGTERM or the data ends."""
        self.resume()
        self.metrics.write_config(self.config.to_dict())
        self.metrics.open(self.step)
        with self.stop_on_sigterm():
            try:
                while self.stop_reason is None:
                    self.train_step()
                    self.after_step()
            except TrainingDivergedError:
                self.stop_reason = "diverged"
                self.finish()
                raise
        return self.finish()

    def train_step(self) -> None:
        """One optimizer step over the global batch."""
        start = time.perf_counter()
        data_state = self.loader.state_dict()
        try:
            batches = self.next_micro_batches()
        except _DataExhausted:
            self.stop_reason = "data_exhausted"
            return
        counts = self.global_counts(batches)
        lr = self.schedule.apply()
        loss_sum = sum(self.forward_backward_step(batch, counts.targets) for batch in batches)
        loss_sum, signal_flag = self.all_reduce_sum(torch.stack([loss_sum.double().cpu(), self._signal_tensor()]))
        loss = float(loss_sum) / counts.targets
        grad_norm = self.clip_gradients()
        self.check_finite(loss, grad_norm, batches, data_state)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        self.step += 1
        self.tokens_seen += int(counts.tokens)
        self.first_loss = loss if self.first_loss is None else self.first_loss
        self.last_loss = loss
        if signal_flag > 0:
            self.stop_reason = "signal"
        self.log_step(loss, lr, grad_norm, counts, time.perf_counter() - start)

    def next_micro_batches(self) -> list:
        if self._batches is None:
            self._batches = iter(self.loader)
        batches = []
        for _ in range(self.micro_batches):
            try:
                batches.append(next(self._batches))
            except StopIteration:
                raise _DataExhausted from None
        return batches

    def global_counts(self, batches) -> StepCounts:
        """All-reduced answer-token, token and row counts (an SP group holds the same rows: counted once)."""
        local = torch.tensor([float(sum(int(b.num_target_tokens.sum()) for b in batches)),
                              float(sum(int(b.num_tokens.sum()) for b in batches)), float(len(batches)),
                              float(sum(b.pixel_values is None for b in batches))], dtype=torch.float64)
        targets, tokens, rows, without_images = (self.all_reduce_sum(local) / self.world.dims.sp).tolist()
        if targets <= 0:
            raise DataError(f"step {self.step + 1} has no answer token in its {rows:.0f} rows")
        if without_images and self.world.distributed:
            raise DataError(f"step {self.step + 1}: {without_images:.0f} row(s) without images; with several "
                            "processes every row must run the vision tower (FSDP2 gathers and DDP reduces its "
                            "weights on every rank)")
        return StepCounts(targets=targets, tokens=tokens, rows=rows)

    def forward_backward_step(self, batch, global_targets: float) -> torch.Tensor:
        """Forward one micro-batch, backpropagate its share of the global mean; returns its loss sum."""
        batch = batch.to(self.world.device, non_blocking=True)
        with self.autocast:
            loss_sum, _ = self.loss_fn(self.model, batch)
        (loss_sum * (self.grad_scale / global_targets)).backward()
        return loss_sum.detach()

    def clip_gradients(self) -> float:
        """Global gradient L2 norm (over all shards), clipped to optim.max_grad_norm unless that is -1."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], norm_type=2.0, error_if_nonfinite=False)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        if self.config.optim.max_grad_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(params, self.config.optim.max_grad_norm, norm)
        return float(norm)

    def check_finite(self, loss: float, grad_norm: float, batches, data_state: dict) -> None:
        """Stop on a NaN/inf loss or gradient norm: checkpoint the state before this step, name its samples."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            return
        self.optimizer.zero_grad(set_to_none=True)
        ids = [sid for b in batches for row in b.sample_ids for sid in row]
        if self.world.distributed:
            import torch.distributed as dist

            gathered = [None] * self.world.world_size
            dist.all_gather_object(gathered, ids)
            ids = [sid for rank_ids in gathered for sid in rank_ids]
            ids = list(dict.fromkeys(ids))  # SP ranks hold the same rows
        path = self.save_checkpoint(data_state=data_state)
        log.error("step %d: loss %s, grad norm %s; samples %s; checkpoint of step %d at %s", self.step + 1, loss,
                  grad_norm, ids, self.step, path)
        raise TrainingDivergedError(self.step + 1, loss, grad_norm, ids, path)

    def after_step(self) -> None:
        """Save when due, and decide whether the session ends here."""
        s = self.config.schedule
        if self.stop_reason in (None, "signal") and self.step >= self.total_steps:
            self.stop_reason = "completed"  # a SIGTERM during the last step still gets the final model
        if self.stop_reason is None and s.stop_at_step is not None and self.step >= s.stop_at_step:
            self.stop_reason = "stop_at_step"
        interval = self.config.checkpoint.interval_steps
        if self.stop_reason is not None or (interval > 0 and self.step % interval == 0):
            self.save_checkpoint()
        self.metrics.advance()

    # --- checkpoints --------------------------------------------------------------------------------------

    def save_checkpoint(self, *, data_state: dict | None = None) -> str:
        """Checkpoint of the state after ``self.step`` steps (once per step)."""
        if self.last_checkpoint == str(self.checkpointer.path(self.step)):
            return self.last_checkpoint
        trainer_state = {"tokens_seen": self.tokens_seen, "first_loss": self.first_loss, "last_loss": self.last_loss,
                         "schedule": self.schedule.state_dict(), "settings": resume_relevant(self.config)}
        rank_state = {"data": data_state or self.loader.state_dict()}
        path = self.checkpointer.save(self.step, self.model, self.optimizer, trainer_state=trainer_state,
                                      rank_state=rank_state)
        self.last_checkpoint = str(path)
        return self.last_checkpoint

    def resume(self) -> None:
        """Continue from checkpoint.resume: 'auto' = the latest complete checkpoint of run_dir, if any."""
        path = self.resume_path()
        if path is None:
            return
        meta, rank_state = self.checkpointer.load(path, self.model, self.optimizer)
        saved, ours = meta.get("settings", {}), resume_relevant(self.config)
        if saved != ours:
            diff = sorted(_diff(saved, ours))
            raise ResumeError(f"{path} was saved with other settings ({', '.join(diff)}); resume with the same "
                              "config or use a new run_dir")
        self.loader.load_state_dict(rank_state["data"])
        self.schedule.load_state_dict(meta["schedule"])
        self.step, self.tokens_seen = int(meta["step"]), int(meta["tokens_seen"])
        self.first_loss, self.last_loss = meta.get("first_loss"), meta.get("last_loss")
        self.last_checkpoint = str(path)
        self._session.update(start=time.perf_counter(), start_step=self.step, start_tokens=self.tokens_seen)
        if self.world.is_main:
            log.info("resumed from %s at step %d (%d tokens seen)", path, self.step, self.tokens_seen)
        if self.step >= self.total_steps:
            self.stop_reason = "completed"

    def resume_path(self):
        mode = self.config.checkpoint.resume
        if mode == "auto":
            return latest_checkpoint(self.config.run_dir)
        if mode == "never":
            if list_checkpoints(self.config.run_dir):
                raise ResumeError(f"{self.config.run_dir} holds checkpoints and checkpoint.resume is 'never': use "
                                  "resume 'auto' to continue it, or a new run_dir")
            return None
        return mode

    # --- stop on SIGTERM ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def stop_on_sigterm(self):
        """While training, SIGTERM only sets a flag; the step in progress finishes, is saved, and train() returns."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            self._signal_received = True
            log.warning("rank %d: SIGTERM received: stopping after this step with a checkpoint", self.world.rank)

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _signal_tensor(self) -> torch.Tensor:
        return torch.tensor(float(self._signal_received), dtype=torch.float64)

    # --- reporting ----------------------------------------------------------------------------------------

    def log_step(self, loss: float, lr: float, grad_norm: float, counts: StepCounts, seconds: float) -> None:
        if self.step % self.config.logging.log_interval_steps and self.stop_reason is None:
            return
        self.metrics.log_step({
            "step": self.step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "targets": int(counts.targets),
            "tokens": int(counts.tokens), "tokens_seen": self.tokens_seen, "seconds": seconds,
            "tokens_per_s": counts.tokens / seconds, "peak_memory_gb": peak_memory_gb(self.world.device),
            "time": time.time()})

    def finish(self) -> dict:
        """Final model (when the run completed), summary.json, loss.png; returns the summary."""
        final = None
        if self.stop_reason == "completed" and self.config.checkpoint.save_final:
            if self.sp is not None:
                self.sp.uninstall()
            final = save_final_model(
                self.model, self.tokenizer, self.image_processor, f"{self.config.run_dir}/final",
                rank=self.world.rank, world_size=self.world.world_size,
                sharded=self.world.distributed and self.config.parallel.data_parallel == "fsdp2",
                dtype=self.config.checkpoint.final_dtype)
        summary = self.summary(final)
        self.metrics.finish(summary, plot=self.config.logging.plot)
        return summary

    def summary(self, final) -> dict:
        seconds = time.perf_counter() - self._session["start"]
        session_tokens = self.tokens_seen - self._session["start_tokens"]
        stats = self.loader.stats
        return {
            "stopped": self.stop_reason, "steps": self.step, "total_steps": self.total_steps,
            "steps_this_session": self.step - self._session["start_step"], "tokens": self.tokens_seen,
            "tokens_this_session": session_tokens, "seconds": round(seconds, 3),
            "tokens_per_s": session_tokens / seconds if seconds > 0 else 0.0,
            "first_loss": self.first_loss, "final_loss": self.last_loss,
            "packing_efficiency": stats["packing_efficiency"],
            "skipped_samples": {"too_long": stats["skipped_too_long"], "missing_page": stats["skipped_missing_page"],
                                "encode_failed": stats["skipped_encode_failed"]},
            "samples": stats["samples"], "samples_kept": stats["samples_kept"],
            "tokens_per_epoch_by_folder": stats["tokens_per_epoch_by_folder"],  # data_dir's, then mix_dirs'
            "rows_per_epoch": stats["rows_per_epoch"], "world_size": self.world.world_size,
            "data_parallel": self.world.dims.dp, "sequence_parallel": self.world.dims.sp,
            "micro_batches_per_step": self.micro_batches,
            "global_batch_tokens": self.config.schedule.global_batch_tokens,
            "peak_memory_gb": peak_memory_gb(self.world.device), "last_checkpoint": self.last_checkpoint,
            "final_model": str(final) if final else None,
            # this session's vision-tower use when its features are memoised (train.frozen_vision), else None
            "vision_features": self.vision_features.stats() if self.vision_features is not None else None}

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.world.distributed:
            return tensor
        import torch.distributed as dist

        on_device = tensor.to(self.world.device)
        dist.all_reduce(on_device)
        return on_device.cpu()

    def close(self) -> None:
        """Close the outputs and the data stream (its DataLoader worker processes end here, not at exit)."""
        self.metrics.close()
        if self._batches is not None:
            self._batches.close()
            self._batches = None


# --- pieces the builder uses ------------------------------------------------------------------------------


def build_loader(config: TrainConfig, world: World, tokenizer, image_processor, model_config):
    """This data-parallel rank's PackedLoader (the ranks of one SP group read the same rows)."""
    from mmprolong.train.collate import SampleEncoder
    from mmprolong.train.data import PackedLoader, PackedRows

    d = config.data
    encoder = SampleEncoder.build(tokenizer, image_processor, model_config, position_skip=d.position_skip,
                                  skip_seed=d.seed)
    rows = PackedRows(d.data_dir, encoder, max_seq_len=d.max_seq_len, seed=d.seed, rank=world.dp_rank,
                      world_size=world.dims.dp, num_epochs=d.num_epochs, mix_dirs=d.mix_dirs)
    return PackedLoader(rows, num_workers=d.num_workers, prefetch_factor=d.prefetch_factor,
                        pin_memory=world.device.type == "cuda")


def parallelize(model, config: TrainConfig, world: World, tokenizer):
    """AC -> sequence parallel -> FSDP2 (or DDP), then onto the device. Returns (model, loss_fn, sp or None, the
    FrozenVisionFeatures memo loss_fn uses or None)."""
    p = config.parallel
    if p.activation_checkpointing:
        count = apply_activation_checkpointing(model, every_n_layers=p.activation_checkpointing_every_n_layers,
                                               offload=p.activation_checkpointing_offload)
        if world.is_main:
            log.info("activation checkpointing on %d layers and vision blocks", count)
    loss_fn, sp, images = answer_loss_sum, None, None
    why_not = frozen_vision_applies(config, world)
    if why_not is None:
        images = FrozenVisionFeatures(family_of_config(model.config), config.parallel.vision_cache_mb << 20)
        loss_fn = partial(answer_loss_sum, images=images)
    elif world.is_main and not (config.model.train_vision or config.model.train_merger):
        log.info("vision features are not memoised: %s", why_not)
    if p.fused_loss == "liger":
        check_liger()
        loss_fn = liger_answer_loss_sum
    if p.sequence_parallel != "none":
        family = family_of_config(model.config)
        sp = apply_sequence_parallel(model, p.sequence_parallel, world, pad_token_id=pad_token_id(tokenizer, family),
                                     family=family)
        loss_fn = sp.loss_sum
    if world.distributed and p.data_parallel == "fsdp2":
        apply_fsdp2(model, world.fsdp_mesh, param_dtype=_param_dtype(config, world),
                    reshard_after_forward=p.reshard_after_forward)
        model.to(world.device)
    else:
        model.to(world.device)
        if world.distributed:
            model = apply_ddp(model, world.device)
    return model, loss_fn, sp, images


def build_optimizer(model, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weights of 2+ dims only (norm weights and biases are not decayed)."""
    o = config.optim
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)


def _param_dtype(config: TrainConfig, world: World) -> torch.dtype | None:
    mode = config.parallel.mixed_precision
    if mode == "bfloat16" or (mode == "auto" and world.device.type == "cuda"):
        return torch.bfloat16
    return None


def _autocast(config: TrainConfig, world: World):
    """bfloat16 autocast where mixed precision is on but FSDP2 does not do it (one process, or DDP)."""
    sharded = world.distributed and config.parallel.data_parallel == "fsdp2"
    if not sharded and _param_dtype(config, world) is not None and config.model.dtype == "float32":
        return torch.autocast(world.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _diff(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in set(a) | set(b) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]
