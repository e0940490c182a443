"""``sdpa_packed``: SDPA that computes only each packed sample's own causal block.

With ``attn_implementation="sdpa"`` a packed row (several samples end to end, text positions restarting at each
sample, no attention mask) makes transformers build a dense L x L block-diagonal mask, and SDPA then computes
every block, the cross-sample ones it masks included: a 4K row packed from four 1K samples costs four times the
attention it needs, and on CPU the row ran at 0.80x the tokens/s of padded batches. Flash-attention varlen skips
those blocks on GPUs; this is the same idea with plain SDPA, for CPUs and for GPUs without flash-attn.

How it hooks in (transformers 5.24): the name is registered in ``AttentionInterface`` but not in
``AttentionMaskInterface``, so ``create_causal_mask`` returns no mask for it (it treats unknown kernels as
building their own, like vLLM's). Each decoder layer of every supported family passes the text positions (row 0
of the 4-row packed positions; Qwen2-VL, Qwen2.5-VL and Qwen3-VL's text models all split it off and hand it down
as ``position_ids``) to the attention function; a restart there starts a new sample, and each sample runs through
transformers' own ``sdpa_attention_forward`` with ``is_causal=True``: the very call the model makes for the sample
alone, so a packed row equals its samples alone bit for bit (tested in float64 for each family).

Where there is no restart information to trust, the call is plain SDPA: the vision tower (which already splits
its attention per image and passes no positions), decoding with a cache (query shorter than the keys), and any
call given a mask. Without a mask builder this kernel cannot pad: the trainer uses it for packed rows, and
evaluation for one prompt at a time.

Log-length scaling (``attn_logn_window`` W in the text config, Qwen-1's ``logn_attn``): the query of a sample's
token i (0-based) is multiplied by max(1, ln(i + 1) / ln(W)). A softmax over n keys spreads thinner as n grows;
past the W tokens a model was trained at, its attention can no longer single out one page among many (the mini
model after LongPT at 4K: 1-7% of a reading head's attention on the needle for the answer's first digit, 70-99%
at 1K; benchmarks/results/logn.json). Up to W tokens the factor is exactly 1, so the model is unchanged there.
The index is the token's place in its own sample (per packed segment, or the cache length plus its offset when
decoding), so packed == unpacked still holds exactly. Only this kernel applies it; ``ModelConfig`` refuses the
setting with any other.
"""

from __future__ import annotations

import math

import torch

NAME = "sdpa_packed"
LOGN_ATTR = "attn_logn_window"  # text-config attribute: the window W of the log-length scaling, 0 or absent: off


def logn_factors(first: int, length: int, window: int, *, dtype: torch.dtype, device) -> torch.Tensor:
    """max(1, ln(i + 1) / ln(window)) for token indices i = first .. first + length - 1 (float64, then ``dtype``)."""
    index = torch.arange(first + 1, first + length + 1, dtype=torch.float64, device=device)
    return (index.log() / math.log(window)).clamp(min=1.0).to(dtype)


def scale_queries(query: torch.Tensor, first: int, window: int) -> torch.Tensor:
    """``query`` (batch, heads, length, head_dim) of tokens ``first``.. of one sample, log-length scaled."""
    if window <= 0 or first + query.shape[2] <= window:  # every factor is 1
        return query
    return query * logn_factors(first, query.shape[2], window, dtype=query.dtype, device=query.device)[:, None]


def segment_bounds(position_ids: torch.Tensor) -> list[int]:
    """Start offsets of the samples of one packed row, plus its length: a sample starts where the text position
    is not its predecessor + 1. ``[0, 5, 9]`` is two samples, of 5 and 4 tokens."""
    restarts = torch.nonzero(position_ids[1:] != position_ids[:-1] + 1).flatten() + 1
    return [0, *restarts.tolist(), int(position_ids.numel())]


def sdpa_packed_forward(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        attention_mask: torch.Tensor | None, position_ids: torch.Tensor | None = None,
                        **kwargs) -> tuple[torch.Tensor, None]:
    """Per-sample causal SDPA over a packed batch (query, key, value: batch, heads, length, head_dim)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    window = getattr(getattr(module, "config", None), LOGN_ATTR, 0) or 0
    packed = (position_ids is not None and attention_mask is None and query.shape[2] == key.shape[2]
              and kwargs.get("is_causal", True))
    if not packed:
        if window and attention_mask is not None:
            # with padding a query's index in its sample is not the cache length plus its offset
            raise ValueError(f"{LOGN_ATTR}: log-length scaling cannot take an attention mask (padded batches); "
                             "give one unpadded prompt or packed rows")
        query = scale_queries(query, key.shape[2] - query.shape[2], window)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    kwargs.pop("is_causal", None)
    rows = []
    for b in range(query.shape[0]):
        bounds = segment_bounds(position_ids[b])
        pieces = [sdpa_attention_forward(module, scale_queries(query[b:b + 1, :, s:e], 0, window),
                                         key[b:b + 1, :, s:e], value[b:b + 1, :, s:e], None, is_causal=True,
                                         **kwargs)[0]
                  for s, e in zip(bounds, bounds[1:])]
        rows.append(torch.cat(pieces, dim=1))  # sdpa_attention_forward returns (batch, length, heads, dim)
    return torch.cat(rows, dim=0), None


def register() -> None:
    """Make ``attn_implementation="sdpa_packed"`` known to transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, sdpa_packed_forward)
