"""models/loading.py: the tiny preset, loading a local checkpoint, rope base, freezing, save/load round trip."""

import json

import pytest
import torch

from mmprolong.errors import ConfigError
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.models.config import ModelConfig
from mmprolong.models.loading import (
    build_preset_model,
    load_image_processor,
    load_model,
    parameter_counts,
    pixel_budget,
    reset_rotary_buffers,
    rope_theta_of,
    save_model,
)
from mmprolong.models.patch_embed import use_matmul_patch_embedding


@pytest.fixture(scope="module")
def toy_inputs(tokenizer):
    """A text-only input (the rope base matters for text too) and a fixed image input."""
    torch.manual_seed(0)
    ids = torch.tensor([tokenizer("revenue grew in 2023 to 1,840 units while pressure reached 12.5 bar")["input_ids"]])
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    vs, ve = tokenizer.convert_tokens_to_ids(["<|vision_start|>", "<|vision_end|>"])
    with_image = torch.tensor([[*ids[0, :3].tolist(), vs, *[image_pad] * 6, ve, *ids[0, 3:].tolist()]])
    grid = torch.tensor([[1, 6, 4]])
    pixels = torch.randn(24, 3 * 2 * 14 * 14)
    return {"text": {"input_ids": ids},
            "image": {"input_ids": with_image, "mm_token_type_ids": (with_image == image_pad).long(),
                      "pixel_values": pixels, "image_grid_thw": grid}}


def _logits(model, inputs):
    with torch.no_grad():
        return model.eval()(**inputs, use_cache=False).logits


def test_config_validation():
    assert ModelConfig.from_dict({"rope_theta": 4000000, "dtype": "bfloat16"}).rope_theta == 4e6
    for bad in ({"rope_theta": -1.0}, {"max_pixels": 100}, {"dtype": "float16"},
                {"train_vision": False, "train_merger": False, "train_language": False},
                {"attn_implementation": "flash_attention_2", "dtype": "float64"}, {"min_pixels": 10**6,
                                                                                   "max_pixels": 10**5}):
        with pytest.raises(ConfigError):
            ModelConfig.from_dict(bad)


def test_tiny_model_takes_ids_from_the_tokenizer_and_is_seeded(tokenizer):
    state = torch.random.get_rng_state()
    a = build_preset_model(tokenizer, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    b, c = build_preset_model(tokenizer, seed=0), build_preset_model(tokenizer, seed=1)
    ids = tokenizer.convert_tokens_to_ids
    cfg = a.config
    assert cfg.text_config.vocab_size == len(tokenizer)
    assert (cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id) == (
        ids("<|image_pad|>"), ids("<|video_pad|>"), ids("<|vision_start|>"), ids("<|vision_end|>"))
    assert (cfg.text_config.eos_token_id, cfg.text_config.pad_token_id) == (ids("<|im_end|>"), ids("<|endoftext|>"))
    assert sum(cfg.text_config.rope_parameters["mrope_section"]) == cfg.text_config.head_dim // 2
    assert cfg.vision_config.out_hidden_size == cfg.text_config.hidden_size
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_load_model_tiny_preset_is_ready_to_train(tokenizer):
    model, tok, processor = load_model(ModelConfig())
    assert model.training and model.config.text_config.use_cache is False
    assert len(tok) == len(tokenizer) and pixel_budget(processor) == (56 * 56, 28 * 28 * 1280)
    counts = parameter_counts(model)
    assert counts["trainable"] == counts["total"] > 0


@pytest.mark.parametrize("flags, frozen_prefixes", [
    ({"train_vision": False}, ("model.visual.patch_embed", "model.visual.blocks")),
    ({"train_merger": False}, ("model.visual.merger",)),
    ({"train_language": False}, ("model.language_model", "lm_head")),
    ({"train_vision": False, "train_merger": False}, ("model.visual",)),
])
def test_freezing_flags_leave_exactly_the_intended_params_trainable(flags, frozen_prefixes):
    model, _, _ = load_model(ModelConfig(**flags))
    for name, param in model.named_parameters():
        assert param.requires_grad == (not name.startswith(frozen_prefixes)), name
    assert any(p.requires_grad for p in model.parameters())


def test_frozen_language_still_passes_gradients_to_the_vision_tower(toy_inputs):
    model, _, _ = load_model(ModelConfig(train_language=False))
    out = model(**toy_inputs["image"], labels=toy_inputs["image"]["input_ids"], use_cache=False)
    out.loss.backward()
    assert model.model.visual.blocks[0].mlp.up_proj.weight.grad is not None
    assert model.lm_head.weight.grad is None


def test_rope_theta_is_applied(toy_inputs):
    base, _, _ = load_model(ModelConfig())
    long, _, _ = load_model(ModelConfig(rope_theta=4e6, max_position_embeddings=131072))
    assert rope_theta_of(base) == 1e6 and rope_theta_of(long) == 4e6
    assert long.config.text_config.max_position_embeddings == 131072
    head_dim = long.config.text_config.head_dim
    expected = 1.0 / (4e6 ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
    assert torch.allclose(long.model.language_model.rotary_emb.inv_freq, expected)
    assert all(torch.equal(a, b) for a, b in zip(base.parameters(), long.parameters()))  # same weights
    assert not torch.allclose(_logits(base, toy_inputs["text"]), _logits(long, toy_inputs["text"]))


def test_save_and_reload_offline_gives_identical_logits(tmp_path, toy_inputs):
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

    model, tokenizer, processor = load_model(ModelConfig(rope_theta=4e6, max_pixels=28 * 28 * 256))
    out = save_model(model, tokenizer, processor, tmp_path / "final")
    assert sorted(p.name for p in out.glob("*.safetensors")) and (out / "preprocessor_config.json").is_file()
    # The folder decodes with a KV cache by default; the model in memory keeps it off for training.
    assert AutoConfig.from_pretrained(out).text_config.use_cache is True
    assert GenerationConfig.from_pretrained(out).use_cache is True
    assert not (model.config.use_cache or model.config.text_config.use_cache or model.generation_config.use_cache)
    assert not list(tmp_path.glob(".*.tmp"))
    reloaded = AutoModelForImageTextToText.from_pretrained(out, local_files_only=True, use_safetensors=True)
    assert rope_theta_of(reloaded) == 4e6
    for inputs in toy_inputs.values():  # transformers' own patch embedding (a Conv3d) rounds otherwise
        assert torch.allclose(_logits(model, inputs), _logits(reloaded, inputs), rtol=0, atol=1e-5)
    use_matmul_patch_embedding(reloaded)
    for inputs in toy_inputs.values():
        assert torch.equal(_logits(model, inputs), _logits(reloaded, inputs))
    # load_model on the folder: same logits, same pixel budget, same tokenizer; rope base overridable.
    again, tok2, proc2 = load_model(ModelConfig(path=str(out)))
    assert torch.equal(_logits(model, toy_inputs["image"]), _logits(again, toy_inputs["image"]))
    assert pixel_budget(proc2) == pixel_budget(processor) == (56 * 56, 28 * 28 * 256)
    assert tok2("page 12")["input_ids"] == tokenizer("page 12")["input_ids"]
    assert rope_theta_of(load_model(ModelConfig(path=str(out), rope_theta=8e6))[0]) == 8e6
    with pytest.raises(ConfigError, match="not empty"):
        save_model(model, tokenizer, processor, out)


def test_load_model_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        load_model(ModelConfig(path=str(tmp_path)))


def test_image_processor_reads_a_qwen_style_preprocessor_config(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 3136, "max_pixels": 12845056,
        "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}))
    assert pixel_budget(load_image_processor(tmp_path, DEFAULT_FAMILY)) == (3136, 12845056)
    processor = load_image_processor(tmp_path, DEFAULT_FAMILY, max_pixels=28 * 28 * 768)
    assert pixel_budget(processor) == (3136, 28 * 28 * 768)


def test_reset_rotary_buffers_restores_inv_freq(tokenizer):
    model = build_preset_model(tokenizer, seed=0)
    rotaries = [model.model.language_model.rotary_emb, model.model.visual.rotary_pos_emb]
    expected = [r.inv_freq.clone() for r in rotaries]
    for r in rotaries:
        r.inv_freq.zero_()
    reset_rotary_buffers(model)
    assert all(torch.equal(r.inv_freq, e) for r, e in zip(rotaries, expected))
