"""Backends: transformers (``hf``), vLLM offline (``vllm``, GPU, optional) and OpenAI-compatible HTTP (``openai``).

``make_backend(model, config)`` builds the one ``EvalConfig.backend`` names; heavy imports stay inside.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmprolong.errors import ConfigError
from mmprolong.eval.backends.base import (
    Answer,
    AnswerCache,
    Backend,
    BackendError,
    GenerationSettings,
    SequentialBackend,
    template_parts,
)

__all__ = ["Answer", "AnswerCache", "Backend", "BackendError", "GenerationSettings", "SequentialBackend",
           "counting_family", "make_backend", "template_parts"]


def counting_family(config, model_path: str | None = None):
    """The family items are laid out and counted for when the backend does not know its model's (an endpoint):
    ``config.family``, else the family of the tokenizer's (or model's) folder when it is a checkpoint, else the
    store's, else the default."""
    from pathlib import Path

    from mmprolong.models import DEFAULT_FAMILY, family_of_checkpoint, get_family
    from mmprolong.synth.store import read_store_summary, store_family

    if config.family != "auto":
        return get_family(config.family)
    folder = config.tokenizer or model_path
    if folder and (Path(folder) / "config.json").is_file():
        return family_of_checkpoint(folder, field="tokenizer")
    if config.store_dir and (Path(config.store_dir) / "summary.json").is_file():
        return store_family(read_store_summary(config.store_dir))
    return DEFAULT_FAMILY


def checkpoint_logn_window(path: str) -> int:
    """The log-length attention window a checkpoint's config.json records (0: none)."""
    from mmprolong.models.attention import LOGN_ATTR

    config = json.loads((Path(path) / "config.json").read_text())
    return int(config.get("text_config", {}).get(LOGN_ATTR) or 0)


def make_backend(model, config, *, api_key: str | None = None, vision_features=None) -> Backend:
    """A Backend from ``model`` (a ModelConfig, a checkpoint folder, or None for the tiny preset) and ``config``.

    ``vision_features``: a ``FeatureCache`` the hf backend shares with other evaluations (``HFBackend``); the
    vllm and openai backends encode images where they run and take none."""
    from mmprolong.eval.rope_scaling import RopeScaling
    from mmprolong.models.config import ModelConfig

    rope = RopeScaling.from_config(config)
    if isinstance(model, str) or model is None:
        model = ModelConfig(path=model)
    if vision_features is not None and config.backend != "hf":
        raise ConfigError("backend", config.backend, "shares vision features only with backend hf")
    if config.backend == "openai":
        from mmprolong.eval.backends.openai import OpenAIBackend

        if rope.kind != "none":
            raise ConfigError("rope_scaling", config.rope_scaling, "an endpoint's RoPE is set where it is served "
                                                                   "(e.g. vllm serve --hf-overrides)")
        if not config.api_model:
            raise ConfigError("api_model", config.api_model, "name the model the endpoint serves")
        return OpenAIBackend(config.base_url, config.api_model, api_key=api_key, timeout_s=config.timeout_s,
                             retries=config.retries, concurrency=config.concurrency,
                             max_model_len=config.max_model_len if config.max_model_len > 0 else None,
                             family=counting_family(config, getattr(model, "path", None)))
    if not isinstance(model, ModelConfig):
        raise ConfigError("model", model, "give a ModelConfig, a local checkpoint folder, or a Backend")
    if config.backend == "vllm":
        from mmprolong.eval.backends.vllm import VLLMBackend

        if model.path is None:
            raise ConfigError("backend", "vllm", "vLLM needs a checkpoint folder; the tiny preset runs with hf")
        if checkpoint_logn_window(model.path):
            raise ConfigError("backend", "vllm", f"{model.path} was trained with log-length attention scaling "
                                                 "(attn_logn_window), which vLLM does not apply: use backend hf")
        if config.max_model_len <= 0 or config.min_pixels is None or config.max_pixels is None:
            raise ConfigError("max_model_len", config.max_model_len, "vllm needs max_model_len, min_pixels and "
                                                                     "max_pixels set")
        return VLLMBackend(model.path, max_model_len=config.max_model_len, min_pixels=config.min_pixels,
                           max_pixels=config.max_pixels, rope=rope)
    import dataclasses

    from mmprolong.eval.backends.hf import HFBackend

    overrides = {k: getattr(config, k) for k in ("min_pixels", "max_pixels", "attn_logn_window")
              if getattr(config, k) is not None and getattr(model, k) is None}
    if config.family != "auto" and model.family == "auto":  # checked against the model's when it loads
        overrides["family"] = config.family
    # the backend is named by its model; config.label only renames it in tables and plots, so a new display
    # name does not change the run's fingerprint (and its cached answers stay valid)
    return HFBackend.load(dataclasses.replace(model, **overrides), rope=rope, features=vision_features,
                          page_window=config.attn_page_window)
