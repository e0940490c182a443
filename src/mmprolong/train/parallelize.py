"""Parallelisms and memory savers, one ``apply_*`` function each, applied in the order AC -> FSDP2 (-> SP hooks).

    dims = ParallelDims(world_size=8, sp=2)                 # dp = 4; SP groups are consecutive ranks
    world = init_distributed(rank, world_size, local_rank, dims=dims, device="cuda", backend="nccl")
    apply_activation_checkpointing(model)                   # decoder layers + vision blocks recompute in backward
    sp = apply_sequence_parallel(model, "ring", world)      # attention over the whole row, each GPU 1/sp of it
    apply_fsdp2(model, world.fsdp_mesh, param_dtype=torch.bfloat16)   # shards over all ranks (dp x sp)

Gradients are *summed* over ranks (FSDP2's divide factor is set to 1): the trainer divides the loss by the
global number of answer tokens itself, so every rank, micro-batch and sequence chunk weighs by its targets.

Sequence parallelism splits one packed row into ``sp`` equal contiguous chunks. Every rank of an SP group runs
the vision tower and the embedding on the whole row (so image features land where their tokens are), then a
forward pre-hook on the language model keeps only the rank's chunk of the embeddings and positions (and of
whatever else the family's language model takes per token: ``ModelFamily.text_chunk``, Qwen3-VL's DeepStack
features); attention sees the whole row through a registered attention function:

- ``ring``: ring-flash-attn's ``llama3_flash_attn_varlen_func`` (all-gathers K/V per head stride; exact for
  packed rows through the row's cu_seqlens). GPU + flash-attn only.
- ``kv_allgather``: the same schedule in plain PyTorch (autograd all-gather of K/V, SDPA with the block-causal
  mask of the packed row). Any device; it is how the SP plumbing is checked on CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from mmprolong.errors import ConfigError
from mmprolong.models.loading import logn_window
from mmprolong.train.collate import IGNORE_INDEX

if TYPE_CHECKING:
    from mmprolong.models.base import ModelFamily
    from mmprolong.train.collate import Batch

log = logging.getLogger(__name__)


# --- world ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParallelDims:
    """World size split into data-parallel x sequence-parallel ranks (SP groups are consecutive ranks)."""

    world_size: int
    sp: int = 1

    def __post_init__(self):
        if self.world_size < 1 or self.sp < 1:
            raise ValueError(f"world_size={self.world_size} and sp={self.sp} must be positive")
        if self.world_size % self.sp:
            raise ConfigError("parallel.sp_degree", self.sp, f"must divide the world size ({self.world_size})")

    @property
    def dp(self) -> int:
        return self.world_size // self.sp

    def dp_rank(self, rank: int) -> int:
        return rank // self.sp

    def sp_rank(self, rank: int) -> int:
        return rank % self.sp


@dataclass(frozen=True)
class World:
    """This process's place in the run. ``distributed`` is False for a single process (no process group)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    dims: ParallelDims
    fsdp_mesh: Any = None  # DeviceMesh over all ranks (FSDP2 shards over dp x sp)
    sp_group: Any = None  # ProcessGroup of this rank's SP group

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def dp_rank(self) -> int:
        return self.dims.dp_rank(self.rank)

    @property
    def sp_rank(self) -> int:
        return self.dims.sp_rank(self.rank)


def init_distributed(rank: int, world_size: int, local_rank: int, *, dims: ParallelDims, device: str,
                     backend: str) -> World:
    """Start the process group (when ``world_size > 1``) and the meshes; ``device`` is 'cpu' or 'cuda'."""
    import torch.distributed as dist

    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size == 1:
        return World(rank=0, world_size=1, local_rank=0, device=dev, dims=dims)
    if backend == "auto":
        backend = "nccl" if device == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                device_id=dev if device == "cuda" else None)
    from torch.distributed.device_mesh import init_device_mesh

    fsdp_mesh = init_device_mesh(dev.type, (world_size,), mesh_dim_names=("fsdp",))
    sp_group = None
    if dims.sp > 1:
        mesh = init_device_mesh(dev.type, (dims.dp, dims.sp), mesh_dim_names=("dp", "sp"))
        sp_group = mesh.get_group("sp")
    if rank == 0:
        log.info("parallel: world %d = data-parallel %d x sequence-parallel %d; backend %s", world_size, dims.dp,
                 dims.sp, backend)
    return World(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, dims=dims,
                 fsdp_mesh=fsdp_mesh, sp_group=sp_group)


# --- activation checkpointing, FSDP2, DDP -----------------------------------------------------------------


def apply_activation_checkpointing(model, *, every_n_layers: int = 1, offload: bool = False) -> int:
    """Recompute each decoder layer and vision block in the backward pass (non-reentrant torch checkpoint via
    transformers' GradientCheckpointingLayer); ``offload`` keeps the saved layer inputs in pinned host memory.
    Returns the number of checkpointed layers."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    model.activation_checkpointing_enable({"use_reentrant": False}, every_n_layers=every_n_layers, offload=offload)
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)
              and getattr(m, "gradient_checkpointing", False)]
    return len(layers)


def fsdp_units(model) -> list[torch.nn.Module]:
    """The modules sharded as their own FSDP2 unit: vision blocks, then decoder layers (the root holds the rest)."""
    return list(model.model.visual.blocks) + list(model.model.language_model.layers)


def apply_fsdp2(model, mesh, *, param_dtype: torch.dtype | None = None, reduce_dtype: torch.dtype = torch.float32,
                reshard_after_forward: bool = True) -> None:
    """``fully_shard`` each vision block and decoder layer, then the root; gradients are summed, not averaged.

    ``param_dtype`` (e.g. bfloat16) turns on FSDP2 mixed precision: weights are gathered and computed in it,
    gradients reduced in ``reduce_dtype``, and the sharded master weights stay in the model's dtype.

    Only the root casts its forward inputs (pixel values) to ``param_dtype``. A block casting its own would turn
    the vision rotary cos/sin, computed in float32 by the vision tower and passed to every block as a keyword,
    into bfloat16 (up to 2.8e-3 off what transformers and inference compute); the hidden states the blocks get
    are in ``param_dtype`` already, being outputs of layers computed in it.
    """
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    reduce = reduce_dtype if param_dtype else None
    root = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce)
    block = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce, cast_forward_inputs=False)
    for unit in fsdp_units(model):
        fully_shard(unit, mesh=mesh, mp_policy=block, reshard_after_forward=reshard_after_forward)
    # The root's weights (embeddings, merger, lm_head) are needed right at the start of backward: keep them.
    fully_shard(model, mesh=mesh, mp_policy=root, reshard_after_forward=False)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            # Plain SUM collectives: gloo has no PREMUL_SUM (used with mixed precision otherwise); NCCL zero-copy.
            module.set_force_sum_reduction_for_comms(True)


def apply_ddp(model, device: torch.device):
    """DistributedDataParallel (averages gradients over ranks: the trainer scales the loss by the world size)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model):
    """The model under a DDP wrapper (FSDP2 keeps the module itself)."""
    return getattr(model, "module", model)


def gradient_scale(data_parallel: str, world: World) -> float:
    """Factor on the loss so the reduced gradient is the gradient of the global-batch mean."""
    return float(world.world_size) if (world.distributed and data_parallel == "ddp") else 1.0


# --- fused loss -------------------------------------------------------------------------------------------


def liger_answer_loss_sum(model, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Like ``answer_loss_sum`` with Liger-Kernel's fused linear cross-entropy: the language model's hidden states
    of the target positions go straight into the fused kernel with ``lm_head``'s weight (GPU only).

    The head is swapped for an identity during the forward so the model returns hidden states; under FSDP2 the
    root keeps ``lm_head`` gathered after forward (``reshard_after_forward=False`` on the root).
    """
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    core = unwrap(model)
    head = core.lm_head
    inputs = batch.model_inputs(labels=False)
    keep = batch.logits_mask().to(inputs["input_ids"].device)
    core.lm_head = torch.nn.Identity()
    try:
        hidden = model(**inputs, logits_to_keep=keep).logits
    finally:
        core.lm_head = head
    targets = batch.target_ids().to(hidden.device)
    weight = head.weight.to_local() if hasattr(head.weight, "to_local") else head.weight
    loss = LigerFusedLinearCrossEntropyLoss(reduction="sum")(weight, hidden, targets)
    return loss, targets.new_tensor(targets.numel())


def check_liger() -> None:
    try:
        import liger_kernel  # noqa: F401
    except ImportError:
        raise ConfigError("parallel.fused_loss", "liger", "liger_kernel is not installed: pip install liger-kernel "
                                                          "(GPU only), or set fused_loss to 'none'") from None
    if not torch.cuda.is_available():
        raise ConfigError("parallel.fused_loss", "liger", "Liger kernels run on GPU only")


# --- sequence parallelism ---------------------------------------------------------------------------------


def apply_sequence_parallel(model, kind: str, world: World, *, pad_token_id: int, family: ModelFamily,
                            heads_k_stride: int = 1) -> SequenceParallel:
    """Split every row's sequence over the SP group: register the attention function, hook the language model.

    ``kind``: 'ring' (ring-flash-attn, GPU) or 'kv_allgather' (plain PyTorch, any device). Raises ConfigError
    naming ``parallel.sequence_parallel`` when the implementation cannot run here.
    """
    if world.dims.sp < 2 or world.sp_group is None:
        raise ConfigError("parallel.sp_degree", world.dims.sp, "sequence parallelism needs sp_degree >= 2 and "
                                                               "a process group (launch with torchrun)")
    if kind == "ring":
        if world.device.type != "cuda":
            raise ConfigError("parallel.sequence_parallel", kind, "ring-flash-attn runs on GPU only")
        try:
            from ring_flash_attn.llama3_flash_attn_varlen import (
                llama3_flash_attn_varlen_func,  # noqa: F401
            )
        except ImportError as exc:
            raise ConfigError("parallel.sequence_parallel", kind,
                              f"needs ring-flash-attn and flash-attn ({exc}): pip install flash-attn ring-flash-attn"
                              ) from None
    elif kind != "kv_allgather":
        raise ConfigError("parallel.sequence_parallel", kind, "expected 'ring' or 'kv_allgather'")
    sp = SequenceParallel(model, kind, world.sp_group, world.sp_rank, world.dims.sp, pad_token_id=pad_token_id,
                          family=family, heads_k_stride=heads_k_stride)
    sp.install()
    return sp


class SequenceParallel:
    """The state of one SP group: which chunk of the current row this rank holds and the row's segments."""

    def __init__(self, model, kind: str, group, rank: int, size: int, *, pad_token_id: int, family: ModelFamily,
                 heads_k_stride: int = 1):
        self.model, self.kind, self.group, self.rank, self.size = model, kind, group, rank, size
        self.pad_token_id, self.family = pad_token_id, family
        self.heads_k_stride = heads_k_stride
        self.start = self.end = 0
        self.cu_seqlens: torch.Tensor | None = None
        self.segment_ids: torch.Tensor | None = None
        self._ring_params: tuple | None = None
        self.attn_name = f"mmprolong_{kind}"

    def install(self) -> None:
        from transformers import AttentionInterface

        core = unwrap(self.model)
        if logn_window(core.config):  # a checkpoint that records it (the config check sees only the field)
            raise ConfigError("parallel.sequence_parallel", self.kind, "the model uses log-length attention "
                                                                       "scaling (attn_logn_window), which only "
                                                                       "sdpa_packed applies")
        AttentionInterface.register(self.attn_name, self._attention)
        self._original_attn = core.config.text_config._attn_implementation
        core.config.text_config._attn_implementation = self.attn_name
        self._hook = core.model.language_model.register_forward_pre_hook(self._take_chunk, with_kwargs=True)

    def uninstall(self) -> None:
        """Back to whole-row attention (before saving the final model, so its config names a real kernel)."""
        unwrap(self.model).config.text_config._attn_implementation = self._original_attn
        self._hook.remove()

    # -- per row -------------------------------------------------------------------------------------------

    def prepare(self, batch: Batch) -> Batch:
        """Pad the row to a multiple of the SP size and record this rank's chunk; returns the padded batch."""
        batch = pad_row(batch, self.size, pad_token_id=self.pad_token_id)
        length = batch.input_ids.shape[1]
        chunk = length // self.size
        self.start, self.end = self.rank * chunk, (self.rank + 1) * chunk
        starts = batch.position_ids[0, 0] == 0
        self.segment_ids = starts.long().cumsum(0) - 1
        bounds = torch.nonzero(starts).flatten().tolist() + [length]
        self.cu_seqlens = torch.tensor(bounds, dtype=torch.int32, device=batch.input_ids.device)
        if self.kind == "ring":
            from ring_flash_attn.llama3_flash_attn_varlen import (
                llama3_flash_attn_prepare_cu_seqlens,
            )

            self._ring_params = llama3_flash_attn_prepare_cu_seqlens(self.cu_seqlens, True, self.rank, self.size)
        return batch

    def loss_sum(self, model, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy sum, target count) over the targets predicted from this rank's chunk of the row."""
        import torch.nn.functional as F

        batch = self.prepare(batch)
        inputs = batch.model_inputs(labels=False)
        next_labels = torch.full_like(batch.labels, IGNORE_INDEX)
        next_labels[:, :-1] = batch.labels[:, 1:]
        next_labels = next_labels[:, self.start:self.end]
        keep = next_labels != IGNORE_INDEX
        logits = model(**inputs, logits_to_keep=keep).logits
        targets = next_labels[keep]
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, reduction="sum")
        return loss, targets.new_tensor(targets.numel())

    # -- hooks ---------------------------------------------------------------------------------------------

    def _take_chunk(self, module, args, kwargs):
        embeds = kwargs["inputs_embeds"]
        if embeds.shape[1] == self.end - self.start:
            return args, kwargs  # already a chunk (e.g. the recompute of a checkpointed region)
        return args, self.family.text_chunk(kwargs, self.start, self.end)

    def _attention(self, module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
        """Attention of this rank's queries (1, heads, chunk, dim) over the whole row's keys and values."""
        if self.kind == "ring":
            return self._ring_attention(query, key, value, dropout, scaling)
        return self._allgather_attention(module, query, key, value, scaling)

    def _ring_attention(self, query, key, value, dropout, scaling):
        from ring_flash_attn.llama3_flash_attn_varlen import (
            llama3_flash_attn_varlen_func,
        )

        cu_q, cu_k, max_q, max_k, k_slice = self._ring_params
        q, k, v = (t.transpose(1, 2).squeeze(0) for t in (query, key, value))  # (chunk, heads, dim)
        out = llama3_flash_attn_varlen_func(q, k, v, cu_q, cu_k, max_q, max_k, self.heads_k_stride, k_slice,
                                            dropout_p=dropout, softmax_scale=scaling, causal=True, group=self.group)
        return out.unsqueeze(0), None

    def _allgather_attention(self, module, query, key, value, scaling):
        import torch.distributed.nn.functional as dist_fn
        import torch.nn.functional as F

        keys = torch.cat(dist_fn.all_gather(key.contiguous(), group=self.group), dim=2)
        values = torch.cat(dist_fn.all_gather(value.contiguous(), group=self.group), dim=2)
        groups = query.shape[1] // keys.shape[1]
        keys, values = keys.repeat_interleave(groups, dim=1), values.repeat_interleave(groups, dim=1)
        positions = torch.arange(keys.shape[2], device=query.device)
        q_pos = positions[self.start:self.end]
        seg = self.segment_ids.to(query.device)
        mask = (seg[self.start:self.end, None] == seg[None, :]) & (positions[None, :] <= q_pos[:, None])
        out = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, scale=scaling)
        return out.transpose(1, 2).contiguous(), None


def pad_row(batch: Batch, multiple: int, *, pad_token_id: int) -> Batch:
    """The 1-row batch right-padded to a multiple of ``multiple`` tokens; the padding is its own segment
    (positions from 0, no targets), as ``collate_packed`` pads."""
    if batch.input_ids.shape[0] != 1:
        raise ValueError("sequence parallelism takes one packed row per micro-batch")
    length = batch.input_ids.shape[1]
    extra = -length % multiple
    if not extra:
        return batch

    def grow(t: torch.Tensor, value: int) -> torch.Tensor:
        return torch.cat([t, t.new_full((*t.shape[:-1], extra), value)], dim=-1)

    positions = torch.cat([batch.position_ids, torch.arange(extra, device=batch.position_ids.device)
                           .expand(*batch.position_ids.shape[:-1], extra)], dim=-1)
    cu = torch.cat([batch.cu_seqlens, batch.cu_seqlens.new_tensor([length + extra])])
    return replace(batch, input_ids=grow(batch.input_ids, pad_token_id), labels=grow(batch.labels, IGNORE_INDEX),
                   position_ids=positions, mm_token_type_ids=grow(batch.mm_token_type_ids, 0), cu_seqlens=cu)
