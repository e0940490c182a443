"""Log-length attention scaling (``ModelConfig.attn_logn_window``): exact factors, nothing changes within the window,
packed rows still equal each sample alone, cached decoding equals a full forward, the setting survives saving,
and every path that would drop it refuses."""

import json
import math

import pytest
import torch

from mmprolong.errors import ConfigError
from mmprolong.eval import EvalConfig
from mmprolong.eval.backends import make_backend
from mmprolong.models.attention import LOGN_ATTR, logn_factors, scale_queries
from mmprolong.models.config import ModelConfig
from mmprolong.models.loading import load_for_inference, load_model, logn_window, save_model

WINDOW = 8  # small, so the tiny samples below run past it


def test_factors_are_one_within_the_window_then_the_log_ratio():
    f = logn_factors(0, 12, WINDOW, dtype=torch.float64, device="cpu")
    assert f[:WINDOW].tolist() == [1.0] * WINDOW
    assert f[WINDOW:].tolist() == [math.log(i + 1) / math.log(WINDOW) for i in range(WINDOW, 12)]
    assert logn_factors(10, 2, WINDOW, dtype=torch.float64, device="cpu").tolist() == f[10:].tolist()
    q = torch.randn(1, 2, WINDOW, 4)
    assert scale_queries(q, 0, WINDOW) is q and scale_queries(q, 5, 0) is q
    scaled = scale_queries(q, 1, WINDOW)  # tokens 1..8: only the last is past the window
    assert torch.equal(scaled[:, :, :-1], q[:, :, :-1])
    assert torch.allclose(scaled[:, :, -1], q[:, :, -1] * math.log(9) / math.log(WINDOW))


def _text_rows(tokenizer, lengths, seed=0):
    """Random text samples (ids) of ``lengths``."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, tokenizer.vocab_size - 10, (n,), generator=g) for n in lengths]


def _alone(model, ids):
    with torch.no_grad():
        return model(input_ids=ids[None], use_cache=False).logits[0]


def _packed(model, samples):
    """One packed row of ``samples`` with text positions restarting at each (4-row position ids)."""
    ids = torch.cat(samples)[None]
    text = torch.cat([torch.arange(len(s)) for s in samples])
    positions = torch.stack([text] * 4)[:, None]
    with torch.no_grad():
        return model(input_ids=ids, position_ids=positions, use_cache=False).logits[0]


@pytest.fixture(scope="module")
def models(tokenizer):
    """The tiny preset in float64 without and with the scaling (same weights)."""
    plain = load_for_inference(ModelConfig(dtype="float64"))[0]
    scaled = load_for_inference(ModelConfig(dtype="float64", attn_logn_window=WINDOW))[0]
    assert logn_window(plain.config) == 0 and logn_window(scaled.config) == WINDOW
    return plain, scaled


def test_within_the_window_nothing_changes_and_past_it_the_logits_do(models, tokenizer):
    plain, scaled = models
    (ids,) = _text_rows(tokenizer, [20])
    a, b = _alone(plain, ids), _alone(scaled, ids)
    assert torch.equal(a[:WINDOW], b[:WINDOW])
    assert (a[WINDOW:] - b[WINDOW:]).abs().amax(-1).min().item() > 1e-6  # every later token moves


def test_packed_row_equals_each_sample_alone_in_float64(models, tokenizer):
    _, scaled = models
    samples = _text_rows(tokenizer, [20, 5, 13], seed=1)
    packed = _packed(scaled, samples)
    start, diff = 0, 0.0
    for s in samples:
        diff = max(diff, (packed[start:start + len(s)] - _alone(scaled, s)).abs().max().item())
        start += len(s)
    assert diff < 1e-9, diff
    # negative control: scaling by the row's index instead of the sample's would move the later samples
    continuous = _alone(scaled, torch.cat(samples))
    assert (continuous[20:25] - packed[20:25]).abs().max().item() > 1e-6


def test_cached_decoding_equals_the_full_forward(models, tokenizer):
    """generate() decodes token by token with a KV cache: each new query's index is the cache length."""
    _, scaled = models
    (prompt,) = _text_rows(tokenizer, [6], seed=2)  # crosses the window while decoding
    with torch.no_grad():
        out = scaled.generate(input_ids=prompt[None], attention_mask=torch.ones(1, 6, dtype=torch.long),
                              max_new_tokens=10, do_sample=False, use_cache=True, output_logits=True,
                              return_dict_in_generate=True)
    full = _alone(scaled, out.sequences[0])
    steps = torch.stack(out.logits)[:, 0].double()  # generate hands logits back in float32
    assert len(steps) == 10 and (steps - full[5:15]).abs().max().item() < 1e-6


def test_saved_checkpoint_records_the_window_and_reloads_it(tmp_path, models, tokenizer):
    model, tok, processor = load_model(ModelConfig(attn_logn_window=WINDOW))
    out = save_model(model, tok, processor, tmp_path / "final")
    assert json.loads((out / "config.json").read_text())["text_config"][LOGN_ATTR] == WINDOW
    (ids,) = _text_rows(tokenizer, [16], seed=3)
    again = load_for_inference(ModelConfig(path=str(out)))[0]
    assert logn_window(again.config) == WINDOW
    assert torch.equal(_alone(model.eval(), ids), _alone(again, ids))
    off = load_for_inference(ModelConfig(path=str(out), attn_logn_window=0))[0]
    assert logn_window(off.config) == 0 and not torch.equal(_alone(off, ids), _alone(again, ids))
    with pytest.raises(ConfigError, match="attn_implementation"):  # another kernel would silently drop it
        load_for_inference(ModelConfig(path=str(out), attn_implementation="sdpa"))
    with pytest.raises(ConfigError, match="vLLM does not apply"):
        make_backend(ModelConfig(path=str(out)), EvalConfig(backend="vllm", max_model_len=64, min_pixels=784,
                                                            max_pixels=784 * 4))
    backend = make_backend(ModelConfig(path=str(out)), EvalConfig())
    assert backend.identity()[LOGN_ATTR] == WINDOW  # cached answers of the unscaled model are not reused
    assert LOGN_ATTR not in make_backend(ModelConfig(path=str(out), attn_logn_window=0), EvalConfig()).identity()


def test_evaluation_can_set_the_scaling_for_a_model_trained_without(tmp_path, models):
    """EvalConfig.attn_logn_window: inference-time scaling on the hf backend, part of the answers' cache key."""
    plain = make_backend(ModelConfig(dtype="float64"), EvalConfig())
    scaled = make_backend(ModelConfig(dtype="float64"), EvalConfig(attn_logn_window=WINDOW))
    assert logn_window(scaled.model.config) == WINDOW and LOGN_ATTR not in plain.identity()
    assert scaled.identity()[LOGN_ATTR] == WINDOW and scaled.identity()["weights"] == plain.identity()["weights"]
    for backend in ("openai", "vllm"):
        with pytest.raises(ConfigError, match="cannot apply"):
            EvalConfig(backend=backend, attn_logn_window=WINDOW).validate()


@pytest.mark.parametrize("fields, match", [
    ({"attn_logn_window": -1}, "0 \\(off\\)"),
    ({"attn_logn_window": 1024, "attn_implementation": "sdpa"}, "sdpa_packed"),
])
def test_model_config_refuses(fields, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**fields).validate()
