"""The model: the tiny preset (a real Qwen2.5-VL built from a config) or a local Qwen2.5-VL checkpoint.

    model, tokenizer, image_processor = load_model(ModelConfig(path="ckpt/Qwen2.5-VL-7B-Instruct",
                                                               rope_theta=4e6, dtype="bfloat16"))
    save_model(model, tokenizer, image_processor, "out/final")   # from_pretrained(out/final) reloads it offline

Everything is offline: ``from_pretrained(..., local_files_only=True, use_safetensors=True)``, no remote code,
and the image processor is the PIL one (``Qwen2VLImageProcessorPil``), so torchvision is never needed.

Facts the trainer relies on (transformers 5.24, see /work/shared/STACK-NOTES.md):

- mRoPE's base lives in ``model.config.text_config.rope_parameters["rope_theta"]``; the rotary ``inv_freq``
  buffers are non-persistent and computed from it at construction, so a new base is applied by editing the
  config *before* the model is built (``load_model`` does). A model built on the meta device and then
  ``to_empty``'d must recompute those buffers (``reset_rotary_buffers``).
- ``use_cache`` is switched off in the loaded model's configs: with a cache the model silently stops detecting
  packed rows (every training forward also passes ``use_cache=False``). Saved models have it on again, so
  ``generate()`` decodes with a KV cache by default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mmprolong.config import Config, field
from mmprolong.errors import ConfigError, DataError
from mmprolong.tokens import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    FACTOR,
    MERGE_SIZE,
    PATCH_SIZE,
    check_pixel_budget,
)

if TYPE_CHECKING:
    import torch

    from mmprolong.train.collate import Batch

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float64")
# The tiny preset: a few hundred thousand parameters with the shipped tokenizer; runs forward+backward on CPU.
TINY_TEXT = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6)
TINY_MROPE_SECTION = [4, 6, 6]  # temporal, height, width: sums to head_dim / 2
TINY_VISION = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=128,
                   spatial_merge_size=MERGE_SIZE, patch_size=PATCH_SIZE, temporal_patch_size=2,
                   window_size=56, fullatt_block_indexes=[1])
# The mini preset: the architecture of the quickstart's starting point (mmprolong.startpoint): about 2.5M parameters,
# as large as a 2-core CPU can train to read and still evaluate at 16K tokens within the quickstart's minutes.
MINI_TEXT = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6)
MINI_VISION = dict(depth=3, hidden_size=128, intermediate_size=256, num_heads=4, out_hidden_size=128,
                   spatial_merge_size=MERGE_SIZE, patch_size=PATCH_SIZE, temporal_patch_size=2, window_size=112,
                   fullatt_block_indexes=[2])
PRESETS = {"tiny": (TINY_TEXT, TINY_MROPE_SECTION, TINY_VISION), "mini": (MINI_TEXT, TINY_MROPE_SECTION, MINI_VISION)}
QWEN25VL_ROPE_THETA = 1_000_000.0
QWEN25VL_MAX_POSITIONS = 32_768


@dataclass(kw_only=True)
class ModelConfig(Config):
    """Which model to train and what of it is trainable."""

    path: str | None = field(None, help="local Qwen2.5-VL checkpoint folder (config.json, *.safetensors, "
                                        "tokenizer, preprocessor_config.json); none: the tiny preset")
    preset: Literal["tiny", "mini"] = field(
        "tiny", help="model built from scratch when path is empty: tiny (1.1M parameters: CPU tests, debug) or mini "
                     "(2.5M: the quickstart starting point's architecture)")
    seed: int = field(0, help="initialisation seed of a preset (unused with a checkpoint)")
    rope_theta: float | None = field(None, help="new mRoPE base (paper: 1e6 -> 4e6); none keeps the model's")
    max_position_embeddings: int | None = field(None, help="positions recorded in the config (tokens); "
                                                           "none keeps the model's")
    train_vision: bool = field(True, help="train the vision encoder's patch embedding and blocks")
    train_merger: bool = field(True, help="train the vision-to-language merger (projector)")
    train_language: bool = field(True, help="train the language model (embeddings, decoder, lm_head)")
    attn_implementation: Literal["sdpa_packed", "sdpa", "eager", "flash_attention_2"] = field(
        "sdpa_packed", help="attention kernel. sdpa_packed: SDPA on each packed sample's own block (no L x L mask; "
                            "CPU or GPU); sdpa: SDPA with transformers' dense block-diagonal mask; "
                            "flash_attention_2: varlen kernel, needs a GPU and bfloat16")
    dtype: Literal["float32", "bfloat16", "float64"] = field(
        "float32", help="dtype the weights are loaded in (float32 + FSDP2 mixed precision is the usual choice)")
    min_pixels: int | None = field(None, help="fewest pixels of an image as the model sees it; none: the "
                                              "model's preprocessor_config.json, else 56*56")
    max_pixels: int | None = field(None, help="most pixels of an image as the model sees it; none: the model's "
                                              "preprocessor_config.json, else 28*28*1280")

    def validate(self) -> None:
        if self.rope_theta is not None and self.rope_theta <= 0:
            raise ConfigError("rope_theta", self.rope_theta, "must be positive (the paper uses 4e6)")
        if self.max_position_embeddings is not None and self.max_position_embeddings <= 0:
            raise ConfigError("max_position_embeddings", self.max_position_embeddings, "must be positive")
        if not (self.train_vision or self.train_merger or self.train_language):
            raise ConfigError("train_language", False, "nothing would be trainable: set one of train_vision, "
                                                       "train_merger, train_language")
        if self.attn_implementation == "flash_attention_2" and self.dtype == "float64":
            raise ConfigError("attn_implementation", self.attn_implementation,
                              "flash_attention_2 runs in bfloat16/float16: use sdpa with float64")
        for name in ("min_pixels", "max_pixels"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, value, "must be a positive number of pixels")
        if self.max_pixels is not None and self.max_pixels < FACTOR * FACTOR:
            raise ConfigError("max_pixels", self.max_pixels, f"must be at least {FACTOR * FACTOR} (one 28x28 token)")
        if self.min_pixels is not None and self.max_pixels is not None:
            try:
                check_pixel_budget(self.min_pixels, self.max_pixels)
            except ValueError as exc:
                raise ConfigError("max_pixels", self.max_pixels, str(exc)) from None


def torch_dtype(name: str) -> "torch.dtype":
    import torch

    if name not in DTYPES:
        raise ConfigError("dtype", name, f"expected one of {', '.join(DTYPES)}")
    return getattr(torch, name)


# --- build and load ---------------------------------------------------------------------------------------


def tiny_config(tokenizer, *, preset: str = "tiny", rope_theta: float = QWEN25VL_ROPE_THETA,
                max_position_embeddings: int = QWEN25VL_MAX_POSITIONS):
    """A preset's ``Qwen2_5_VLConfig``; vocabulary size and special token ids come from ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    text_sizes, mrope_section, vision = PRESETS[preset]
    ids = _special_token_ids(tokenizer)
    text = dict(text_sizes, vocab_size=len(tokenizer), max_position_embeddings=max_position_embeddings,
                rope_parameters={"rope_type": "default", "rope_theta": float(rope_theta),
                                 "mrope_section": list(mrope_section)},
                bos_token_id=None, eos_token_id=ids["eos"], pad_token_id=ids["pad"], use_cache=False)
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=dict(vision), image_token_id=ids["image"],
        video_token_id=ids["video"], vision_start_token_id=ids["vision_start"],
        vision_end_token_id=ids["vision_end"], tie_word_embeddings=False)


def build_tiny_model(tokenizer, *, seed: int, preset: str = "tiny", rope_theta: float = QWEN25VL_ROPE_THETA,
                     max_position_embeddings: int = QWEN25VL_MAX_POSITIONS, attn_implementation: str = "sdpa",
                     dtype: str = "float32"):
    """A real ``Qwen2_5_VLForConditionalGeneration`` of a preset, initialised from ``seed``.

    The global torch RNG is left as it was. Same tokenizer and seed give identical weights.
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    register_attention(attn_implementation)
    config = tiny_config(tokenizer, preset=preset, rope_theta=rope_theta,
                         max_position_embeddings=max_position_embeddings)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration._from_config(
            config, attn_implementation=attn_implementation, dtype=torch.float32)
    return model.to(torch_dtype(dtype))


def load_model(cfg: ModelConfig):
    """``(model, tokenizer, image_processor)`` as ``cfg`` says: rope base applied, freezing applied.

    The model is in train mode with ``use_cache`` off. Raises ConfigError for a folder that is not a local
    Qwen2.5-VL checkpoint and DataError when its tokenizer's vision token ids disagree with the model's.
    """
    from mmprolong.tokenizer import load_tokenizer

    if cfg.path is None:
        tokenizer = load_tokenizer()
        model = build_tiny_model(
            tokenizer, seed=cfg.seed, preset=cfg.preset, rope_theta=cfg.rope_theta or QWEN25VL_ROPE_THETA,
            max_position_embeddings=cfg.max_position_embeddings or QWEN25VL_MAX_POSITIONS,
            attn_implementation=cfg.attn_implementation, dtype=cfg.dtype)
        image_processor = build_image_processor(min_pixels=cfg.min_pixels or DEFAULT_MIN_PIXELS,
                                                max_pixels=cfg.max_pixels or DEFAULT_MAX_PIXELS)
    else:
        model = _load_checkpoint(cfg)
        tokenizer = load_tokenizer(cfg.path)
        image_processor = load_image_processor(cfg.path, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
    check_token_ids(model, tokenizer)
    model.config.use_cache = False
    model.config.text_config.use_cache = False
    apply_freezing(model, train_vision=cfg.train_vision, train_merger=cfg.train_merger,
                   train_language=cfg.train_language)
    model.train()
    counts = parameter_counts(model)
    log.info("model %s: %d parameters, %d trainable; rope_theta %g; pixels %d..%d", cfg.path or cfg.preset,
             counts["total"], counts["trainable"], rope_theta_of(model), *pixel_budget(image_processor))
    return model, tokenizer, image_processor


def _load_checkpoint(cfg: ModelConfig):
    config = checkpoint_config(cfg)
    config.use_cache = False
    config.text_config.use_cache = False
    return load_checkpoint(cfg, config)


def checkpoint_config(cfg: ModelConfig):
    """The config of the checkpoint at ``cfg.path`` with ``cfg``'s RoPE base and positions applied.

    ConfigError for a folder that is not a local Qwen2.5-VL checkpoint (nothing is downloaded)."""
    from transformers import AutoConfig

    folder = Path(cfg.path)
    if not (folder / "config.json").is_file():
        raise ConfigError("path", cfg.path, "not a model folder: no config.json (give a local Qwen2.5-VL "
                                            "checkpoint; nothing is downloaded)")
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    if config.model_type != "qwen2_5_vl":
        raise ConfigError("path", cfg.path, f"model_type is {config.model_type!r}; mmprolong supports qwen2_5_vl")
    if cfg.rope_theta is not None:
        config.text_config.rope_parameters["rope_theta"] = float(cfg.rope_theta)
    if cfg.max_position_embeddings is not None:
        config.text_config.max_position_embeddings = cfg.max_position_embeddings
    return config


def load_checkpoint(cfg: ModelConfig, config):
    """The weights at ``cfg.path`` loaded into ``config`` (safetensors only, no remote code)."""
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLForConditionalGeneration

    register_attention(cfg.attn_implementation)
    model = AutoModelForImageTextToText.from_pretrained(
        str(cfg.path), config=config, local_files_only=True, use_safetensors=True,
        dtype=torch_dtype(cfg.dtype), attn_implementation=cfg.attn_implementation)
    if not isinstance(model, Qwen2_5_VLForConditionalGeneration):
        raise ConfigError("path", cfg.path, f"loaded {type(model).__name__}, expected "
                                            "Qwen2_5_VLForConditionalGeneration")
    return model


def register_attention(name: str) -> None:
    """Kernels of our own (``train.attention``) are registered with transformers before a model asks for them."""
    from mmprolong.train import attention

    if name == attention.NAME:
        attention.register()


def build_image_processor(*, min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Qwen2.5-VL's image processor (PIL backend, no torchvision) with the given pixel budget."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    check_pixel_budget(min_pixels, max_pixels)
    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=PATCH_SIZE,
                                    merge_size=MERGE_SIZE, temporal_patch_size=2)


def load_image_processor(folder: str | Path, *, min_pixels: int | None = None, max_pixels: int | None = None):
    """The folder's image processor (preprocessor_config.json) on the PIL backend, pixel budget overridable;
    the default one (with the budget) when the folder has none."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    path = Path(folder) / "preprocessor_config.json"
    if not path.is_file():
        return build_image_processor(min_pixels=min_pixels or DEFAULT_MIN_PIXELS,
                                     max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    overrides = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
    processor = Qwen2VLImageProcessorPil.from_pretrained(str(folder), local_files_only=True, **overrides)
    for name, expected in (("patch_size", PATCH_SIZE), ("merge_size", MERGE_SIZE)):
        if getattr(processor, name) != expected:
            raise ConfigError("path", str(folder), f"{path.name} has {name}={getattr(processor, name)}; "
                                                   f"mmprolong's token accounting assumes {expected}")
    check_pixel_budget(*pixel_budget(processor))
    return processor


def pixel_budget(image_processor) -> tuple[int, int]:
    """(min_pixels, max_pixels) of an image processor."""
    size = image_processor.size
    get = size.get if isinstance(size, dict) else lambda k: getattr(size, k)
    return int(get("shortest_edge")), int(get("longest_edge"))


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
    """Set ``requires_grad`` per part: vision encoder (patch embedding + blocks), merger, language model + head.

    Gradients still flow *through* a frozen part to the trainable ones (e.g. through the language model into
    the vision tower).
    """
    visual = model.model.visual
    for name, module in visual.named_children():
        module.requires_grad_(train_merger if name == "merger" else train_vision)
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


def check_token_ids(model, tokenizer) -> None:
    """Raise DataError unless the tokenizer's vision tokens are the ids the model's config expects."""
    config = model.config
    ids = _special_token_ids(tokenizer)
    pairs = {"image_token_id": ids["image"], "video_token_id": ids["video"],
             "vision_start_token_id": ids["vision_start"], "vision_end_token_id": ids["vision_end"]}
    wrong = {k: (getattr(config, k), v) for k, v in pairs.items() if getattr(config, k) != v}
    if wrong:
        raise DataError(f"tokenizer and model disagree on vision token ids (model, tokenizer): {wrong}; "
                        "load the tokenizer saved with the model")
    if len(tokenizer) > config.text_config.vocab_size:
        raise DataError(f"tokenizer has {len(tokenizer)} tokens, more than the model's vocabulary of "
                        f"{config.text_config.vocab_size}")


def _special_token_ids(tokenizer) -> dict[str, int]:
    get = tokenizer.convert_tokens_to_ids
    return {"image": get("<|image_pad|>"), "video": get("<|video_pad|>"), "vision_start": get("<|vision_start|>"),
            "vision_end": get("<|vision_end|>"), "eos": get("<|im_end|>"), "pad": get("<|endoftext|>")}


# --- loss -------------------------------------------------------------------------------------------------


def answer_loss_sum(model, batch: "Batch") -> tuple["torch.Tensor", "torch.Tensor"]:
    """(sum of cross-entropy over the batch's target tokens, number of target tokens), as 0-d tensors.

    Projects only the hidden states that predict a target onto the vocabulary (``logits_to_keep`` mask), so a
    128K-token row never materialises 128K x vocab logits. Divide the all-reduced sum by the all-reduced count
    to average over the global batch. Equals HF's ``model(**inputs, labels=...).loss * count``.
    """
    import torch
    import torch.nn.functional as F

    inputs = batch.model_inputs(labels=False)
    keep = batch.logits_mask()
    logits = model(**inputs, logits_to_keep=keep.to(inputs["input_ids"].device)).logits
    targets = batch.target_ids().to(logits.device)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # float32 at least, float64 kept
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, reduction="sum")
    return loss, targets.new_tensor(targets.numel())
