"""RoPE scaling at inference: the config changes as specified (and nothing else), logits at long positions move."""

import pytest
import torch

from mmprolong.errors import ConfigError
from mmprolong.eval.backends.hf import load_eval_model
from mmprolong.eval.rope_scaling import RopeScaling, apply_rope_scaling
from mmprolong.models.config import ModelConfig
from mmprolong.models.loading import build_preset_model

ORIGINAL = 64  # positions the tiny model is said to be trained for: scaling starts there


def _logits(model, length: int) -> torch.Tensor:
    ids = torch.arange(length).remainder(200)[None] + 10
    with torch.no_grad():
        return model(input_ids=ids, mm_token_type_ids=torch.zeros_like(ids), use_cache=False).logits[0]


def _config_without(model, *names) -> dict:
    data = model.config.to_dict()
    for name in names:
        data["text_config"].pop(name, None)
    return data


@pytest.fixture(scope="module")
def base():
    return load_eval_model(ModelConfig(dtype="float64"))[0]


def test_no_scaling_is_the_model_as_trained(base, tokenizer):
    reference = build_preset_model(tokenizer, seed=0, dtype="float64").eval()
    assert torch.equal(_logits(base, 96), _logits(reference, 96))
    assert base.config.text_config.rope_parameters == reference.config.text_config.rope_parameters
    assert RopeScaling().describe() == {"kind": "none"}


def test_yarn_sets_rope_parameters_only_and_moves_long_logits(base):
    yarn = load_eval_model(ModelConfig(dtype="float64"), RopeScaling("yarn", 4.0, ORIGINAL))[0]
    params = yarn.config.text_config.rope_parameters
    assert params == {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIGINAL,
                      "rope_theta": 1_000_000.0, "mrope_section": [4, 6, 6]}
    assert _config_without(yarn, "rope_parameters") == _config_without(base, "rope_parameters")
    rotary = yarn.model.language_model.rotary_emb
    assert rotary.rope_type == "yarn" and rotary.attention_scaling == pytest.approx(0.1 * torch.log(
        torch.tensor(4.0)).item() + 1)
    for a, b in zip(yarn.parameters(), base.parameters()):  # same weights: only positions are encoded otherwise
        assert torch.equal(a, b)
    diff = (_logits(yarn, 4 * ORIGINAL) - _logits(base, 4 * ORIGINAL)).abs()
    assert diff[ORIGINAL:].max() > 1e-4


def test_dynamic_ntk_is_exact_below_the_original_length(base):
    dynamic = load_eval_model(ModelConfig(dtype="float64"), RopeScaling("dynamic", 4.0, ORIGINAL))[0]
    text = dynamic.config.text_config
    assert text.rope_parameters == {"rope_type": "dynamic", "factor": 4.0, "rope_theta": 1_000_000.0,
                                    "mrope_section": [4, 6, 6]}
    assert text.max_position_embeddings == ORIGINAL  # transformers' dynamic NTK starts at this field
    assert (_config_without(dynamic, "rope_parameters", "max_position_embeddings")
            == _config_without(base, "rope_parameters", "max_position_embeddings"))
    assert torch.allclose(_logits(dynamic, ORIGINAL), _logits(base, ORIGINAL), atol=1e-12)
    diff = (_logits(dynamic, 4 * ORIGINAL) - _logits(base, 4 * ORIGINAL)).abs()
    assert diff[ORIGINAL:].max() > 1e-4


def test_apply_rope_scaling_validates():
    with pytest.raises(ConfigError, match="rope_scaling"):
        RopeScaling("linear")
    with pytest.raises(ConfigError, match="rope_factor"):
        RopeScaling("yarn", 0.5)

    class Text:
        def __init__(self):
            self.rope_parameters = {"rope_type": "default"}
            self.max_position_embeddings = 100

    with pytest.raises(ConfigError, match="rope_theta"):
        apply_rope_scaling(Text(), RopeScaling("yarn"))
