"""Backends: transformers generate on the tiny model, an OpenAI-compatible endpoint on loopback, the answer cache."""

import base64

import pytest
from chat_server import Reply, serve
from eval_fixtures import FakeBackend

from mmprolong.errors import MissingDependencyError
from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.backends import AnswerCache, GenerationSettings
from mmprolong.eval.backends.openai import OpenAIBackend
from mmprolong.eval.items import read_results
from mmprolong.eval.pages import ImageLoader
from mmprolong.eval.runner import run_items
from mmprolong.eval.suites.common import SuiteContext
from mmprolong.eval.suites.niah import build_items
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS


@pytest.fixture(scope="module")
def niah_items(tmp_path_factory, store_dir, template):
    config = EvalConfig(store_dir=str(store_dir), lengths=[384], depth_steps=2, needles=[1, 2])
    ctx = SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, tmp_path_factory.mktemp("items"))
    return build_items(ctx)


def test_hf_backend_generates_greedily_on_the_tiny_model(tiny_backend, niah_items):
    settings = GenerationSettings(max_new_tokens=6)
    loader = ImageLoader()
    first = tiny_backend.generate(niah_items, loader, settings)
    again = tiny_backend.generate(niah_items, loader, settings)
    assert len(first) == len(niah_items)
    for answer, repeat in zip(first, again):
        assert not isinstance(answer, Exception), answer
        assert isinstance(answer.text, str) and 1 <= answer.output_tokens <= 6 and answer.seconds > 0
        assert answer.text == repeat.text and answer.output_tokens == repeat.output_tokens  # greedy: deterministic
    identity = tiny_backend.identity()
    assert identity["backend"] == "hf" and identity["rope_parameters"]["rope_type"] == "default"
    assert tiny_backend.pixel_budget() == (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS)


def test_hf_backend_rejects_a_token_count_mismatch(tiny_backend, niah_items):
    import dataclasses

    bad = dataclasses.replace(niah_items[0], prompt_tokens=niah_items[0].prompt_tokens + 1)
    [answer] = tiny_backend.generate([bad], ImageLoader(), GenerationSettings(max_new_tokens=2))
    assert isinstance(answer, Exception) and "another tokenizer" in str(answer)


def test_evaluate_with_the_tiny_model_then_rerun_from_cache(tmp_path, store_dir, tiny_backend):
    config = EvalConfig(store_dir=str(store_dir), lengths=[384], depth_steps=2, needles=[1], max_new_tokens=4)
    calls = []
    original = tiny_backend.generate_one

    def counted(item, loader, settings):
        calls.append(item.item_id)
        return original(item, loader, settings)

    tiny_backend.generate_one = counted
    try:
        first = evaluate(tiny_backend, "niah", out_dir=tmp_path / "run", config=config)
        assert first["generated"] == 2 and len(calls) == 2
        before = read_results(tmp_path / "run")
        second = evaluate(tiny_backend, "niah", out_dir=tmp_path / "run", config=config)
    finally:
        del tiny_backend.generate_one
    assert len(calls) == 2 and second["cached"] == 2 and second["generated"] == 0  # zero model calls
    assert read_results(tmp_path / "run") == before
    assert read_results(tmp_path / "run" / "results.parquet") == before
    assert all(r.status == "ok" and 0 <= r.score <= 1 for r in before)


def test_cache_key_depends_on_item_backend_and_settings(tmp_path, niah_items):
    cache = AnswerCache(tmp_path)
    a, b = FakeBackend("a"), FakeBackend("b")
    settings = GenerationSettings(max_new_tokens=8)
    keys = {cache.key(niah_items[0], a.identity(), settings), cache.key(niah_items[1], a.identity(), settings),
            cache.key(niah_items[0], b.identity(), settings),
            cache.key(niah_items[0], a.identity(), GenerationSettings(max_new_tokens=9))}
    assert len(keys) == 4
    results, stats = run_items(niah_items, a, settings=settings, cache=cache, loader=ImageLoader())
    assert a.calls == len(niah_items) and stats.generated == len(niah_items)
    again, stats = run_items(niah_items, a, settings=settings, cache=cache, loader=ImageLoader())
    assert a.calls == len(niah_items) and stats.cached == len(niah_items)  # no call the second time
    assert again == results
    run_items(niah_items, b, settings=settings, cache=cache, loader=ImageLoader())
    assert b.calls == len(niah_items)  # another model: its own answers


MODES = {
    "fail": Reply(500, raw=b'{"error": "boom"}'),
    "malformed": Reply(raw=b'{"id": "x", "choices": []}'),
    "not-json": Reply(raw=b"<html>oops</html>"),
    "bad-request": Reply(400, raw=b'{"error": "context too long"}'),
}


@pytest.fixture
def server():
    """Echoes the length of the item's last text part, or fails as ``server.mode`` says ("flaky": the first two
    requests get 503)."""
    def script(body, hit):
        if server.mode == "flaky" and hit <= 2:
            return Reply(503, raw=b'{"error": "busy"}')
        if server.mode in MODES:
            return MODES[server.mode]
        text = next(c["text"] for c in reversed(body["messages"][1]["content"]) if c["type"] == "text")
        return Reply(content=f"Answer: echo {len(text)}")

    with serve(script) as server:
        server.mode = "ok"
        yield server


def test_openai_backend_sends_images_as_data_urls(server, niah_items):
    backend = OpenAIBackend(server.url, "served-model", api_key="k", retries=0, concurrency=2)
    answers = backend.generate(niah_items, ImageLoader(), GenerationSettings(max_new_tokens=7))
    assert all(not isinstance(a, Exception) and a.text.startswith("Answer: echo") for a in answers)
    assert len(server.bodies) == len(niah_items)
    by_question = {}
    for body in server.bodies:
        assert body["model"] == "served-model" and body["max_tokens"] == 7 and body["temperature"] == 0.0
        system, user = body["messages"]
        assert system["role"] == "system" and user["role"] == "user"
        images = [c for c in user["content"] if c["type"] == "image_url"]
        assert all(c["image_url"]["url"].startswith("data:image/png;base64,") for c in images)
        base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1], validate=True)
        by_question[user["content"][-1]["text"]] = len(images)
    assert sorted(by_question.values()) == sorted(len(i.images) for i in niah_items)


@pytest.mark.parametrize("mode,message", [("fail", "HTTP 500"), ("malformed", "malformed response"),
                                          ("not-json", "not JSON"), ("bad-request", "HTTP 400")])
def test_openai_failures_are_per_item_errors(tmp_path, server, store_dir, mode, message):
    server.mode = mode
    backend = OpenAIBackend(server.url, "m", retries=1, backoff_s=0.0)
    config = EvalConfig(store_dir=str(store_dir), lengths=[384], depth_steps=2, needles=[1], max_new_tokens=4)
    summary = evaluate(backend, "niah", out_dir=tmp_path / mode, config=config)
    assert summary["errors"] == summary["items"] == 2 and summary["ok"] == 0
    results = read_results(tmp_path / mode)
    assert all(r.status == "error" and message in r.error for r in results)
    retried = mode == "fail"  # 5xx is retried (1 retry), malformed replies and 4xx are not
    assert len(server.bodies) == 2 * (2 if retried else 1)


def test_openai_retries_transient_errors(server, niah_items):
    server.mode = "flaky"
    backend = OpenAIBackend(server.url, "m", retries=3, backoff_s=0.0, concurrency=1)
    [answer] = backend.generate(niah_items[:1], ImageLoader(), GenerationSettings(max_new_tokens=3))
    assert not isinstance(answer, Exception) and backend.calls == 3


def test_openai_unreachable_endpoint_is_an_item_error(niah_items):
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", retries=0, timeout_s=2)
    [answer] = backend.generate(niah_items[:1], ImageLoader(), GenerationSettings(max_new_tokens=3))
    assert isinstance(answer, Exception) and "cannot reach" in str(answer)


def test_vllm_backend_needs_vllm():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        from mmprolong.eval.backends.vllm import VLLMBackend

        with pytest.raises(MissingDependencyError, match=r"pip install 'mmprolong\[vllm\]'"):
            VLLMBackend("ckpt", max_model_len=1024, min_pixels=3136, max_pixels=1003520)
    else:
        pytest.skip("vllm is installed: the backend needs a GPU run")


def test_vllm_prompt_has_one_placeholder_per_image(niah_items):
    from mmprolong.eval.backends.vllm import image_placeholder, rope_overrides, vllm_prompt
    from mmprolong.eval.rope_scaling import RopeScaling
    from mmprolong.models import get_family

    for name, system in (("qwen2_5_vl", True), ("qwen3_vl", False)):
        family = get_family(name)
        prompt = vllm_prompt(niah_items[0], family)
        assert prompt.count(image_placeholder(family)) == len(niah_items[0].images)
        assert prompt.endswith("<|im_start|>assistant\n") and niah_items[0].question in prompt
        assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.") == system
    assert rope_overrides(RopeScaling("yarn", 4.0, 32768), [16, 24, 24]) == {"rope_scaling": {
        "rope_type": "yarn", "type": "yarn", "factor": 4.0, "mrope_section": [16, 24, 24],
        "original_max_position_embeddings": 32768}}


def test_cached_generation_equals_a_plain_greedy_loop(tiny_backend, niah_items):
    """use_cache=True in generate (one sample per forward) gives what full forwards without a cache give."""
    import torch

    from mmprolong.eval.backends import template_parts

    item = niah_items[0]
    [answer] = tiny_backend.generate([item], ImageLoader(), GenerationSettings(max_new_tokens=4))
    model, template = tiny_backend.model, tiny_backend.template
    processed = tiny_backend.image_processor(images=ImageLoader().pil(item.images), return_tensors="pt")
    ids = torch.tensor([template.prompt_ids(template_parts(item))])
    new = []
    with torch.no_grad():
        for _ in range(4):
            logits = model(input_ids=ids, pixel_values=processed["pixel_values"],
                           image_grid_thw=processed["image_grid_thw"],
                           mm_token_type_ids=(ids == template.image_pad).long(), use_cache=False).logits
            token = int(logits[0, -1].argmax())
            new.append(token)
            if token == template.im_end:
                break
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    assert answer.text == tiny_backend.tokenizer.decode(new, skip_special_tokens=True).strip()
    assert answer.output_tokens == len(new)


def test_backends_sharing_vision_features_reuse_a_frozen_tower_only(tiny_backend, niah_items):
    """A model whose language model changed (LongPT, tower frozen) reuses the features another backend put in the
    shared cache, and answers as it does with its own; a model whose tower changed encodes its pages again."""
    import copy

    import torch

    from mmprolong.eval.backends.hf import VISION_CACHE_BYTES, HFBackend
    from mmprolong.models.features import FeatureCache

    def variant(part: str):
        model = copy.deepcopy(tiny_backend.model)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if (".visual." in f".{name}") == (part == "vision"):
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
        return model

    def backend(model, features=None):
        made = HFBackend(model, tiny_backend.tokenizer, tiny_backend.image_processor, device="cpu",
                         features=features)
        calls = []
        encode = made.model.model.get_image_features
        made.model.model.get_image_features = lambda *a, **k: calls.append(1) or encode(*a, **k)
        return made, calls

    settings, shared = GenerationSettings(max_new_tokens=6), FeatureCache(VISION_CACHE_BYTES)
    first, first_calls = backend(copy.deepcopy(tiny_backend.model), shared)
    first.generate(niah_items, ImageLoader(), settings)
    first.close()
    pages = len(shared)
    assert first_calls and pages > 0  # closing a backend leaves a shared cache to the others
    for part, reuses, entries in (("language", True, pages), ("vision", False, 2 * pages)):
        model = variant(part)
        sharing, calls = backend(model, shared)
        alone, _ = backend(copy.deepcopy(model))
        answers = sharing.generate(niah_items, ImageLoader(), settings)
        assert (not calls) == reuses, part
        assert [a.text for a in answers] == [a.text for a in alone.generate(niah_items, ImageLoader(), settings)]
        assert len(shared) == entries  # the changed tower's pages beside the first's, under its own fingerprint


def test_page_window_answers_as_full_forwards_under_the_window_do(tiny_backend, niah_items):
    """EvalConfig.attn_page_window: the backend marks the prompt's image pads, prefills under page-local attention
    and decodes as full forwards under the same mask do; it changes the answers' logits and their cache key."""
    import torch

    from mmprolong.errors import ConfigError
    from mmprolong.eval.backends import template_parts
    from mmprolong.eval.backends.hf import HFBackend
    from mmprolong.models.attention import page_window
    from mmprolong.models.config import ModelConfig

    window = 64
    backend = HFBackend(tiny_backend.model, tiny_backend.tokenizer, tiny_backend.image_processor, device="cpu",
                        page_window=window)
    assert backend.identity()["attn_page_window"] == window and "attn_page_window" not in tiny_backend.identity()
    item = niah_items[0]
    [answer] = backend.generate([item], ImageLoader(), GenerationSettings(max_new_tokens=4))
    model, template = backend.model, backend.template
    processed = backend.image_processor(images=ImageLoader().pil(item.images), return_tensors="pt")
    ids = torch.tensor([template.prompt_ids(template_parts(item))])
    assert ids.shape[1] > window

    def last_logits(ids, vision, size):
        with torch.no_grad(), page_window(vision, size):
            return model(input_ids=ids, pixel_values=processed["pixel_values"],
                         image_grid_thw=processed["image_grid_thw"],
                         mm_token_type_ids=(ids == template.image_pad).long(), use_cache=False).logits[0, -1]

    windowed, plain = last_logits(ids, ids[0] == template.image_pad, window), last_logits(ids, ids[0] == -1, 0)
    assert (windowed - plain).abs().max() > 1e-4  # the window changes what the pages hand the question
    new, vision = [], ids[0] == template.image_pad
    for _ in range(4):
        token = int(last_logits(ids, torch.cat([vision, torch.zeros(ids.shape[1] - len(vision), dtype=torch.bool)]),
                                window).argmax())
        new.append(token)
        if token == template.im_end:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    assert answer.text == backend.tokenizer.decode(new, skip_special_tokens=True).strip()
    with pytest.raises(ConfigError, match="attn_page_window"):  # another kernel would silently drop it
        HFBackend.load(ModelConfig(attn_implementation="sdpa"), device="cpu", page_window=window)
    for fields in ({"attn_page_window": -1}, {"attn_page_window": window, "backend": "vllm"}):
        with pytest.raises(ConfigError, match="attn_page_window"):
            EvalConfig(**fields).validate()
