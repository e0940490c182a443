"""RoPE scaling at inference, applied to the model config before the model is built.

The paper evaluates beyond its 128K window with *no* scaling (the model as trained, base 4e6): that is
``rope_scaling="none"``, the default. MMLongBench offers YaRN for Qwen2.5-VL (factor 4 over 32,768 original
positions, mrope_section [16, 24, 24]); dynamic NTK is the other common choice.

How transformers 5.24 expresses it for every supported family: everything lives in ``text_config.rope_parameters``,
a dict holding ``rope_type``, ``rope_theta`` and ``mrope_section`` (ignored by the rope validator, read by the
family's text rotary embedding; Qwen3-VL's also carries ``mrope_interleaved``):

- YaRN: ``rope_type="yarn"``, ``factor``, ``original_max_position_embeddings``. Static: every position's
  frequencies change (low-frequency dimensions interpolated) and cos/sin are scaled by 0.1*ln(factor)+1.
- dynamic NTK: ``rope_type="dynamic"``, ``factor``; the base grows with the largest position id of the input
  once it passes ``max_position_embeddings``, which transformers uses as the original length, so that field is
  set to ``original_max_positions``. Inputs whose positions stay below it are computed exactly as unscaled.
- dynamic YaRN (``yarn-dynamic``; the YaRN paper's "Dynamic Scaling", section 3.3): the model loads unscaled and
  each input of ``n`` tokens past the model's window of ``W`` tokens is computed with YaRN of factor ``n / W``
  over its positions divided by that factor, what ``W`` of its tokens span (``yarn_for_input``): exactly as a model
  loaded with that static YaRN, and an input inside the window exactly as unscaled. The window is given in tokens
  because a page image spans far fewer mRoPE positions than tokens, and YaRN's original length is counted in
  positions: on the quickstart's pages 4,096 tokens span about 520 positions, and YaRN over 4,096 positions barely
  acts (after LongPT at 8K 56% of the needles, dynamic 84%; benchmarks/results/niah-yarn-static.json).

``rope_theta``, ``mrope_section`` and ``mrope_interleaved`` are kept; no other config field changes. Note that
mRoPE positions grow by max(grid h, w)/2 per image, not by its token count, so a 128K-token input of page images
spans far fewer positions than 128K: scaling acts on positions, lengths are counted in tokens.

The rotary ``inv_freq`` buffers are computed from the config when the model is constructed, which is why the
config is edited before loading (see ``mmprolong.eval.backends.hf.load_eval_model``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from mmprolong.errors import ConfigError

KINDS = ("none", "yarn", "dynamic", "yarn-dynamic")


@dataclass(frozen=True)
class RopeScaling:
    kind: str = "none"  # none | yarn | dynamic | yarn-dynamic
    factor: float = 4.0
    original_max_positions: int = 32768
    window: int = 0  # yarn-dynamic: the model's window, tokens (factor and original_max_positions unused)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError("rope_scaling", self.kind, f"expected one of {', '.join(KINDS)}")
        if self.kind != "none" and self.factor < 1:
            raise ConfigError("rope_factor", self.factor, "expected a factor >= 1")
        if self.kind != "none" and self.original_max_positions < 1:
            raise ConfigError("original_max_positions", self.original_max_positions, "expected positions >= 1")
        if self.kind == "yarn-dynamic" and self.window < 1:
            raise ConfigError("rope_window", self.window, "yarn-dynamic needs the model's window in tokens (>= 1)")

    @property
    def per_input(self) -> bool:
        """Whether the backend scales each input itself (the model loads unscaled)."""
        return self.kind == "yarn-dynamic"

    @classmethod
    def from_config(cls, config) -> RopeScaling:
        return cls(config.rope_scaling, float(config.rope_factor), int(config.original_max_positions),
                   int(config.rope_window))

    def describe(self) -> dict:
        if self.kind == "none":
            return {"kind": "none"}
        if self.per_input:
            return {"kind": self.kind, "window": self.window}
        return {"kind": self.kind, "factor": self.factor, "original_max_positions": self.original_max_positions}


def apply_rope_scaling(config, scaling: RopeScaling) -> dict:
    """Edit a model config (or its text config) in place; returns the new ``rope_parameters``.

    Call before the model is constructed. ``none`` and ``yarn-dynamic`` (applied per input) leave it untouched.
    """
    text = getattr(config, "text_config", config)
    params = dict(text.rope_parameters or {})
    if scaling.kind == "none" or scaling.per_input:
        return params
    if "rope_theta" not in params:
        raise ConfigError("rope_scaling", scaling.kind, "the model config has no rope_parameters.rope_theta")
    keep = {k: params[k] for k in ("rope_theta", "mrope_section", "mrope_interleaved") if k in params}
    if scaling.kind == "yarn":
        new = {**keep, "rope_type": "yarn", "factor": float(scaling.factor),
               "original_max_position_embeddings": int(scaling.original_max_positions)}
    else:
        new = {**keep, "rope_type": "dynamic", "factor": float(scaling.factor)}
        text.max_position_embeddings = int(scaling.original_max_positions)
    text.rope_parameters = new
    return dict(new)


def yarn_for_input(scaling: RopeScaling, tokens: int, positions: int) -> RopeScaling | None:
    """The static YaRN that ``yarn-dynamic`` computes an input of ``tokens`` tokens spanning ``positions`` mRoPE
    positions with: factor tokens / window over the positions a window's worth of its tokens spans; None inside
    the window (the model as trained)."""
    factor = tokens / scaling.window
    if factor <= 1:
        return None
    return RopeScaling("yarn", factor, max(1, math.ceil(positions / factor)))


def yarn_frequencies(config, scaling: RopeScaling):
    """``(inv_freq, attention_scaling)`` of the text rotary embedding a model built from ``config`` with static
    ``scaling`` (a yarn one) has; ``config`` is not changed."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaled = copy.deepcopy(config)
    apply_rope_scaling(scaled, scaling)
    return ROPE_INIT_FUNCTIONS["yarn"](getattr(scaled, "text_config", scaled))
