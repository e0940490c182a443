"""Packing proven for every family: a packed row of a tiny model of each family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL)
computes, in float64, exactly what the unmodified model computes for each sample alone, with rows holding several
images of different grids and a text-only sample; per-sample losses equal too. Qwen3-VL's interleaved mRoPE,
DeepStack injection and video timestamps are part of the same forward."""

import random

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmprolong.models import PRESETS
from mmprolong.models.attention import register
from mmprolong.models.loading import build_preset_model
from mmprolong.records import PageRef, SampleRecord
from mmprolong.template import ChatTemplate
from mmprolong.train.collate import IGNORE_INDEX, SampleEncoder, collate_packed, pad_token_id

FAMILY_PRESETS = ("tiny-qwen2-vl", "tiny", "tiny-qwen3-vl")
TOKENS_PER_IMAGE = 30  # a small budget: images of 4..30 tokens with grids of many shapes


@pytest.fixture(scope="module", params=FAMILY_PRESETS)
def setup(request, tokenizer):
    return prepare(tokenizer, request.param)


def prepare(tokenizer, preset: str):
    """(preset, model in float64, encoder, encoded samples, reference outputs of each sample alone)."""
    family = PRESETS[preset]
    model = build_preset_model(tokenizer, preset, seed=0, dtype="float64").eval()
    budget = {"min_pixels": 4 * family.token_px**2, "max_pixels": family.pixels_for_tokens(TOKENS_PER_IMAGE)}
    template = ChatTemplate(tokenizer, family=family)
    encoder = SampleEncoder(template, family.image_processor(**budget), family.rope_index(model.config),
                            pad_token_id(tokenizer, family))
    rng = random.Random(preset)
    encoded = []
    for i, pages in enumerate((3, 0, 2, 4)):  # several images of different grids; one text-only sample
        images = [Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
                  for size in ((rng.randrange(40, 260), rng.randrange(40, 260)) for _ in range(pages))]
        refs = tuple(PageRef(doc_id="d", page_index=p, vision_tokens=family.image_tokens(im.height, im.width, **budget))
                     for p, im in enumerate(images))
        question, answer = f"question {i} about the pages?", f"answer {i}"
        sample = SampleRecord(sample_id=f"s{i}", task="extract-single", bucket="b", pages=refs, question=question,
                              answer=answer, answer_format="String", evidence=(), depth=0.0,
                              tokens=template.count([r.vision_tokens for r in refs] + [question], answer))
        encoded.append(encoder.encode(sample, images))
    grids = torch.cat([e.image_grid_thw for e in encoded if e.image_grid_thw is not None])
    assert len({tuple(g) for g in grids.tolist()}) >= 5  # the rows' images really have different grids
    with torch.no_grad():
        reference = [model(input_ids=e.input_ids[None], mm_token_type_ids=e.mm_token_type_ids[None],
                           pixel_values=e.pixel_values, image_grid_thw=e.image_grid_thw, use_cache=False).logits[0]
                     for e in encoded]
    return preset, model, encoder, encoded, reference


def _loss_sum(logits, labels):
    """Summed next-token cross-entropy in float64 over the answer tokens, shifting as HF does."""
    return F.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE_INDEX, reduction="sum")


def _diffs(logits, batch, reference, encoded):
    """(max |logit diff|, max |loss diff|) of each sample of each row against the sample alone."""
    logit_diff = loss_diff = 0.0
    i = 0
    for row, lengths in enumerate(batch.seq_lens):
        start = 0
        for n in lengths:
            piece, e = logits[row, start:start + n], encoded[i]
            logit_diff = max(logit_diff, (piece - reference[i]).abs().max().item())
            loss_diff = max(loss_diff, abs(_loss_sum(piece, e.labels) - _loss_sum(reference[i], e.labels)).item())
            start, i = start + n, i + 1
    return logit_diff, loss_diff


@pytest.mark.parametrize("attention", ["sdpa", "sdpa_packed"])
def test_packed_rows_equal_each_sample_alone_in_float64(setup, attention):
    preset, model, encoder, encoded, reference = setup
    register()
    model.set_attn_implementation(attention)
    try:
        one = collate_packed([encoded], pad_token_id=encoder.pad_token_id)
        two = collate_packed([encoded[:2], encoded[2:]], pad_token_id=encoder.pad_token_id,
                             pad_to=sum(len(e) for e in encoded[2:]) + 7)  # a padding tail in both rows
        with torch.no_grad():
            diffs = [_diffs(model(**batch.model_inputs()).logits, batch, reference, encoded) for batch in (one, two)]
    finally:
        model.set_attn_implementation("sdpa")
    print(f"\n{preset} {attention}: max |logit diff| {max(d[0] for d in diffs):.2e}, "
          f"max |loss diff| {max(d[1] for d in diffs):.2e}")
    assert all(logit < 1e-9 and loss < 1e-9 for logit, loss in diffs), diffs


def test_negative_controls_fail_for_every_family(setup):
    """Text positions that run on, only the 3 mRoPE rows, or a cache left on: samples attend to each other."""
    preset, model, encoder, encoded, reference = setup
    batch = collate_packed([encoded], pad_token_id=encoder.pad_token_id)
    inputs = batch.model_inputs()
    continuous = inputs["position_ids"].clone()
    continuous[0] = torch.arange(continuous.shape[-1])
    with torch.no_grad():
        variants = {"continuous": {"position_ids": continuous}, "three_rows": {"position_ids": continuous[1:]},
                    "use_cache": {"use_cache": True}}
        diffs = {name: _diffs(model(**{**inputs, **change}).logits, batch, reference, encoded)[0]
                 for name, change in variants.items()}
    assert all(d > 1e-3 for d in diffs.values()), (preset, diffs)


def test_qwen3_vl_deepstack_is_injected_and_survives_packing(tokenizer):
    """The DeepStack features change the logits (so the packed == alone equality covers them): two vision blocks
    feed two of the three decoder layers."""
    _, model, _, encoded, reference = prepare(tokenizer, "tiny-qwen3-vl")
    e = encoded[0]
    config = model.config
    assert config.vision_config.deepstack_visual_indexes == [0, 1] and config.text_config.num_hidden_layers == 3
    stack = model.model.visual.deepstack_merger_list
    saved = [p.detach().clone() for p in stack.parameters()]
    with torch.no_grad():
        for p in stack.parameters():
            p.zero_()
        try:
            without = model(input_ids=e.input_ids[None], mm_token_type_ids=e.mm_token_type_ids[None],
                            pixel_values=e.pixel_values, image_grid_thw=e.image_grid_thw, use_cache=False).logits[0]
        finally:
            for p, s in zip(stack.parameters(), saved):
                p.copy_(s)
    assert (without - reference[0]).abs().max().item() > 1e-3


def test_qwen3_vl_video_with_timestamps_packs_exactly(tokenizer):
    """A video sample (frames split by ``<t seconds>`` text, each frame its own group of positions) packed between
    two image samples gives the logits it gives alone (model-level: mmprolong's records hold pages, not videos)."""
    family = PRESETS["tiny-qwen3-vl"]
    model = build_preset_model(tokenizer, "tiny-qwen3-vl", seed=1, dtype="float64").eval()
    template = ChatTemplate(tokenizer, family=family)
    rope = family.rope_index(model.config)
    ids = tokenizer.convert_tokens_to_ids
    t = family.tokens
    generator = torch.Generator().manual_seed(0)

    def video_sample(frames: int, height: int, width: int, text: str):
        grid = torch.tensor([[frames, height, width]])
        pads = height * width // family.merge_size**2
        tokens = list(template.prefix)
        for k in range(frames):  # one temporal patch per timestamp, as Qwen3VLProcessor writes them
            tokens += template.text_ids(f"<{0.5 + 2 * k:.1f} seconds>")
            tokens += [ids(t.vision_start)] + [ids(t.video_pad)] * pads + [ids(t.vision_end)]
        input_ids = torch.tensor(tokens + template.text_ids(text) + template.mid)
        types = (input_ids == ids(t.video_pad)).long() * 2
        pixels = torch.randn(frames * height * width, 3 * family.temporal_patch_size * family.patch_size**2,
                             generator=generator, dtype=torch.float64)
        return input_ids, types, pixels, grid

    def image_sample(height: int, width: int, text: str):
        grid = torch.tensor([[1, height, width]])
        input_ids = torch.tensor(template.prompt_ids([height * width // family.merge_size**2, text]))
        pixels = torch.randn(height * width, 3 * family.temporal_patch_size * family.patch_size**2,
                             generator=generator, dtype=torch.float64)
        return input_ids, template.mm_token_type_ids(input_ids), pixels, grid

    image_a, video, image_b = image_sample(4, 6, "a"), video_sample(3, 4, 4, "what happens?"), image_sample(6, 2, "b")
    with torch.no_grad():
        alone = [model(input_ids=image_a[0][None], mm_token_type_ids=image_a[1][None], pixel_values=image_a[2],
                       image_grid_thw=image_a[3], use_cache=False).logits[0],
                 model(input_ids=video[0][None], mm_token_type_ids=video[1][None], pixel_values_videos=video[2],
                       video_grid_thw=video[3], use_cache=False).logits[0],
                 model(input_ids=image_b[0][None], mm_token_type_ids=image_b[1][None], pixel_values=image_b[2],
                       image_grid_thw=image_b[3], use_cache=False).logits[0]]
        positions = [family.sample_positions(rope, image_a[0], image_a[1], image_a[3]),
                     family.sample_positions(rope, video[0], video[1], None, video[3]),
                     family.sample_positions(rope, image_b[0], image_b[1], image_b[3])]
        frame_starts = positions[1][1][video[1] == 2].unique()
        assert len(frame_starts) == 3  # every frame's temporal position is its own start position
        packed = model(input_ids=torch.cat([image_a[0], video[0], image_b[0]])[None],
                       mm_token_type_ids=torch.cat([image_a[1], video[1], image_b[1]])[None],
                       pixel_values=torch.cat([image_a[2], image_b[2]]), image_grid_thw=torch.cat([image_a[3],
                                                                                                   image_b[3]]),
                       pixel_values_videos=video[2], video_grid_thw=video[3],
                       position_ids=torch.cat(positions, dim=1)[:, None], use_cache=False).logits[0]
    start, diff = 0, 0.0
    for reference in alone:
        diff = max(diff, (packed[start:start + len(reference)] - reference).abs().max().item())
        start += len(reference)
    assert diff < 1e-9, diff
