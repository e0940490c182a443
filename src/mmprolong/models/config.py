"""ModelConfig: which model (a preset built from a config, or a local checkpoint of a supported family), its RoPE
base, pixel budget, attention kernel and what of it is trainable. Train and eval share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmprolong.config import Config, field
from mmprolong.errors import ConfigError
from mmprolong.models import FAMILIES, PRESETS, family_of_checkpoint, family_of_preset, get_family
from mmprolong.models.base import ModelFamily

AUTO = "auto"


@dataclass(kw_only=True)
class ModelConfig(Config):
    """Which model to train (or evaluate) and what of it is trainable."""

    path: str | None = field(None, help="local checkpoint folder (config.json, *.safetensors, tokenizer, "
                                        "preprocessor_config.json) of a supported family; none: the preset")
    preset: str = field("tiny", help="model built from scratch when path is empty (CPU tests, debug): "
                                     + ", ".join(f"{name} ({f.label})" for name, f in PRESETS.items()))
    family: str = field(AUTO, help=f"model family: {', '.join(FAMILIES)}; auto: the checkpoint's config.json "
                                   "model_type, or the preset's. Set, it must agree with them")
    seed: int = field(0, help="initialisation seed of the preset (unused with a checkpoint)")
    rope_theta: float | None = field(None, help="new mRoPE base (paper: 1e6 -> 4e6); none keeps the model's")
    max_position_embeddings: int | None = field(None, help="positions recorded in the config (tokens); "
                                                           "none keeps the model's")
    train_vision: bool = field(True, help="train the vision encoder's patch embedding and blocks")
    train_merger: bool = field(True, help="train the vision-to-language projector (merger; Qwen3-VL: and its "
                                          "DeepStack mergers)")
    train_language: bool = field(True, help="train the language model (embeddings, decoder, lm_head)")
    attn_implementation: Literal["sdpa_packed", "sdpa", "eager", "flash_attention_2"] = field(
        "sdpa_packed", help="attention kernel. sdpa_packed: SDPA on each packed sample's own block (no L x L mask; "
                            "CPU or GPU); sdpa: SDPA with transformers' dense block-diagonal mask; "
                            "flash_attention_2: varlen kernel, needs a GPU and bfloat16")
    attn_logn_window: int | None = field(
        None, help="log-length attention scaling (Qwen-1's logn attention): a query at token i of its sample is "
                   "multiplied by max(1, ln(i+1)/ln(W)), so attention stays sharp past the W tokens the model was "
                   "trained at (set W to the starting point's window); recorded in the saved config.json and "
                   "applied by mmprolong's sdpa_packed kernel only (not vLLM or flash-attn). 0: off; none: the "
                   "checkpoint's setting (off for presets)")
    dtype: Literal["float32", "bfloat16", "float64"] = field(
        "float32", help="dtype the weights are loaded in (float32 + FSDP2 mixed precision is the usual choice)")
    min_pixels: int | None = field(None, help="fewest pixels of an image as the model sees it; none: the "
                                              "model's preprocessor_config.json, else the family's default")
    max_pixels: int | None = field(None, help="most pixels of an image as the model sees it; none: the model's "
                                              "preprocessor_config.json, else the family's default")

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError("preset", self.preset, f"unknown preset; known: {', '.join(PRESETS)}")
        if self.family != AUTO:
            get_family(self.family)
            if self.path is None and PRESETS[self.preset].name != self.family:
                raise ConfigError("family", self.family, f"preset {self.preset!r} is a {PRESETS[self.preset].name}; "
                                                         "set family to auto or choose a preset of that family "
                                                         f"({', '.join(get_family(self.family).presets) or 'none'})")
        if self.rope_theta is not None and self.rope_theta <= 0:
            raise ConfigError("rope_theta", self.rope_theta, "must be positive (the paper uses 4e6)")
        if self.max_position_embeddings is not None and self.max_position_embeddings <= 0:
            raise ConfigError("max_position_embeddings", self.max_position_embeddings, "must be positive")
        if not (self.train_vision or self.train_merger or self.train_language):
            raise ConfigError("train_language", False, "nothing would be trainable: set one of train_vision, "
                                                       "train_merger, train_language")
        if self.attn_logn_window is not None and self.attn_logn_window < 0:
            raise ConfigError("attn_logn_window", self.attn_logn_window, "must be 0 (off) or a window in tokens")
        if self.attn_logn_window and self.attn_implementation != "sdpa_packed":
            raise ConfigError("attn_logn_window", self.attn_logn_window, "log-length scaling runs in the "
                                                                         "sdpa_packed kernel: set "
                                                                         "attn_implementation to sdpa_packed")
        if self.attn_implementation == "flash_attention_2" and self.dtype == "float64":
            raise ConfigError("attn_implementation", self.attn_implementation,
                              "flash_attention_2 runs in bfloat16/float16: use sdpa with float64")
        for name in ("min_pixels", "max_pixels"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, value, "must be a positive number of pixels")
        if self.path is None or self.family != AUTO:  # the family is known without reading the checkpoint
            self.check_budget(self.known_family())

    def known_family(self) -> ModelFamily:
        """The family this config names: the explicit one, else the preset's (no checkpoint is read)."""
        return get_family(self.family) if self.family != AUTO else family_of_preset(self.preset)

    def resolve_family(self) -> ModelFamily:
        """The model's family: the checkpoint's (config.json), or the preset's; ConfigError if ``family`` disagrees."""
        if self.path is None:
            return self.known_family()
        found = family_of_checkpoint(self.path)
        if self.family != AUTO and found.name != self.family:
            raise ConfigError("family", self.family, f"{self.path} holds a {found.name} model: set family to "
                                                     f"{found.name} or auto")
        return found

    def check_budget(self, family: ModelFamily) -> None:
        """ConfigError unless the set pixel budget holds one of ``family``'s tokens and is ordered."""
        if self.max_pixels is not None and self.max_pixels < family.token_px**2:
            raise ConfigError("max_pixels", self.max_pixels, f"must be at least {family.token_px**2} (one "
                                                             f"{family.token_px}x{family.token_px} {family.label} "
                                                             "token)")
        if self.min_pixels is not None and self.max_pixels is not None:
            try:
                family.check_pixel_budget(self.min_pixels, self.max_pixels)
            except ValueError as exc:
                raise ConfigError("max_pixels", self.max_pixels, str(exc)) from None

