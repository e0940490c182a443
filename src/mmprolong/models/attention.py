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

Page-local attention at inference (``page_window``, the eval's ``attn_page_window`` P): inside the context, the
prefill of a prompt longer than P lets each vision token attend only to the prompt's preamble (the tokens before its
first vision token: they serve as the attention sink) and to the last P tokens, itself included; text tokens (the
question, the answer being decoded) still attend to everything. LM-Infinite's Lambda-shaped mask (Han et al., 2023),
for the page tokens only. Why: after LongPT at 4K the mini model read a needle 40-60% of the time at depths 0-0.5
of an 8K prompt and 0% at 0.75-1: a page's tokens are also computed in the language model, attending to all that
precedes them, and a page behind more tokens than the model was trained at is encoded worse; the question finds it
but reads wrong digits (benchmarks/page_window.py). Bounded, a page's own computation sees what it saw in training.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

NAME = "sdpa_packed"
LOGN_ATTR = "attn_logn_window"  # text-config attribute: the window W of the log-length scaling, 0 or absent: off
# (vision-token mask of the prompt being run, P) while ``page_window`` is on; a context variable, not a forward
# argument, because generate() refuses keywords the model's forward does not name
_PAGE_WINDOW: ContextVar[tuple[torch.Tensor, int] | None] = ContextVar("page_window", default=None)
QUERY_BLOCK = 1024  # query rows per masked SDPA call under ``page_window``: a 16K x 16K mask alone is 256 MB


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
    pages = _PAGE_WINDOW.get()
    if (pages is not None and getattr(module, "is_causal", False) and attention_mask is None
            and query.shape[0] == 1 and pages[0].numel() == query.shape[2] == key.shape[2] > pages[1]
            and (position_ids is None or len(segment_bounds(position_ids[0])) == 2)):  # one prompt's prefill
        kwargs.pop("is_causal", None)
        return page_windowed_attention(module, query, key, value, *pages, logn_window=window, **kwargs), None
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


@contextmanager
def page_window(vision: torch.Tensor, window: int) -> Iterator[None]:
    """Page-local attention for the prompt run inside: ``vision`` marks its vision tokens (bool, one per prompt token,
    batch of one), ``window`` is P in tokens (0: off). Prompts of at most P tokens are computed as without it."""
    if window < 0:
        raise ValueError(f"page window {window}: expected 0 (off) or a window in tokens")
    token = _PAGE_WINDOW.set((vision.reshape(-1).bool(), window) if window else None)
    try:
        yield
    finally:
        _PAGE_WINDOW.reset(token)


def preamble_length(vision: torch.Tensor) -> int:
    """Tokens before a prompt's first vision token (all of them, 0, when it has none)."""
    marked = vision.nonzero()
    return int(marked[0, 0]) if len(marked) else 0


def page_window_mask(vision: torch.Tensor, queries: torch.Tensor, keys: torch.Tensor, window: int) -> torch.Tensor:
    """Whether each of ``queries`` attends to each of ``keys`` (token indices of one prompt; bool, queries x keys):
    causally, and a vision token only to the preamble (``preamble_length``) and to the last ``window`` tokens,
    itself included."""
    preamble = preamble_length(vision)
    query, key = queries[:, None], keys[None, :]
    return (key <= query) & (~vision[queries][:, None] | (query - key < window) | (key < preamble))


def page_windowed_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            vision: torch.Tensor, window: int, *, logn_window: int = 0, **kwargs) -> torch.Tensor:
    """SDPA over one prompt (batch of one) under ``page_window_mask``, queries log-length scaled as
    ``sdpa_packed_forward`` scales them; (batch, length, heads, head_dim). ``QUERY_BLOCK`` queries at a time, and a
    block's vision tokens only against the keys their mask can reach (the preamble and the ``window`` tokens before
    the block and in it): most of a long prompt is pages, so it costs about what ``window`` tokens of attention do."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    vision = vision.to(query.device)
    preamble = preamble_length(vision)
    out = query.new_empty(query.shape[0], query.shape[2], query.shape[1], query.shape[3])
    for first in range(0, query.shape[2], QUERY_BLOCK):
        last = min(first + QUERY_BLOCK, query.shape[2])
        block = scale_queries(query[:, :, first:last], first, logn_window)
        reach = torch.cat([torch.arange(preamble, device=query.device),
                           torch.arange(max(preamble, first - window + 1), last, device=query.device)])
        for rows, keys in ((vision[first:last].nonzero().flatten(), reach),
                           ((~vision[first:last]).nonzero().flatten(), torch.arange(last, device=query.device))):
            if len(rows):
                mask = page_window_mask(vision, first + rows, keys, window)[None, None]
                out[:, first + rows] = sdpa_attention_forward(module, block[:, :, rows], key[:, :, keys],
                                                              value[:, :, keys], mask, is_causal=False, **kwargs)[0]
    return out


def register() -> None:
    """Make ``attn_implementation="sdpa_packed"`` known to transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, sdpa_packed_forward)
