"""transformers ``generate`` on CPU or GPU: the tiny preset or a local Qwen2.5-VL checkpoint.

One item per forward: ``input_ids`` from ``ChatTemplate.prompt_ids`` (the layout training used),
``pixel_values``/``image_grid_thw`` from the model's image processor, ``mm_token_type_ids`` (1 on image pads;
without it Qwen2.5-VL silently falls back to 1-D positions), greedy decoding, ``use_cache=True`` (safe here:
one unpacked sample per forward), stop at ``<|im_end|>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from mmprolong.errors import DataError
from mmprolong.eval.backends.base import Answer, GenerationSettings, SequentialBackend, template_parts
from mmprolong.eval.rope_scaling import RopeScaling, apply_rope_scaling
from mmprolong.template import ChatTemplate
from mmprolong.tokens import MERGE_SIZE

log = logging.getLogger(__name__)


def load_eval_model(cfg, rope: RopeScaling | None = None):
    """``(model, tokenizer, image_processor)`` for inference: ``cfg`` (a ``ModelConfig``) as ``load_model`` reads it,
    with ``rope`` applied to the config *before* the model is built, in eval mode without gradients.

    With ``rope`` none and the tiny preset, the weights equal ``build_tiny_model(seed=cfg.seed)``'s.
    """
    import torch

    from mmprolong.tokenizer import load_tokenizer
    from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
    from mmprolong.train import models

    rope = rope or RopeScaling()

    if cfg.path is None:
        from transformers import Qwen2_5_VLForConditionalGeneration

        tokenizer = load_tokenizer()
        config = models.tiny_config(tokenizer, rope_theta=cfg.rope_theta or models.QWEN25VL_ROPE_THETA,
                                    max_position_embeddings=cfg.max_position_embeddings
                                    or models.QWEN25VL_MAX_POSITIONS)
        apply_rope_scaling(config, rope)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = Qwen2_5_VLForConditionalGeneration._from_config(
                config, attn_implementation=cfg.attn_implementation, dtype=torch.float32)
        model = model.to(models.torch_dtype(cfg.dtype))
        image_processor = models.build_image_processor(min_pixels=cfg.min_pixels or DEFAULT_MIN_PIXELS,
                                                       max_pixels=cfg.max_pixels or DEFAULT_MAX_PIXELS)
    else:
        model = _load_checkpoint(cfg, rope)
        tokenizer = load_tokenizer(cfg.path)
        image_processor = models.load_image_processor(cfg.path, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
    models.check_token_ids(model, tokenizer)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer, image_processor


def _load_checkpoint(cfg, rope: RopeScaling):
    from mmprolong.train.models import checkpoint_config, load_checkpoint

    config = checkpoint_config(cfg)
    apply_rope_scaling(config, rope)  # before loading: the rotary buffers are built from the config
    return load_checkpoint(cfg, config)


def weights_fingerprint(model) -> str:
    """A hash of every parameter's name, shape and float64 sum: changes when the weights do (cache keys)."""
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, p in model.named_parameters():
            digest.update(f"{name}:{tuple(p.shape)}:{p.detach().double().sum().item():.10e};".encode())
    return digest.hexdigest()[:16]


class HFBackend(SequentialBackend):
    """Qwen2.5-VL through transformers. ``HFBackend.load(ModelConfig(...), rope=...)`` or ``HFBackend(model, ...)``."""

    name = "hf"

    def __init__(self, model, tokenizer, image_processor, *, label: str = "", rope: RopeScaling | None = None,
                 device: str | None = None):
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.template = ChatTemplate(tokenizer)
        self.rope = rope or RopeScaling()
        self._label = label or "model"
        self._identity: dict | None = None

    @classmethod
    def load(cls, cfg, *, rope: RopeScaling | None = None, label: str = "", device: str | None = None):
        model, tokenizer, image_processor = load_eval_model(cfg, rope)
        return cls(model, tokenizer, image_processor, label=label or cfg.path or f"tiny-seed{cfg.seed}", rope=rope,
                   device=device)

    def pixel_budget(self) -> tuple[int, int]:
        from mmprolong.train.models import pixel_budget

        return pixel_budget(self.image_processor)

    def label(self) -> str:
        return self._label

    def identity(self) -> dict:
        if self._identity is None:
            text = self.model.config.text_config
            self._identity = {
                "backend": self.name, "model": self._label, "weights": weights_fingerprint(self.model),
                "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
                "rope_parameters": json.loads(json.dumps(text.rope_parameters, default=str)),
                "max_position_embeddings": text.max_position_embeddings, "pixels": list(self.pixel_budget())}
        return self._identity

    def generate_one(self, item, loader, settings: GenerationSettings) -> Answer:
        import torch

        images = item.images
        ids = self.template.prompt_ids(template_parts(item))
        if len(ids) != item.prompt_tokens:
            raise DataError(f"the prompt encodes to {len(ids)} tokens but the item says {item.prompt_tokens}: "
                            "items were built with another tokenizer (rebuild them)")
        inputs = {}
        if images:
            processed = self.image_processor(images=loader.pil(images), return_tensors="pt")
            grid = processed["image_grid_thw"].long()
            made = (grid.prod(-1) // MERGE_SIZE**2).tolist()
            for image, count in zip(images, made):
                if count != image.vision_tokens:
                    raise DataError(f"image {image.key()}: the image processor makes {count} tokens, the item "
                                    f"counted {image.vision_tokens}; items were built with another pixel budget")
            inputs = {"pixel_values": processed["pixel_values"].to(self.device, self.model.dtype),
                      "image_grid_thw": grid.to(self.device)}
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                mm_token_type_ids=(input_ids == self.template.image_pad).long(), **inputs,
                max_new_tokens=settings.max_new_tokens, do_sample=False, use_cache=True,
                eos_token_id=self.template.im_end, pad_token_id=self.tokenizer.pad_token_id or self.template.im_end)
        new = out[0, len(ids):].tolist()
        if self.device == "cuda":
            torch.cuda.synchronize()
        seconds = round(time.perf_counter() - start, 4)
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Answer(text=text.strip(), seconds=seconds, output_tokens=len(new))

    def close(self) -> None:
        self.model = None
