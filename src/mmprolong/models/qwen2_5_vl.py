"""Qwen2.5-VL (transformers' ``Qwen2_5_VLForConditionalGeneration``): Qwen2-VL's patches, tokens, chat layout and
mRoPE, with a vision tower of windowed attention blocks and a few full-attention ones. The paper's starting point
(Qwen2.5-VL-7B-Instruct: RoPE base 1e6, 32,768-token window).
"""

from mmprolong.models.base import ModelFamily, Preset
from mmprolong.models.qwen2_vl import FAMILY as QWEN2_VL
from mmprolong.models.qwen2_vl import TINY_MROPE, TINY_TEXT

FAMILY = ModelFamily(
    name="qwen2_5_vl", label="Qwen2.5-VL", patch_size=QWEN2_VL.patch_size, merge_size=QWEN2_VL.merge_size,
    temporal_patch_size=QWEN2_VL.temporal_patch_size, min_pixels=QWEN2_VL.min_pixels,
    max_pixels=QWEN2_VL.max_pixels, budget_source=QWEN2_VL.budget_source, system_prompt=QWEN2_VL.system_prompt,
    rope_theta=QWEN2_VL.rope_theta, max_positions=QWEN2_VL.max_positions,
    config_class="transformers:Qwen2_5_VLConfig", model_class="transformers:Qwen2_5_VLForConditionalGeneration",
    base_model_class="transformers.models.qwen2_5_vl.modeling_qwen2_5_vl:Qwen2_5_VLModel",
    presets={
        "tiny": Preset(
            text=TINY_TEXT, rope=TINY_MROPE,
            vision={"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": 128,
                    "window_size": 56, "fullatt_block_indexes": [1]},
            description="Qwen2.5-VL of about 1.1M parameters: text 2 layers of width 128, vision 2 blocks of "
                        "width 64"),
        "mini": Preset(
            text={**TINY_TEXT, "intermediate_size": 512, "num_hidden_layers": 4}, rope=TINY_MROPE,
            vision={"depth": 3, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4, "out_hidden_size": 128,
                    "window_size": 112, "fullatt_block_indexes": [2]},
            description="Qwen2.5-VL of about 2.5M parameters: text 4 layers of width 128 (4 heads of 32, 2 KV "
                        "heads, MLP 512), vision 3 blocks of width 128 (window 112, full attention at block 2)"),
    },
)
