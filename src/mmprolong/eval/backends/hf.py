"""transformers ``generate`` on CPU or GPU: a preset or a local checkpoint of any supported family.

One item per forward: ``input_ids`` from ``ChatTemplate.prompt_ids`` (the layout training used, in the model's
family's chat layout), ``image_grid_thw`` from the model's image processor, ``mm_token_type_ids`` (1 on image pads;
without it the model silently falls back to 1-D positions), greedy decoding, ``use_cache=True`` (safe here: one
unpacked sample per forward), stop at ``<|im_end|>``.

The vision tower runs once per distinct image: what it hands the language model for that image (the merged
tokens; for Qwen3-VL also one DeepStack tensor per DeepStack block: ``ModelFamily.image_feature_parts``) is kept
in an LRU cache bounded in bytes and handed to ``generate`` as ``mm_encoder_outputs``, which transformers 5.x
accepts in place of ``pixel_values``. Items of a grid share their haystack pages (with per-length haystacks every
depth at a length uses the same documents; per item, the store's pages recur among the items), so the vision tower,
and the image processor before it, run a fraction of the times they would.
Backends built with one ``features`` cache share it: entries are keyed by the vision tower's fingerprint (every
byte of its weights, its config, dtype and device, and the image processor's settings), so a model whose tower
LongPT kept frozen reuses what its starting point's evaluation encoded, and a different tower never does.
An image encoded alone equals the same image encoded in a batch up to float rounding (each image attends only
to itself).

``page_window`` P > 0 runs each prompt with page-local attention (``models.attention.page_window``: in the language
model a vision token attends only to the prompt's preamble and the last P tokens); part of the backend's identity,
so answers cached without it are not reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from mmprolong.errors import ConfigError, DataError
from mmprolong.eval.backends.base import Answer, GenerationSettings, SequentialBackend, template_parts
from mmprolong.eval.rope_scaling import RopeScaling, apply_rope_scaling, yarn_for_input, yarn_frequencies
from mmprolong.models import family_of_config
from mmprolong.models.features import FeatureCache
from mmprolong.models.loading import logn_window
from mmprolong.template import ChatTemplate

log = logging.getLogger(__name__)

VISION_CACHE_BYTES = 2 << 30  # vision features kept between items (a 7B model's 1,280-token page: 9 MB in bf16)


def load_eval_model(cfg, rope: RopeScaling | None = None):
    """``(model, tokenizer, image_processor)`` for inference: ``cfg`` (a ``ModelConfig``) as ``load_model`` reads it,
    with ``rope`` applied to the config *before* the model is built, in eval mode without gradients.

    With ``rope`` none and a preset, the weights equal ``build_preset_model(seed=cfg.seed)``'s.
    """
    from mmprolong.models.loading import load_for_inference

    rope = rope or RopeScaling()
    return load_for_inference(cfg, edit_config=lambda config: apply_rope_scaling(config, rope))


def weights_fingerprint(model) -> str:
    """A hash of every parameter's name, shape and float64 sum: changes when the weights do (cache keys)."""
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, p in model.named_parameters():
            digest.update(f"{name}:{tuple(p.shape)}:{p.detach().double().sum().item():.10e};".encode())
    return digest.hexdigest()[:16]


def vision_fingerprint(model, image_processor) -> str:
    """A hash of what decides the features an image gets: the vision tower's parameters and buffers (every
    byte), its config, their dtype and device, and the image processor's settings."""
    import torch

    digest = hashlib.sha256()
    visual = model.model.visual
    digest.update(model.config.vision_config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(image_processor.to_dict(), sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, tensor in visual.state_dict().items():
            digest.update(f"{name}:{tensor.dtype}:{tensor.device.type}:{tuple(tensor.shape)};".encode())
            digest.update(tensor.detach().contiguous().view(-1).view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


class HFBackend(SequentialBackend):
    """A model through transformers. ``HFBackend.load(ModelConfig(...), rope=...)`` or ``HFBackend(model, ...)``.

    ``features``: a ``FeatureCache`` to share with other backends (see the module's docstring); by default each
    backend keeps its own and clears it on ``close``."""

    name = "hf"

    def __init__(self, model, tokenizer, image_processor, *, label: str = "", rope: RopeScaling | None = None,
                 device: str | None = None, features: FeatureCache | None = None, page_window: int = 0):
        import torch

        from mmprolong.models import attention

        if page_window and model.config.text_config._attn_implementation != attention.NAME:
            raise ConfigError("attn_page_window", page_window, f"page-local attention runs in the {attention.NAME} "
                                                               "kernel; load the model with it")

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.family = family_of_config(model.config)
        self.template = ChatTemplate(tokenizer, family=self.family)
        self.rope = rope or RopeScaling()
        self._label = label or "model"
        self._identity: dict | None = None
        self._owns_features = features is None
        # (tower, store, image key) -> (parts, grid); a cache of its own holds one tower's features only
        self._features = FeatureCache(VISION_CACHE_BYTES) if features is None else features
        self._tower = "" if features is None else vision_fingerprint(self.model, image_processor)
        self.page_window = page_window
        self._rotary = self._unscaled = None
        if self.rope.per_input:
            self._rotary = self.model.model.language_model.rotary_emb
            if self._rotary.rope_type != "default":
                raise ConfigError("rope_scaling", self.rope.kind, "scales a model whose RoPE is unscaled; this "
                                                                  f"one's rope_type is {self._rotary.rope_type}")
            self._unscaled = (self._rotary.original_inv_freq, 1.0)  # as built, whatever another backend set since
            self._rope_index = self.family.rope_index(self.model.config)
        self._yarn: dict[RopeScaling, tuple] = {}

    @classmethod
    def load(cls, cfg, *, rope: RopeScaling | None = None, label: str = "", device: str | None = None,
             features: FeatureCache | None = None, page_window: int = 0):
        model, tokenizer, image_processor = load_eval_model(cfg, rope)
        return cls(model, tokenizer, image_processor, label=label or cfg.path or f"{cfg.preset}-seed{cfg.seed}",
                   rope=rope, device=device, features=features, page_window=page_window)

    def pixel_budget(self) -> tuple[int, int]:
        from mmprolong.models.loading import pixel_budget

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
            window = logn_window(self.model.config)
            if window:  # absent when off, so answers cached before the setting existed stay valid
                self._identity["attn_logn_window"] = window
            if self.page_window:  # the same
                self._identity["attn_page_window"] = self.page_window
            if self.rope.per_input:  # the config's rope_parameters are the unscaled ones
                self._identity["rope_scaling"] = self.rope.describe()
        return self._identity

    def generate_one(self, item, loader, settings: GenerationSettings) -> Answer:
        import torch

        from mmprolong.models.attention import page_window

        images = item.images
        ids = self.template.prompt_ids(template_parts(item))
        if len(ids) != item.prompt_tokens:
            raise DataError(f"the prompt encodes to {len(ids)} tokens but the item says {item.prompt_tokens}: "
                            "items were built with another tokenizer (rebuild them)")
        inputs = {}
        if images:
            encoded = self._encode_images(images, loader)
            inputs = {"mm_encoder_outputs": {"image": self.family.image_encoder_output([p for p, _ in encoded])},
                      "image_grid_thw": torch.cat([grid for _, grid in encoded])}
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        token_types = self.template.mm_token_type_ids(input_ids)
        if self.rope.per_input:
            self._scale_rope(input_ids, token_types, inputs.get("image_grid_thw"))
        start = time.perf_counter()
        with torch.inference_mode(), page_window(token_types[0] == 1, self.page_window):
            out = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), mm_token_type_ids=token_types, **inputs,
                max_new_tokens=settings.max_new_tokens, do_sample=False, use_cache=True,
                eos_token_id=self.template.im_end, pad_token_id=self.tokenizer.pad_token_id or self.template.im_end)
        new = out[0, len(ids):].tolist()
        if self.device == "cuda":
            torch.cuda.synchronize()
        seconds = round(time.perf_counter() - start, 4)
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Answer(text=text.strip(), seconds=seconds, output_tokens=len(new))

    def _scale_rope(self, input_ids, token_types, grid) -> None:
        """``yarn-dynamic``: set the text rotary embedding to what this input is computed with (unscaled inside the
        window). Generated tokens are not counted: the answers are a few tokens long."""
        positions = int(self._rope_index(input_ids, token_types, grid).max()) + 1
        yarn = yarn_for_input(self.rope, input_ids.shape[1], positions)
        if yarn is None:
            inv_freq, scaling = self._unscaled
        else:
            if yarn not in self._yarn:
                self._yarn[yarn] = yarn_frequencies(self.model.config, yarn)
            inv_freq, scaling = self._yarn[yarn]
        self._rotary.inv_freq = inv_freq.to(self._rotary.inv_freq.device)
        self._rotary.attention_scaling = scaling

    def _encode_images(self, images, loader) -> list[tuple]:
        """Per image: (the family's feature parts, grid), from the cache or from the image processor and vision
        tower."""
        import torch

        keys = [(self._tower, image.root, image.key()) for image in images]
        missing: dict[tuple[str, str, str], int] = {}  # key -> first image with it
        for i, key in enumerate(keys):
            if key not in self._features:
                missing.setdefault(key, i)
        fresh = {}
        if missing:
            todo = [images[i] for i in missing.values()]
            processed = self.image_processor(images=loader.pil(todo), return_tensors="pt")
            grid = processed["image_grid_thw"].long().to(self.device)
            for image, count in zip(todo, self.family.grid_tokens(grid).tolist()):
                if count != image.vision_tokens:
                    raise DataError(f"image {image.key()}: the image processor makes {count} tokens, the item "
                                    f"counted {image.vision_tokens}; items were built with another pixel budget")
            with torch.inference_mode():
                output = self.model.model.get_image_features(
                    processed["pixel_values"].to(self.device, self.model.dtype), grid)
            fresh = dict(zip(missing, zip(self.family.image_feature_parts(output), grid.split(1))))
        result = []
        for key in keys:
            result.append(fresh[key] if key in fresh else self._features.get(key))
        for key, entry in fresh.items():
            self._features.put(key, entry)
        return result

    def close(self) -> None:
        self.model = None
        if self._owns_features:
            self._features.clear()

