"""What a model family is: the one description every stage asks about a vision-language model.

A ``ModelFamily`` holds what differs between Qwen2-VL, Qwen2.5-VL and Qwen3-VL (and what a later family such
as Qwen3.5, GLM-4.xV or InternVL would have to state): the patch and merge size and the processor's default pixel
budget (token accounting), the special tokens and the chat layout (``mmprolong.template``), the transformers
classes and the presets built from a config, how a sample's position rows are made and how packed rows carry them
(``mmprolong.train.collate``), which attention kernels keep packed samples apart, which vision modules form the
projector (freezing), what the vision tower hands the language model (eval's feature cache) and what of it a
sequence-parallel rank keeps. Stages never test a family's name: they call its fields and methods.

Packed rows, as transformers 5.24 computes them exactly for every family here (float64 tests in
tests/models/test_packing_families.py): ``position_ids`` of 4 rows, row 0 the text positions restarting at
every sample (``create_causal_mask`` and the attention kernels read sample boundaries there, and only there),
rows 1-3 the sample's own mRoPE (t, h, w) positions; ``attention_mask=None``; ``use_cache=False`` (a cache,
which the configs default to even in train mode, silently turns packing detection off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from mmprolong import tokens

if TYPE_CHECKING:
    import torch

# mm_token_type_ids as transformers' Qwen-VL processors return them: 0 text, 1 image, 2 video.
TEXT_TYPE, IMAGE_TYPE, VIDEO_TYPE = 0, 1, 2


@dataclass(frozen=True)
class SpecialTokens:
    """The tokens of the chat layout and of an image in it."""

    image_pad: str = "<|image_pad|>"
    video_pad: str = "<|video_pad|>"
    vision_start: str = "<|vision_start|>"
    vision_end: str = "<|vision_end|>"
    turn_start: str = "<|im_start|>"
    turn_end: str = "<|im_end|>"  # closes every turn; the answer's last target and the eos of generation
    pad: str = "<|endoftext|>"


@dataclass(frozen=True)
class Preset:
    """A model built from a config (CPU tests, debug runs): the family's text and vision config fields.

    ``rope`` joins the text config's ``rope_parameters`` (with ``rope_type`` default and the base); the vision
    config gets the family's patch, merge and temporal patch sizes. Vocabulary and token ids come from the
    tokenizer.
    """

    text: Mapping[str, Any]
    vision: Mapping[str, Any]
    rope: Mapping[str, Any]
    description: str


class RopeIndex:
    """The model's own ``get_rope_index`` without its weights: holds only the model config, so it is cheap to copy
    into DataLoader workers. ``family.rope_index(model.config)(ids, types, grid)`` equals
    ``model.model.get_rope_index(ids, types, image_grid_thw=grid)[0]``."""

    def __init__(self, config, model_class: str):
        self.config = config
        self.model_class = model_class
        self._model = _import(model_class)

    def get_vision_position_ids(self, *args, **kwargs):  # get_rope_index calls it on self
        return self._model.get_vision_position_ids(self, *args, **kwargs)

    def __call__(self, input_ids: torch.Tensor, mm_token_type_ids: torch.Tensor, image_grid_thw: torch.Tensor | None,
                 video_grid_thw: torch.Tensor | None = None) -> torch.Tensor:
        """(3, batch, length) mRoPE positions of unpadded ``input_ids`` (batch, length)."""
        positions, _ = self._model.get_rope_index(self, input_ids, mm_token_type_ids, image_grid_thw=image_grid_thw,
                                                  video_grid_thw=video_grid_thw)
        return positions

    def __getstate__(self):
        return {"config": self.config, "model_class": self.model_class}

    def __setstate__(self, state):
        self.__init__(state["config"], state["model_class"])


@dataclass(frozen=True)
class ModelFamily:
    """One model family. Instances live in the family modules (``qwen2_5_vl.FAMILY``) and pickle by name."""

    name: str  # config.json's model_type; the value of the ``family`` config fields
    label: str  # for people: "Qwen2.5-VL"
    patch_size: int  # pixels a side of one vision patch
    merge_size: int  # patches merged per side into one language-model token
    temporal_patch_size: int
    min_pixels: int  # the default pixel budget (a checkpoint's preprocessor_config.json overrides it)
    max_pixels: int
    budget_source: str  # where the default budget comes from
    system_prompt: str | None  # the chat template's default system turn; None: no system turn
    rope_theta: float  # the released checkpoints' RoPE base and window (positions)
    max_positions: int
    config_class: str  # transformers classes, "module:Class"
    model_class: str
    base_model_class: str  # the class whose get_rope_index gives the mRoPE positions
    presets: Mapping[str, Preset]
    image_mean: tuple[float, ...] | None = None  # the processor's normalisation; None: the processor class's
    image_std: tuple[float, ...] | None = None
    llamafactory_template: str = "qwen2_vl"  # LLaMA-Factory's template of the same chat layout (synth export)
    tokens: SpecialTokens = field(default_factory=SpecialTokens)
    merger: tuple[str, ...] = ("merger",)  # children of the vision tower that project into the language model
    # attention kernels that keep a packed row's samples apart (see the module docstring): what training accepts.
    # sdpa and sdpa_packed equal the samples alone to float64 rounding; eager keeps them apart too but computes its
    # softmax in float32, so it matches only to float32 rounding (about 2e-7 on the tiny models)
    packed_attention: tuple[str, ...] = ("sdpa_packed", "sdpa", "flash_attention_2", "eager")

    def __reduce__(self):
        return (_family_by_name, (self.name,))

    # -- vision tokens ---------------------------------------------------------------------------------------

    @property
    def token_px(self) -> int:
        """Pixels a side of the image area one vision token covers."""
        return self.patch_size * self.merge_size

    def pixels_for_tokens(self, count: int) -> int:
        """A max_pixels that holds ``count`` vision tokens."""
        return count * self.token_px**2

    def image_tokens(self, height: int, width: int, *, min_pixels: int, max_pixels: int) -> int:
        """Image pad tokens of one ``height`` x ``width`` image at the budget, as the family's processor makes them."""
        return tokens.image_tokens(height, width, min_pixels=min_pixels, max_pixels=max_pixels,
                                   patch_size=self.patch_size, merge_size=self.merge_size)

    def grid_tokens(self, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Image pad tokens per row of an ``image_grid_thw`` (images, 3) tensor."""
        return image_grid_thw.prod(-1) // self.merge_size**2

    def check_pixel_budget(self, min_pixels: int, max_pixels: int) -> None:
        """ValueError unless the budget is ordered and holds one token."""
        tokens.check_pixel_budget(min_pixels, max_pixels, token_px=self.token_px)

    def image_processor(self, *, min_pixels: int | None = None, max_pixels: int | None = None):
        """The family's image processor on the PIL backend (no torchvision) at a pixel budget (default: the
        family's)."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        budget = (min_pixels or self.min_pixels, max_pixels or self.max_pixels)
        self.check_pixel_budget(*budget)
        norm = {k: list(v) for k, v in (("image_mean", self.image_mean), ("image_std", self.image_std)) if v}
        return Qwen2VLImageProcessorPil(min_pixels=budget[0], max_pixels=budget[1], patch_size=self.patch_size,
                                        merge_size=self.merge_size, temporal_patch_size=self.temporal_patch_size,
                                        **norm)

    def check_image_processor(self, processor) -> str | None:
        """Why ``processor`` does not make this family's patches, or None."""
        for name, expected in (("patch_size", self.patch_size), ("merge_size", self.merge_size)):
            if getattr(processor, name) != expected:
                return f"{name}={getattr(processor, name)}, {self.label} uses {expected}"
        return None

    # -- transformers classes and presets --------------------------------------------------------------------

    def config_type(self):
        return _import(self.config_class)

    def model_type(self):
        return _import(self.model_class)

    def preset_config(self, preset: str, tokenizer, *, rope_theta: float, max_positions: int):
        """The HF config of ``preset``; vocabulary and special token ids from ``tokenizer``, ``use_cache`` off."""
        spec = self.presets[preset]
        ids = self.token_ids(tokenizer)
        text = dict(spec.text, vocab_size=len(tokenizer), max_position_embeddings=max_positions,
                    rope_parameters={"rope_type": "default", "rope_theta": float(rope_theta), **spec.rope},
                    bos_token_id=None, eos_token_id=ids["turn_end"], pad_token_id=ids["pad"], use_cache=False)
        vision = dict(spec.vision, patch_size=self.patch_size, spatial_merge_size=self.merge_size,
                      temporal_patch_size=self.temporal_patch_size)
        return self.config_type()(
            text_config=text, vision_config=vision, image_token_id=ids["image_pad"], video_token_id=ids["video_pad"],
            vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
            tie_word_embeddings=False)

    def token_ids(self, tokenizer) -> dict[str, int]:
        """The special tokens' ids in ``tokenizer`` (``SpecialTokens`` field -> id)."""
        get = tokenizer.convert_tokens_to_ids
        return {name: get(token) for name, token in asdict(self.tokens).items()}

    def check_token_ids(self, config, tokenizer) -> str | None:
        """Why ``tokenizer`` cannot drive a model of ``config``, or None."""
        ids = self.token_ids(tokenizer)
        missing = [t for name, t in asdict(self.tokens).items() if ids[name] in (None, tokenizer.unk_token_id)]
        if missing:
            return f"the tokenizer lacks the {self.label} tokens {missing}"
        pairs = {"image_token_id": ids["image_pad"], "video_token_id": ids["video_pad"],
                 "vision_start_token_id": ids["vision_start"], "vision_end_token_id": ids["vision_end"]}
        wrong = {k: (getattr(config, k), v) for k, v in pairs.items() if getattr(config, k) != v}
        if wrong:
            return (f"tokenizer and model disagree on vision token ids (model, tokenizer): {wrong}; load the "
                    "tokenizer saved with the model")
        if len(tokenizer) > config.text_config.vocab_size:
            return (f"tokenizer has {len(tokenizer)} tokens, more than the model's vocabulary of "
                    f"{config.text_config.vocab_size}")
        return None

    # -- positions -------------------------------------------------------------------------------------------

    def rope_index(self, config) -> RopeIndex:
        return RopeIndex(config, self.base_model_class)

    def sample_positions(self, rope_index: RopeIndex, input_ids: torch.Tensor, mm_token_type_ids: torch.Tensor,
                         image_grid_thw: torch.Tensor | None, video_grid_thw: torch.Tensor | None = None
                         ) -> torch.Tensor:
        """(4, n) position rows of one sample of ``n`` tokens as a packed row carries them: row 0 the text
        positions 0..n-1, rows 1-3 the model's own mRoPE positions of the sample alone."""
        import torch

        mrope = rope_index(input_ids[None], mm_token_type_ids[None], image_grid_thw, video_grid_thw)[:, 0]
        return torch.cat([torch.arange(input_ids.numel(), dtype=mrope.dtype)[None], mrope])

    @staticmethod
    def unpacked_positions(positions: torch.Tensor) -> torch.Tensor:
        """The rows a padded batch passes with its attention mask: the mRoPE rows only."""
        return positions[1:]

    def mm_token_type_ids(self, input_ids: torch.Tensor, image_pad_id: int) -> torch.Tensor:
        """``mm_token_type_ids`` of image inputs (without them the model silently falls back to 1-D positions)."""
        return (input_ids == image_pad_id).long() * IMAGE_TYPE

    # -- what the vision tower hands the language model ------------------------------------------------------

    def image_feature_parts(self, output) -> list[tuple[torch.Tensor, ...]]:
        """Per image, the tensors of ``get_image_features``' output that stand in for its pixels."""
        return [(features,) for features in output.pooler_output]

    def image_encoder_output(self, parts: list[tuple[torch.Tensor, ...]]):
        """``mm_encoder_outputs["image"]`` for ``generate`` from per-image parts, in prompt order."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return BaseModelOutputWithPooling(pooler_output=tuple(p[0] for p in parts))

    def text_chunk(self, kwargs: dict, start: int, end: int) -> dict:
        """The language model's keyword inputs cut to a sequence-parallel rank's tokens [start, end)."""
        kwargs = dict(kwargs)
        kwargs["inputs_embeds"] = kwargs["inputs_embeds"][:, start:end]
        kwargs["position_ids"] = kwargs["position_ids"][..., start:end]
        return kwargs

    # -- modules -------------------------------------------------------------------------------------------

    def vision_parts(self, model) -> tuple[list, list]:
        """(vision encoder modules, projector modules) of a model of this family."""
        encoder, projector = [], []
        for name, module in model.model.visual.named_children():
            (projector if name in self.merger else encoder).append(module)
        return encoder, projector


def _import(path: str):
    module, name = path.split(":")
    return getattr(import_module(module), name)


def _family_by_name(name: str) -> ModelFamily:
    from mmprolong.models import get_family

    return get_family(name)
