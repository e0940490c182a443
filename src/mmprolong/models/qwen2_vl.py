"""Qwen2-VL (transformers' ``Qwen2VLForConditionalGeneration``): 14-px patches merged 2x2 (28 px a token), mRoPE
with sections over (t, h, w), a vision tower of full-attention blocks.

Its chat template opens with the system turn "You are a helpful assistant." when none is given; images are
``<|vision_start|>`` + pads + ``<|vision_end|>``. Released checkpoints: RoPE base 1e6, 32,768-token window.
"""

from mmprolong import tokens
from mmprolong.models.base import ModelFamily, Preset

QWEN_SYSTEM_PROMPT = "You are a helpful assistant."
# A text model of a few hundred thousand parameters with the shipped tokenizer; runs forward+backward on CPU.
TINY_TEXT = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 32, "rms_norm_eps": 1e-6}
TINY_MROPE = {"mrope_section": [4, 6, 6]}  # temporal, height, width: sums to head_dim / 2

FAMILY = ModelFamily(
    name="qwen2_vl", label="Qwen2-VL", patch_size=tokens.PATCH_SIZE, merge_size=tokens.MERGE_SIZE,
    temporal_patch_size=2, min_pixels=tokens.DEFAULT_MIN_PIXELS, max_pixels=tokens.DEFAULT_MAX_PIXELS,
    budget_source="transformers' Qwen2VLImageProcessor defaults (released checkpoints set their own in "
                  "preprocessor_config.json, e.g. max_pixels 12,845,056)",
    system_prompt=QWEN_SYSTEM_PROMPT, rope_theta=1_000_000.0, max_positions=32_768,
    config_class="transformers:Qwen2VLConfig", model_class="transformers:Qwen2VLForConditionalGeneration",
    base_model_class="transformers.models.qwen2_vl.modeling_qwen2_vl:Qwen2VLModel",
    presets={"tiny-qwen2-vl": Preset(
        text=TINY_TEXT, rope=TINY_MROPE,
        vision={"depth": 2, "embed_dim": 64, "hidden_size": 128, "mlp_ratio": 2, "num_heads": 2},
        description="Qwen2-VL of about 1M parameters: text 2 layers of width 128, vision 2 blocks of width 64")},
)
