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


@pytest.fixture(scope="module")
def long_item(tmp_path_factory, store_dir, template):
    from mmprolong.eval import EvalConfig
    from mmprolong.eval.suites.common import SuiteContext
    from mmprolong.eval.suites.niah import build_items
    from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

    config = EvalConfig(store_dir=str(store_dir), lengths=[384], depth_steps=1, needles=[1])
    ctx = SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, tmp_path_factory.mktemp("items"))
    return build_items(ctx)[0]


def _positions(backend, item) -> int:
    """The mRoPE positions ``item``'s prompt spans, from the model's own rope index."""
    from mmprolong.eval.backends.base import template_parts
    from mmprolong.eval.pages import ImageLoader

    ids = torch.tensor([backend.template.prompt_ids(template_parts(item))])
    loader = ImageLoader()
    processed = backend.image_processor(images=loader.pil(item.images), return_tensors="pt")
    index = backend.family.rope_index(backend.model.config)
    return int(index(ids, backend.template.mm_token_type_ids(ids), processed["image_grid_thw"]).max()) + 1


def test_dynamic_yarn_computes_a_long_input_as_static_yarn_and_a_short_one_unscaled(long_item):
    from mmprolong.eval.backends import GenerationSettings
    from mmprolong.eval.backends.hf import HFBackend
    from mmprolong.eval.pages import ImageLoader
    from mmprolong.eval.rope_scaling import yarn_for_input

    window = long_item.prompt_tokens // 2
    dynamic = HFBackend.load(ModelConfig(dtype="float64"), rope=RopeScaling("yarn-dynamic", window=window),
                             device="cpu")
    rotary = dynamic.model.model.language_model.rotary_emb
    unscaled = rotary.inv_freq.clone()
    assert dynamic.model.config.text_config.rope_parameters["rope_type"] == "default"  # loaded as trained
    assert dynamic.identity()["rope_scaling"] == {"kind": "yarn-dynamic", "window": window}
    positions = _positions(dynamic, long_item)
    assert positions < long_item.prompt_tokens / 2  # page images span fewer positions than tokens
    static = yarn_for_input(dynamic.rope, long_item.prompt_tokens, positions)
    assert static == RopeScaling("yarn", long_item.prompt_tokens / window, -(-positions * window //
                                                                          long_item.prompt_tokens))
    reference = load_eval_model(ModelConfig(dtype="float64"), static)[0].model.language_model.rotary_emb

    settings, loader = GenerationSettings(max_new_tokens=2), ImageLoader()
    [answer] = dynamic.generate([long_item], loader, settings)
    assert not isinstance(answer, Exception), answer
    assert torch.equal(rotary.inv_freq, reference.inv_freq) and not torch.equal(rotary.inv_freq, unscaled)
    assert rotary.attention_scaling == reference.attention_scaling > 1

    inside = HFBackend(dynamic.model, dynamic.tokenizer, dynamic.image_processor, device="cpu",
                       rope=RopeScaling("yarn-dynamic", window=long_item.prompt_tokens))
    inside.generate([long_item], loader, settings)  # the same input, now inside the window: as trained again
    assert torch.equal(rotary.inv_freq, unscaled) and rotary.attention_scaling == 1.0
    assert yarn_for_input(inside.rope, long_item.prompt_tokens, positions) is None


def test_dynamic_yarn_needs_a_window_and_the_hf_backend():
    from mmprolong.eval import EvalConfig

    with pytest.raises(ConfigError, match="rope_window"):
        RopeScaling("yarn-dynamic")
    with pytest.raises(ConfigError, match="rope_window"):
        EvalConfig(rope_scaling="yarn-dynamic").validate()
    with pytest.raises(ConfigError, match="rope_scaling"):
        EvalConfig(rope_scaling="yarn-dynamic", rope_window=4096, backend="vllm").validate()
