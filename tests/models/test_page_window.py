"""Page-local attention at inference (``models.attention.page_window``): the exact mask, nothing changes for a prompt
within the window, a vision token's computation no longer reaches past its window while text tokens still see
everything, query blocks and log-length scaling compose, and cached decoding equals a full forward."""

import pytest
import torch

from mmprolong.models import attention
from mmprolong.models.attention import page_window, page_window_mask
from mmprolong.models.config import ModelConfig
from mmprolong.models.loading import load_for_inference

WINDOW = 4
LAYERS = 2  # the tiny preset's text layers: a vision token's reach is LAYERS windows back


def test_mask_lets_vision_tokens_see_the_preamble_and_their_window_only():
    vision = torch.tensor([False, False, True, True, True, True, True, False])  # preamble 2, six pads, a question
    every = torch.arange(8)
    mask = page_window_mask(vision, every, every, 2)
    rows = ["".join("x" if v else "." for v in row) for row in mask.tolist()]
    assert rows == ["x.......",
                    "xx......",
                    "xxx.....",  # a vision token: preamble, itself and the one before
                    "xxxx....",
                    "xx.xx...",
                    "xx..xx..",
                    "xx...xx.",
                    "xxxxxxxx"]  # the text token after them sees everything
    some = torch.tensor([6, 2])
    assert torch.equal(page_window_mask(vision, some, some, 2), mask[some][:, some])  # any rows and columns
    assert torch.equal(page_window_mask(torch.zeros(8, dtype=torch.bool), every, every, 2),
                       torch.ones(8, 8).tril().bool())


@pytest.fixture(scope="module")
def models():
    """The tiny preset in float64 without and with log-length scaling (same weights)."""
    return (load_for_inference(ModelConfig(dtype="float64"))[0],
            load_for_inference(ModelConfig(dtype="float64", attn_logn_window=WINDOW))[0])


def _ids(tokenizer, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(10, tokenizer.vocab_size - 10, (1, n), generator=g)


def _logits(model, ids, vision=None, window=0):
    with torch.no_grad(), page_window(vision if vision is not None else torch.zeros(ids.shape[1], dtype=torch.bool),
                                      window):
        return model(input_ids=ids, use_cache=False).logits[0]


def _layout(n, preamble=3, question=5):
    """Which of ``n`` tokens count as vision tokens: all but a preamble and a closing question."""
    vision = torch.ones(n, dtype=torch.bool)
    vision[:preamble] = vision[n - question:] = False
    return vision


def test_a_prompt_within_the_window_is_computed_as_without_it(models, tokenizer):
    plain, _ = models
    ids = _ids(tokenizer, 12)
    assert torch.equal(_logits(plain, ids, _layout(12), window=12), _logits(plain, ids))


def test_a_vision_token_no_longer_reaches_past_its_window_and_text_still_does(models, tokenizer):
    plain, _ = models
    n, far, pad = 40, 10, 30  # token 10 lies more than LAYERS windows before pad 30, past the preamble
    assert pad - far > LAYERS * WINDOW
    ids = _ids(tokenizer, n)
    other = ids.clone()
    other[0, far] = (ids[0, far] + 1) % tokenizer.vocab_size
    vision = _layout(n)
    windowed, changed = _logits(plain, ids, vision, WINDOW), _logits(plain, other, vision, WINDOW)
    assert torch.equal(windowed[pad], changed[pad])  # exactly: the masked key weighs 0
    assert (windowed[-1] - changed[-1]).abs().max().item() > 1e-6  # the question reads the whole prompt
    assert (_logits(plain, ids)[pad] - _logits(plain, other)[pad]).abs().max().item() > 1e-6  # without: it reached
    assert torch.equal(windowed[:WINDOW], _logits(plain, ids)[:WINDOW])  # the first tokens see no more than before


def test_query_blocks_and_log_length_scaling_compose(models, tokenizer, monkeypatch):
    """With no vision token the mask is causal: the blocked, masked path equals the plain kernel up to rounding,
    log-length scaled by each query's index in the prompt, not in its block. With vision tokens, blocks whose
    vision rows see only the keys in their reach equal one block over every key."""
    _, scaled = models
    ids = _ids(tokenizer, 40, seed=1)
    whole = _logits(scaled, ids, _layout(40), WINDOW)  # one block: every key
    monkeypatch.setattr(attention, "QUERY_BLOCK", 16)  # three blocks
    assert (_logits(scaled, ids, torch.zeros(40, dtype=torch.bool), WINDOW) - _logits(scaled, ids)).abs().max() < 1e-12
    assert (_logits(scaled, ids, _layout(40), WINDOW) - whole).abs().max().item() < 1e-12


def test_cached_decoding_equals_the_full_forward(models, tokenizer):
    """generate(): the prompt's prefill runs with the window, each new (text) token attends to the whole cache."""
    plain, _ = models
    prompt = _ids(tokenizer, 24, seed=2)
    vision = _layout(24)
    with torch.no_grad(), page_window(vision, WINDOW):
        out = plain.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6,
                             do_sample=False, use_cache=True, output_logits=True, return_dict_in_generate=True)
    full = _logits(plain, out.sequences, torch.cat([vision, torch.zeros(6, dtype=torch.bool)]), WINDOW)
    steps = torch.stack(out.logits)[:, 0].double()
    assert len(steps) == 6 and (steps - full[23:29]).abs().max().item() < 1e-6
    assert (steps[0] - _logits(plain, prompt)[-1]).abs().max().item() > 1e-6  # and the window did change them


def test_negative_window_is_refused():
    with pytest.raises(ValueError, match="0 \\(off\\)"):
        with page_window(torch.zeros(3, dtype=torch.bool), -1):
            pass
