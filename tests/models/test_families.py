"""The family layer: registry and detection, configs, each family's chat layout, presets, freezing, a Qwen3-VL
checkpoint's round trip, and what the vision tower hands the language model (cached per image, cut per SP rank)."""

import json
import pickle

import pytest
import torch

from mmprolong.errors import ConfigError, DataError
from mmprolong.models import DEFAULT_FAMILY, FAMILIES, PRESETS, family_of_checkpoint, family_of_config, get_family
from mmprolong.models.config import ModelConfig
from mmprolong.models.loading import (
    build_preset_model,
    load_for_inference,
    load_model,
    model_pixel_budget,
    parameter_counts,
    pixel_budget,
    save_model,
)
from mmprolong.template import ChatTemplate

QWEN3 = FAMILIES["qwen3_vl"]


def _image_inputs(family, tokenizer, grids=((1, 4, 6), (1, 8, 2))):
    """A prompt with one image per grid and matching random patches."""
    template = ChatTemplate(tokenizer, family=family)
    grid = torch.tensor(grids)
    ids = torch.tensor([template.prompt_ids([*family.grid_tokens(grid).tolist(), "what is shown?"])])
    torch.manual_seed(0)
    pixels = torch.randn(int(grid.prod(-1).sum()), 3 * family.temporal_patch_size * family.patch_size**2)
    return {"input_ids": ids, "mm_token_type_ids": template.mm_token_type_ids(ids), "pixel_values": pixels,
            "image_grid_thw": grid}


def test_registry_presets_and_pickling():
    assert set(FAMILIES) == {"qwen2_vl", "qwen2_5_vl", "qwen3_vl"} and DEFAULT_FAMILY.name == "qwen2_5_vl"
    assert {name: f.name for name, f in PRESETS.items()} == {
        "tiny-qwen2-vl": "qwen2_vl", "tiny": "qwen2_5_vl", "mini": "qwen2_5_vl", "tiny-qwen3-vl": "qwen3_vl"}
    assert pickle.loads(pickle.dumps(QWEN3)) is QWEN3  # families pickle by name (DataLoader workers)
    with pytest.raises(ConfigError, match="supported"):
        get_family("llava")


def test_preset_sizes_and_token_ids(tokenizer):
    counts = {}
    for preset, family in PRESETS.items():
        model = build_preset_model(tokenizer, preset, seed=0)
        assert family_of_config(model.config) is family and family.check_token_ids(model.config, tokenizer) is None
        counts[preset] = parameter_counts(model)["total"]
        text = model.config.text_config
        assert sum(text.rope_parameters["mrope_section"]) == text.head_dim // 2
        assert model.config.vision_config.patch_size == family.patch_size
    print(f"\npreset parameters: {counts}")
    assert 2.3e6 < counts["mini"] < 2.7e6 and counts["tiny"] < 1.3e6 and counts["tiny-qwen3-vl"] < 2e6


def test_model_config_validation_knows_the_family():
    assert ModelConfig.from_dict({"preset": "tiny-qwen3-vl"}).known_family() is QWEN3
    assert ModelConfig.from_dict({"preset": "tiny-qwen3-vl", "family": "qwen3_vl"}).known_family() is QWEN3
    # 900 pixels hold one 28-px token but not one 32-px token
    assert ModelConfig.from_dict({"max_pixels": 900, "min_pixels": 784}).max_pixels == 900
    for bad, field in (({"preset": "huge"}, "preset"), ({"family": "qwen4"}, "family"),
                       ({"preset": "tiny", "family": "qwen3_vl"}, "family"),
                       ({"preset": "tiny-qwen3-vl", "max_pixels": 900}, "max_pixels")):
        with pytest.raises(ConfigError) as info:
            ModelConfig.from_dict(bad)
        assert info.value.field == field


def test_chat_layout_per_family(tokenizer):
    for family in FAMILIES.values():
        template = ChatTemplate(tokenizer, family=family)
        text = tokenizer.decode(template.prompt_ids([3, "question?"]))
        pads = "<|vision_start|>" + "<|image_pad|>" * 3 + "<|vision_end|>"
        system = "" if family is QWEN3 else "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        assert text == f"{system}<|im_start|>user\n{pads}question?<|im_end|>\n<|im_start|>assistant\n"
        assert template.count([3, "question?"], "yes") == len(template.encode([3, "question?"], "yes"))
    assert pickle.loads(pickle.dumps(ChatTemplate(tokenizer, family=QWEN3))).family is QWEN3


def test_qwen3_vl_freezing_covers_deepstack_mergers():
    model, _, _ = load_model(ModelConfig(preset="tiny-qwen3-vl", train_merger=False))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("model.visual.merger", "model.visual.deepstack_merger_list")) for n in frozen)
    model, _, _ = load_model(ModelConfig(preset="tiny-qwen3-vl", train_vision=False))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert {n.split(".")[2] for n in frozen} == {"patch_embed", "pos_embed", "blocks"}


def test_qwen3_vl_checkpoint_round_trip_and_detection(tmp_path, tokenizer):
    model, tok, processor = load_model(ModelConfig(preset="tiny-qwen3-vl", rope_theta=2e7, min_pixels=4096))
    folder = save_model(model, tok, processor, tmp_path / "qwen3")
    saved = json.loads((folder / "config.json").read_text())
    assert saved["model_type"] == "qwen3_vl" and family_of_checkpoint(folder) is QWEN3
    assert json.loads((folder / "preprocessor_config.json").read_text())["patch_size"] == 16
    assert model_pixel_budget(ModelConfig(path=str(folder))) == (QWEN3, 4096, QWEN3.max_pixels)
    inputs = _image_inputs(QWEN3, tokenizer)
    again, _, proc2 = load_for_inference(ModelConfig(path=str(folder)))
    with torch.no_grad():
        assert torch.equal(model.eval()(**inputs, use_cache=False).logits, again(**inputs, use_cache=False).logits)
    assert pixel_budget(proc2) == (4096, QWEN3.max_pixels)
    with pytest.raises(ConfigError, match="holds a qwen3_vl model"):
        load_model(ModelConfig(path=str(folder), family="qwen2_5_vl"))
    (folder / "config.json").write_text(json.dumps({**saved, "model_type": "llava"}))
    with pytest.raises(ConfigError, match="model_type is 'llava'"):
        family_of_checkpoint(folder)


def test_a_processor_of_another_family_is_refused(tmp_path, tokenizer):
    model, tok, _ = load_model(ModelConfig(preset="tiny-qwen3-vl"))
    folder = save_model(model, tok, DEFAULT_FAMILY.image_processor(), tmp_path / "mixed")  # 14-px patches
    with pytest.raises(ConfigError, match="patch_size=14, Qwen3-VL uses 16"):
        load_model(ModelConfig(path=str(folder)))


def test_token_id_mismatch_is_a_data_error(tmp_path):
    model, tok, processor = load_model(ModelConfig(preset="tiny-qwen3-vl"))
    model.config.image_token_id += 1
    folder = save_model(model, tok, processor, tmp_path / "bad")
    with pytest.raises(DataError, match="disagree on vision token ids"):
        load_model(ModelConfig(path=str(folder)))


@pytest.mark.parametrize("preset", ["tiny", "tiny-qwen3-vl"])
def test_cached_vision_features_stand_in_for_pixels(preset, tokenizer):
    """Per-image parts (Qwen3-VL: merged tokens + one DeepStack tensor per block), reassembled in prompt order,
    give the logits the pixels give."""
    family = PRESETS[preset]
    model = build_preset_model(tokenizer, preset, seed=0, dtype="float64").eval()
    inputs = _image_inputs(family, tokenizer)
    inputs["pixel_values"] = inputs["pixel_values"].double()
    with torch.no_grad():
        output = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
        parts = family.image_feature_parts(output)
        assert len(parts) == 2 and len(parts[0]) == (3 if family is QWEN3 else 1)
        pixels = model(**inputs, use_cache=False).logits
        cached = model(**{k: v for k, v in inputs.items() if k != "pixel_values"}, use_cache=False,
                       mm_encoder_outputs={"image": family.image_encoder_output(parts)}).logits
    assert torch.equal(pixels, cached)


def test_qwen3_vl_text_chunk_keeps_the_deepstack_rows_of_its_tokens():
    mask = torch.tensor([[0, 1, 1, 0, 1, 1, 1, 0]], dtype=torch.bool)
    embeds = [torch.arange(5.0)[:, None] * (k + 1) for k in range(2)]  # one row per image token, in order
    kwargs = {"inputs_embeds": torch.zeros(1, 8, 4), "position_ids": torch.zeros(4, 1, 8),
              "visual_pos_masks": mask, "deepstack_visual_embeds": embeds}
    chunk = QWEN3.text_chunk(kwargs, 4, 8)
    assert chunk["inputs_embeds"].shape[1] == 4 and chunk["visual_pos_masks"].tolist() == [[1, 1, 1, 0]]
    assert [e[:, 0].tolist() for e in chunk["deepstack_visual_embeds"]] == [[2, 3, 4], [4, 6, 8]]
    assert DEFAULT_FAMILY.text_chunk({"inputs_embeds": torch.zeros(1, 8, 4), "position_ids": torch.zeros(4, 1, 8)},
                                     0, 4)["position_ids"].shape[-1] == 4


def test_rope_scaling_at_inference_applies_to_qwen3_vl(tokenizer):
    from mmprolong.eval.rope_scaling import RopeScaling, apply_rope_scaling

    cfg = ModelConfig(preset="tiny-qwen3-vl", dtype="float64")
    plain, _, _ = load_for_inference(cfg)
    yarn, _, _ = load_for_inference(cfg, edit_config=lambda c: apply_rope_scaling(c, RopeScaling("yarn", 4.0, 64)))
    params = yarn.config.text_config.rope_parameters
    assert (params["rope_type"], params["mrope_section"], params["mrope_interleaved"]) == ("yarn", [6, 5, 5], True)
    inputs = _image_inputs(QWEN3, tokenizer)
    inputs["pixel_values"] = inputs["pixel_values"].double()
    with torch.no_grad():
        assert not torch.allclose(plain(**inputs).logits, yarn(**inputs).logits)
