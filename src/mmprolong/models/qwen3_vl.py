"""Qwen3-VL (transformers' ``Qwen3VLForConditionalGeneration``): 16-px patches merged 2x2 (32 px a token),
interleaved mRoPE, DeepStack, learned vision position embeddings, no default system turn.

What differs from Qwen2.5-VL, and how each survives packing (tests/models/test_packing_families.py, float64):

- Interleaved mRoPE: the rotary frequencies alternate t, h, w (``mrope_section`` [24, 20, 20] of 64 at 8B)
  instead of three contiguous blocks. Positions are still 3 rows from ``Qwen3VLModel.get_rope_index`` (an image
  advances the text position by max(grid h, w) / merge), so a packed row carries them as for Qwen2.5-VL: 4 rows,
  row 0 the text positions restarting per sample (``Qwen3VLTextModel`` splits row 0 off and hands it to
  ``create_causal_mask`` and, as ``position_ids``, to every attention call), ``attention_mask=None``,
  ``use_cache=False`` (the text config defaults to True; with a cache ``create_causal_mask`` skips packing
  detection and samples attend to each other).
- DeepStack: the vision tower also returns features of some of its blocks (``deepstack_visual_indexes``, [8, 16,
  24] at 8B), each added to the hidden states of one early decoder layer at the image tokens
  (``visual_pos_masks``). The model gathers them image by image in sequence order and scatters them by the mask
  over the flattened (rows, length) batch, which is sequence order too: concatenating the samples'
  ``pixel_values``/``image_grid_thw`` in row order, as collate does, is all packing needs. Eval's feature cache
  keeps them per image (``image_feature_parts``); a sequence-parallel rank keeps the ones of its tokens
  (``text_chunk``).
- Timestamps: a video is split into frames, each ``<t seconds>`` (plain text) + vision start + pads + vision end;
  ``get_rope_index`` gives every frame its own group with t = its start position, so the time is in the text
  and a sample's positions are its own. Packed rows with videos equal them alone (tested; mmprolong's records
  hold pages, not videos).

transformers 5.24 needs nothing beyond this for Qwen3-VL packed rows; nothing in it had to be worked around.
Released checkpoints (Qwen3-VL-8B-Instruct config.json and preprocessor_config.json): RoPE base 5e6, 262,144
positions, pixel budget 65,536..16,777,216 (64..16,384 tokens an image), image mean and std 0.5.
"""

from dataclasses import dataclass

from mmprolong.models.base import ModelFamily, Preset


@dataclass(frozen=True)
class Qwen3VLFamily(ModelFamily):
    """Qwen3-VL's vision tower also hands the language model DeepStack features: per image, one tensor per
    DeepStack block beside the merged tokens."""

    def image_feature_parts(self, output):
        layers = output.deepstack_features  # per DeepStack block: a tuple with one tensor per image
        return [(features, *(layer[i] for layer in layers)) for i, features in enumerate(output.pooler_output)]

    def image_encoder_output(self, parts):
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        blocks = len(parts[0]) - 1
        return BaseModelOutputWithDeepstackFeatures(
            pooler_output=tuple(p[0] for p in parts),
            deepstack_features=[tuple(p[1 + k] for p in parts) for k in range(blocks)])

    def text_chunk(self, kwargs, start, end):
        """Also the image tokens of [start, end) in ``visual_pos_masks`` and their rows of each DeepStack block's
        features (one row per image token of the batch, in sequence order)."""
        kwargs = super().text_chunk(kwargs, start, end)
        mask = kwargs.get("visual_pos_masks")
        if mask is not None:
            first, last = int(mask[:, :start].sum()), int(mask[:, :end].sum())
            kwargs["visual_pos_masks"] = mask[:, start:end]
            kwargs["deepstack_visual_embeds"] = [e[first:last] for e in kwargs["deepstack_visual_embeds"]]
        return kwargs


FAMILY = Qwen3VLFamily(
    name="qwen3_vl", label="Qwen3-VL", patch_size=16, merge_size=2, temporal_patch_size=2,
    min_pixels=65_536, max_pixels=16_777_216,
    budget_source="the released Qwen3-VL checkpoints' preprocessor_config.json (size.shortest_edge, longest_edge)",
    system_prompt=None, rope_theta=5_000_000.0, max_positions=262_144,
    config_class="transformers:Qwen3VLConfig", model_class="transformers:Qwen3VLForConditionalGeneration",
    base_model_class="transformers.models.qwen3_vl.modeling_qwen3_vl:Qwen3VLModel",
    image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5), merger=("merger", "deepstack_merger_list"),
    llamafactory_template="qwen3_vl_nothink",  # the Instruct models' layout (no <think> block)
    presets={"tiny-qwen3-vl": Preset(
        text={"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 3, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 32, "rms_norm_eps": 1e-6},
        rope={"mrope_section": [6, 5, 5], "mrope_interleaved": True},  # 8B's [24, 20, 20] scaled to head_dim 32
        vision={"depth": 3, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": 128,
                "num_position_embeddings": 256, "deepstack_visual_indexes": [0, 1]},
        description="Qwen3-VL of about 1.5M parameters: text 3 layers of width 128, vision 3 blocks of width 64, "
                    "DeepStack from vision blocks 0 and 1 into decoder layers 0 and 1")},
)
