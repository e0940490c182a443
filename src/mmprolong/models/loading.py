"""The model: a preset (a real model of its family built from a config) or a local checkpoint of a supported family.

    model, tokenizer, image_processor = load_model(ModelConfig(path="ckpt/Qwen3-VL-8B-Instruct", rope_theta=2e7,
                                                               dtype="bfloat16"))
    save_model(model, tokenizer, image_processor, "out/final")   # from_pretrained(out/final) reloads it offline

Everything is offline: ``from_pretrained(..., local_files_only=True, use_safetensors=True)``, no remote code,
and the image processor is the PIL one (``Qwen2VLImageProcessorPil``, which every supported family uses with its
own patch size), so torchvision is never needed.

Facts the trainer relies on (transformers 5.24, see /work/shared/STACK-NOTES.md):

- mRoPE's base lives in ``model.config.text_config.rope_parameters["rope_theta"]``; the rotary ``inv_freq``
  buffers are non-persistent and computed from it at construction, so a new base is applied by editing the
  config *before* the model is built (``edit_config`` hooks in there too: eval's RoPE scaling). A model built on
  the meta device and then ``to_empty``'d must recompute those buffers (``reset_rotary_buffers``).
- ``use_cache`` is switched off in the loaded model's configs: with a cache the model silently stops detecting
  packed rows (every training forward also passes ``use_cache=False``). Saved models have it on again, so
  ``generate()`` decodes with a KV cache by default.
- The vision tower's patch embedding (a Conv3d whose kernel is the patch) runs as a matmul
  (``models.patch_embed``): the same parameters and state dict, 5x faster on a CPU.
- ``ModelConfig.attn_logn_window`` is written into the text config as ``attn_logn_window`` (an extra attribute
  that config.json keeps); the ``sdpa_packed`` kernel reads it at every call (``models.attention``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from mmprolong.errors import ConfigError, DataError
from mmprolong.models.base import ModelFamily
from mmprolong.models.config import ModelConfig

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float64")


def torch_dtype(name: str):
    import torch

    if name not in DTYPES:
        raise ConfigError("dtype", name, f"expected one of {', '.join(DTYPES)}")
    return getattr(torch, name)


# --- build and load ---------------------------------------------------------------------------------------


def build_preset_model(tokenizer, preset: str = "tiny", *, seed: int, rope_theta: float | None = None,
                       max_position_embeddings: int | None = None, attn_implementation: str = "sdpa",
                       dtype: str = "float32", edit_config: Callable | None = None):
    """A real model of ``preset``'s family, initialised from ``seed``; vocabulary and token ids from ``tokenizer``.

    The global torch RNG is left as it was. Same tokenizer, preset and seed give identical weights.
    """
    import torch

    from mmprolong.models import family_of_preset

    family = family_of_preset(preset)
    register_attention(attn_implementation)
    config = family.preset_config(preset, tokenizer, rope_theta=rope_theta or family.rope_theta,
                                  max_positions=max_position_embeddings or family.max_positions)
    if edit_config is not None:
        edit_config(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = family.model_type()._from_config(config, attn_implementation=attn_implementation,
                                                 dtype=torch.float32)
    return model.to(torch_dtype(dtype))


def load_model(cfg: ModelConfig, *, edit_config: Callable | None = None):
    """``(model, tokenizer, image_processor)`` ready to train as ``cfg`` says: rope base and freezing applied, train
    mode, ``use_cache`` off. ``edit_config(hf_config)`` runs before the model is built.

    Raises ConfigError for a folder that is not a local checkpoint of a supported family and DataError when its
    tokenizer's vision token ids disagree with the model's.
    """
    family = cfg.resolve_family()
    if cfg.attn_implementation not in family.packed_attention:
        raise ConfigError("attn_implementation", cfg.attn_implementation, f"does not keep packed {family.label} "
                                                                          f"samples apart; use one of "
                                                                          f"{', '.join(family.packed_attention)}")
    model, tokenizer, image_processor = _build(cfg, edit_config)
    model.config.use_cache = False
    model.config.text_config.use_cache = False
    apply_freezing(model, train_vision=cfg.train_vision, train_merger=cfg.train_merger,
                   train_language=cfg.train_language)
    model.train()
    counts = parameter_counts(model)
    log.info("model %s (%s): %d parameters, %d trainable; rope_theta %g; pixels %d..%d", cfg.path or cfg.preset,
             model.config.model_type, counts["total"], counts["trainable"], rope_theta_of(model),
             *pixel_budget(image_processor))
    return model, tokenizer, image_processor


def load_for_inference(cfg: ModelConfig, *, edit_config: Callable | None = None):
    """``(model, tokenizer, image_processor)`` for generation: as ``load_model`` builds it, in eval mode without
    gradients. With the same preset, seed and no ``edit_config``, the weights equal ``load_model``'s."""
    model, tokenizer, image_processor = _build(cfg, edit_config)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer, image_processor


def _build(cfg: ModelConfig, edit_config: Callable | None):
    from mmprolong.tokenizer import load_tokenizer

    family = cfg.resolve_family()
    cfg.check_budget(family)
    if cfg.path is None:
        tokenizer = load_tokenizer()

        def edit(config):
            set_logn_window(config, cfg.attn_logn_window)
            if edit_config is not None:
                edit_config(config)

        model = build_preset_model(
            tokenizer, cfg.preset, seed=cfg.seed, rope_theta=cfg.rope_theta,
            max_position_embeddings=cfg.max_position_embeddings, attn_implementation=cfg.attn_implementation,
            dtype=cfg.dtype, edit_config=edit)
        image_processor = family.image_processor(min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
    else:
        config = checkpoint_config(cfg)
        if edit_config is not None:
            edit_config(config)
        model = load_checkpoint(cfg, config, family)
        tokenizer = load_tokenizer(cfg.path)
        image_processor = load_image_processor(cfg.path, family, min_pixels=cfg.min_pixels,
                                               max_pixels=cfg.max_pixels)
    problem = family.check_token_ids(model.config, tokenizer)
    if problem:
        raise DataError(problem)
    from mmprolong.models import attention
    from mmprolong.models.patch_embed import use_matmul_patch_embedding

    use_matmul_patch_embedding(model)

    window = logn_window(model.config)
    if window and cfg.attn_implementation != attention.NAME:
        raise ConfigError("attn_implementation", cfg.attn_implementation,
                          f"{cfg.path} uses log-length attention scaling ({attention.LOGN_ATTR}={window}), which "
                          f"only {attention.NAME} applies: set attn_implementation to {attention.NAME}")
    return model, tokenizer, image_processor


def set_logn_window(config, window: int | None) -> None:
    """Record ``ModelConfig.attn_logn_window`` in a model config's text config (``None`` keeps what is there)."""
    from mmprolong.models import attention

    if window is not None:
        setattr(config.text_config, attention.LOGN_ATTR, int(window))


def logn_window(config) -> int:
    """The log-length scaling window a model config records (0: off)."""
    from mmprolong.models import attention

    return int(getattr(config.text_config, attention.LOGN_ATTR, 0) or 0)


def checkpoint_config(cfg: ModelConfig):
    """The config of the checkpoint at ``cfg.path`` with ``cfg``'s RoPE base and positions applied.

    ConfigError for a folder that is not a local checkpoint of a supported family (nothing is downloaded)."""
    from transformers import AutoConfig

    cfg.resolve_family()
    config = AutoConfig.from_pretrained(str(cfg.path), local_files_only=True)
    if cfg.rope_theta is not None:
        config.text_config.rope_parameters["rope_theta"] = float(cfg.rope_theta)
    if cfg.max_position_embeddings is not None:
        config.text_config.max_position_embeddings = cfg.max_position_embeddings
    set_logn_window(config, cfg.attn_logn_window)
    return config


def load_checkpoint(cfg: ModelConfig, config, family: ModelFamily):
    """The weights at ``cfg.path`` loaded into ``config`` (safetensors only, no remote code)."""
    from transformers import AutoModelForImageTextToText

    register_attention(cfg.attn_implementation)
    model = AutoModelForImageTextToText.from_pretrained(
        str(cfg.path), config=config, local_files_only=True, use_safetensors=True,
        dtype=torch_dtype(cfg.dtype), attn_implementation=cfg.attn_implementation)
    if not isinstance(model, family.model_type()):
        raise ConfigError("path", cfg.path, f"loaded {type(model).__name__}, expected {family.model_class}")
    return model


def register_attention(name: str) -> None:
    """Kernels of our own (``models.attention``) are registered with transformers before a model asks for them."""
    from mmprolong.models import attention

    if name == attention.NAME:
        attention.register()


def load_image_processor(folder: str | Path, family: ModelFamily, *, min_pixels: int | None = None,
                         max_pixels: int | None = None):
    """The folder's image processor (preprocessor_config.json) on the PIL backend, pixel budget overridable; the
    family's default one (with the budget) when the folder has none. ConfigError when its patches are not the
    family's."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    path = Path(folder) / "preprocessor_config.json"
    if not path.is_file():
        return family.image_processor(min_pixels=min_pixels, max_pixels=max_pixels)
    overrides = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
    processor = Qwen2VLImageProcessorPil.from_pretrained(str(folder), local_files_only=True, **overrides)
    problem = family.check_image_processor(processor)
    if problem:
        raise ConfigError("path", str(folder), f"{path.name} has {problem}: it does not belong to this model")
    family.check_pixel_budget(*pixel_budget(processor))
    return processor


def pixel_budget(image_processor) -> tuple[int, int]:
    """(min_pixels, max_pixels) of an image processor."""
    size = image_processor.size
    get = size.get if isinstance(size, dict) else lambda k: getattr(size, k)
    return int(get("shortest_edge")), int(get("longest_edge"))


def model_pixel_budget(cfg: ModelConfig) -> tuple[ModelFamily, int, int]:
    """(family, min_pixels, max_pixels) the model of ``cfg`` sees images at, without loading its weights: what
    ingest renders pages at so the store's counts are the model's."""
    family = cfg.resolve_family()
    cfg.check_budget(family)
    if cfg.path is None:
        return family, cfg.min_pixels or family.min_pixels, cfg.max_pixels or family.max_pixels
    processor = load_image_processor(cfg.path, family, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
    return family, *pixel_budget(processor)


def save_model(model, tokenizer, image_processor, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Save a Hugging Face folder (safetensors, tokenizer, preprocessor_config.json) that
    ``AutoModelForImageTextToText.from_pretrained`` and ``load_model(ModelConfig(path=...))`` reload offline.

    Written to a temp folder beside ``out_dir`` and renamed into place, so a killed save leaves no half folder.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError("out_dir", str(out), "folder exists and is not empty: pass overwrite=True or a new folder")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with _cache_on(model):
        model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    image_processor.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


@contextlib.contextmanager
def _cache_on(model):
    """``use_cache`` on in the model's configs (and generation config) for the duration, as they were after."""
    configs = [model.config, model.config.text_config, getattr(model, "generation_config", None)]
    configs = [c for c in configs if c is not None]
    before = [c.use_cache for c in configs]
    for c in configs:
        c.use_cache = True
    try:
        yield
    finally:
        for c, value in zip(configs, before):
            c.use_cache = value


# --- freezing, inspection ---------------------------------------------------------------------------------


def apply_freezing(model, *, train_vision: bool, train_merger: bool, train_language: bool) -> None:
    """Set ``requires_grad`` per part: vision encoder (patch and position embeddings, blocks), projector (the
    family's mergers), language model + head.

    Gradients still flow *through* a frozen part to the trainable ones (e.g. through the language model into
    the vision tower).
    """
    from mmprolong.models import family_of_config

    encoder, projector = family_of_config(model.config).vision_parts(model)
    for module in encoder:
        module.requires_grad_(train_vision)
    for module in projector:
        module.requires_grad_(train_merger)
    model.model.language_model.requires_grad_(train_language)
    model.lm_head.requires_grad_(train_language)


def parameter_counts(model) -> dict[str, int]:
    """Total and trainable parameter counts."""
    params = list(model.parameters())
    return {"total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad)}


def rope_theta_of(model) -> float:
    """The mRoPE base the language model uses."""
    return float(model.config.text_config.rope_parameters["rope_theta"])


def reset_rotary_buffers(model) -> None:
    """Recompute the non-persistent rotary ``inv_freq`` buffers (text mRoPE and vision axial RoPE) from the
    configs: needed after building on the meta device and ``to_empty``, which leaves them uninitialised."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    for module in model.modules():
        if not (hasattr(module, "inv_freq") and hasattr(module, "rope_type")):
            continue
        if module.rope_type == "axial":
            init = module.compute_axial_rope_parameters
        elif module.rope_type == "default":
            init = module.compute_default_rope_parameters
        else:
            init = ROPE_INIT_FUNCTIONS[module.rope_type]
        inv_freq, module.attention_scaling = init(module.config)
        device = module.inv_freq.device
        module.inv_freq = inv_freq.to(device)
        module.original_inv_freq = inv_freq.clone().to(device)
