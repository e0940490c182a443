"""collate.py: a packed row computes exactly what the unmodified model computes for each sample alone."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from train_fixtures import make_samples, sample_images

from mmprolong.errors import DataError
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.train.collate import (
    IGNORE_INDEX,
    SampleEncoder,
    collate_packed,
    collate_padded,
    encode_sample,
)
from mmprolong.train.loss import answer_loss_sum


@pytest.fixture(scope="module")
def encoder(tokenizer, image_processor, tiny_model64):
    return SampleEncoder.build(tokenizer, image_processor, tiny_model64.config)


@pytest.fixture(scope="module")
def four(page_store, template, encoder):
    """4 samples of different lengths with different images, encoded."""
    _, images = page_store
    samples = make_samples(images, template, count=4, seed=3)
    assert len({s.tokens for s in samples}) == 4 and all(s.pages for s in samples)
    return samples, [encoder.encode(s, sample_images(s, images)) for s in samples]


@pytest.fixture(scope="module")
def reference(four, tiny_model64):
    """Each sample run alone through the unmodified model: positions computed by the model itself."""
    _, encoded = four
    with torch.no_grad():
        return [tiny_model64(input_ids=e.input_ids[None], mm_token_type_ids=e.mm_token_type_ids[None],
                             pixel_values=e.pixel_values, image_grid_thw=e.image_grid_thw, labels=e.labels[None])
                for e in encoded]


def _segments(batch):
    start = 0
    for n in batch.seq_lens[0]:
        yield start, start + n
        start += n


def _max_segment_diff(logits, batch, reference):
    return max((logits[0, a:b] - ref.logits[0]).abs().max().item()
               for (a, b), ref in zip(_segments(batch), reference))


def _float64_loss_sum(logits, labels):
    """Summed next-token cross-entropy in float64, shifting as HF does."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).double(), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")


def test_packed_row_equals_each_sample_alone_in_float64(four, reference, tiny_model64, encoder):
    _, encoded = four
    batch = collate_packed([encoded], pad_token_id=encoder.pad_token_id)
    with torch.no_grad():
        out = tiny_model64(**batch.model_inputs())
        loss_sum, count = answer_loss_sum(tiny_model64, batch)
    diff = _max_segment_diff(out.logits, batch, reference)
    print(f"\npacked vs one-by-one, float64: max |logit diff| = {diff:.3e}")
    assert out.logits.dtype == torch.float64
    assert diff < 1e-9
    # Summed loss over answer tokens: float64 from logits, and HF's own loss (which upcasts to float32 only).
    alone = sum(_float64_loss_sum(r.logits, e.labels[None]) for r, e in zip(reference, encoded))
    assert count.item() == sum(e.num_target_tokens for e in encoded) == batch.num_target_tokens.sum().item()
    assert abs(loss_sum.item() - alone.item()) < 1e-9
    assert abs(_float64_loss_sum(out.logits, batch.labels).item() - alone.item()) < 1e-9
    hf_alone = sum(r.loss.item() * e.num_target_tokens for r, e in zip(reference, encoded))
    assert out.loss.item() * count.item() == pytest.approx(hf_alone, rel=1e-6)


def test_sdpa_packed_computes_each_sample_block_alone(four, reference, tiny_model64, encoder):
    """The per-sample SDPA kernel gives the samples-alone logits, for one row and for a batch of two rows."""
    from mmprolong.models.attention import register

    samples, encoded = four
    register()
    tiny_model64.set_attn_implementation("sdpa_packed")
    try:
        one = collate_packed([encoded], pad_token_id=encoder.pad_token_id)
        two = collate_packed([encoded[:2], encoded[2:]], pad_token_id=encoder.pad_token_id)
        with torch.no_grad():
            one_out = tiny_model64(**one.model_inputs()).logits
            two_out = tiny_model64(**two.model_inputs()).logits
    finally:
        tiny_model64.set_attn_implementation("sdpa")
    diff = _max_segment_diff(one_out, one, reference)
    starts = [0, 0]
    diffs = []
    for row, pair in enumerate([(0, 1), (2, 3)]):
        for i, n in zip(pair, two.seq_lens[row]):
            diffs.append((two_out[row, starts[row]:starts[row] + n] - reference[i].logits[0]).abs().max().item())
            starts[row] += n
    print(f"\nsdpa_packed vs one-by-one, float64: {diff:.3e} (one row), {max(diffs):.3e} (two rows)")
    assert diff < 1e-12 and max(diffs) < 1e-12


def test_negative_controls_fail_the_equality(four, reference, tiny_model64, encoder):
    """Positions that do not restart, or a cache left on, make the model attend across samples."""
    _, encoded = four
    batch = collate_packed([encoded], pad_token_id=encoder.pad_token_id)
    inputs = batch.model_inputs()
    continuous = inputs["position_ids"].clone()
    continuous[0] = torch.arange(continuous.shape[-1])  # text positions run on across the row
    three_rows = inputs["position_ids"][1:]  # restarts only in the mRoPE rows: packing is not detected
    with torch.no_grad():
        diffs = {
            "continuous": _max_segment_diff(tiny_model64(**{**inputs, "position_ids": continuous}).logits, batch,
                                            reference),
            "three_rows": _max_segment_diff(tiny_model64(**{**inputs, "position_ids": three_rows}).logits, batch,
                                            reference),
            "use_cache": _max_segment_diff(tiny_model64(**{**inputs, "use_cache": True}).logits, batch, reference),
        }
    print(f"\nnegative controls: {diffs}")
    assert all(d > 1e-3 for d in diffs.values()), diffs


def test_padded_batch_equals_each_sample_alone(four, reference, tiny_model64, encoder):
    _, encoded = four
    batch = collate_padded(encoded, pad_token_id=encoder.pad_token_id)
    assert batch.position_ids.shape[0] == 3 and batch.attention_mask is not None
    with torch.no_grad():
        logits = tiny_model64(**batch.model_inputs()).logits
    diff = max((logits[i, : len(e)] - r.logits[0]).abs().max().item()
               for i, (e, r) in enumerate(zip(encoded, reference)))
    assert diff < 1e-9
    assert batch.num_target_tokens.tolist() == [e.num_target_tokens for e in encoded]


def test_labels_positions_and_token_types_of_a_packed_row(four, encoder, tokenizer, tiny_model64):
    samples, encoded = four
    batch = collate_packed([encoded], pad_token_id=encoder.pad_token_id)
    labels, ids = batch.labels[0], batch.input_ids[0]
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert torch.equal(batch.mm_token_type_ids[0], (ids == image_pad).long())
    assert batch.cu_seqlens.tolist() == [0, *torch.tensor(batch.seq_lens[0]).cumsum(0).tolist()]
    for (a, b), sample, e in zip(_segments(batch), samples, encoded):
        targets = labels[a:b][labels[a:b] != IGNORE_INDEX]
        assert tokenizer.decode(targets) == sample.answer + "<|im_end|>"  # exactly the answer + <|im_end|>
        assert labels[a] == IGNORE_INDEX and labels[b - 1] == IGNORE_INDEX  # nothing predicted across a boundary
        assert torch.equal(batch.position_ids[0, 0, a:b], torch.arange(b - a))  # text positions restart
        alone = tiny_model64.model.get_rope_index(e.input_ids[None], e.mm_token_type_ids[None],
                                                  image_grid_thw=e.image_grid_thw)[0][:, 0]
        assert torch.equal(batch.position_ids[1:, 0, a:b], alone)  # the model's own mRoPE for the sample alone
        assert batch.position_ids[1:, 0, a].tolist() == [0, 0, 0]
        pads = (e.input_ids == image_pad).sum().item()
        assert pads == sum(p.vision_tokens for p in sample.pages) == (e.image_grid_thw.prod(-1) // 4).sum().item()
    assert torch.equal(batch.pixel_values, torch.cat([e.pixel_values for e in encoded]))
    assert torch.equal(batch.image_grid_thw, torch.cat([e.image_grid_thw for e in encoded]))
    # HF shifts labels itself: its loss is next-token CE against labels[1:]; the kept logits are exactly those.
    with torch.no_grad():
        out = tiny_model64(**batch.model_inputs())
    manual = _float64_loss_sum(out.logits, batch.labels) / batch.num_target_tokens.sum()
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-6)
    assert batch.target_ids().tolist() == labels[labels != IGNORE_INDEX].tolist()
    kept = F.cross_entropy(out.logits[batch.logits_mask()], batch.target_ids(), reduction="sum")
    assert abs(kept.item() - _float64_loss_sum(out.logits, batch.labels).item()) < 1e-9


def test_rope_index_matches_the_model_and_pickles(four, tiny_model64):
    import pickle

    _, encoded = four
    e = encoded[0]
    rope = pickle.loads(pickle.dumps(DEFAULT_FAMILY.rope_index(tiny_model64.config)))
    ours = rope(e.input_ids[None], e.mm_token_type_ids[None], e.image_grid_thw)
    model = tiny_model64.model.get_rope_index(e.input_ids[None], e.mm_token_type_ids[None],
                                              image_grid_thw=e.image_grid_thw)[0]
    assert torch.equal(ours, model)


def test_rows_padded_to_a_length_keep_their_outputs(four, reference, tiny_model64, encoder):
    _, encoded = four
    rows = [encoded[:2], encoded[2:]]
    batch = collate_packed(rows, pad_token_id=encoder.pad_token_id, pad_to=400)
    assert batch.input_ids.shape == (2, 400)
    assert batch.num_tokens.tolist() == [sum(len(e) for e in r) for r in rows]
    with torch.no_grad():
        logits = tiny_model64(**batch.model_inputs()).logits
    diffs, i = [], 0
    for r, row in enumerate(rows):
        start = 0
        for e in row:
            diffs.append((logits[r, start:start + len(e)] - reference[i].logits[0]).abs().max().item())
            start, i = start + len(e), i + 1
    assert max(diffs) < 1e-9
    with pytest.raises(ValueError, match="shorter than the longest row"):
        collate_packed(rows, pad_token_id=encoder.pad_token_id, pad_to=10)


def test_vision_token_mismatch_names_sample_and_page(four, page_store, encoder):
    samples, _ = four
    _, images = page_store
    sample = samples[1]
    pages = list(sample.pages)
    pages[-1] = dataclasses.replace(pages[-1], vision_tokens=pages[-1].vision_tokens + 4)
    bad = dataclasses.replace(sample, pages=tuple(pages), tokens=sample.tokens + 4)
    with pytest.raises(DataError, match=rf"sample {bad.sample_id} page {len(pages) - 1} \(document .* says "
                                        rf"{pages[-1].vision_tokens} vision tokens"):
        encoder.encode(bad, sample_images(bad, images))


def test_length_mismatch_and_missing_images_raise(four, page_store, encoder):
    samples, _ = four
    _, images = page_store
    wrong = dataclasses.replace(samples[0], tokens=samples[0].tokens + 1)
    with pytest.raises(DataError, match=f"sample {wrong.sample_id}: encodes to"):
        encoder.encode(wrong, sample_images(wrong, images))
    with pytest.raises(DataError, match="images given"):
        encode_sample(samples[0], [], template=encoder.template, image_processor=encoder.image_processor,
                      rope_index=encoder.rope_index)


def test_text_only_sample_packs_with_image_samples(four, reference, page_store, template, encoder, tiny_model64):
    samples, encoded = four
    text_only = dataclasses.replace(samples[0], sample_id="text", pages=(), evidence=(),
                                    tokens=template.count([samples[0].question], samples[0].answer))
    e = encoder.encode(text_only, [])
    assert e.pixel_values is None
    batch = collate_packed([[encoded[0], e, encoded[1]]], pad_token_id=encoder.pad_token_id)
    with torch.no_grad():
        logits = tiny_model64(**batch.model_inputs()).logits
        alone = tiny_model64(input_ids=e.input_ids[None]).logits
    a, b = len(encoded[0]), len(encoded[0]) + len(e)
    assert (logits[0, a:b] - alone[0]).abs().max().item() < 1e-9
    assert (logits[0, b:] - reference[1].logits[0]).abs().max().item() < 1e-9


def test_batch_moves_and_lists_its_model_inputs(four, encoder):
    _, encoded = four
    batch = collate_packed([encoded[:2]], pad_token_id=encoder.pad_token_id)
    moved = batch.to("cpu")
    assert torch.equal(moved.input_ids, batch.input_ids) and moved.sample_ids == batch.sample_ids
    inputs = batch.model_inputs(labels=False)
    assert inputs["use_cache"] is False and inputs["attention_mask"] is None and "labels" not in inputs
    assert "cu_seqlens" not in inputs  # reference only: passing it would reach the vision tower's kwargs too


def test_each_followup_answer_is_a_target_of_its_sample(four, page_store, template, encoder, tokenizer):
    from mmprolong.records import FollowUp

    samples, _ = four
    _, images = page_store
    turns = (FollowUp(question="And the next one?", answer="north hall", answer_format="String", evidence=(0,)),
             FollowUp(question="Which year?", answer="1987", answer_format="String", evidence=(0,)))
    sample = samples[0]
    parts = [p.vision_tokens for p in sample.pages] + [sample.question]
    tokens = template.count(parts, sample.answer, [(f.question, f.answer) for f in turns])
    longer = dataclasses.replace(sample, followups=turns, tokens=tokens)
    encoded = encoder.encode(longer, sample_images(longer, images))
    assert len(encoded.input_ids) == tokens > sample.tokens
    targets = encoded.labels[encoded.labels != IGNORE_INDEX]
    assert tokenizer.decode(targets) == f"{sample.answer}<|im_end|>north hall<|im_end|>1987<|im_end|>"
    with pytest.raises(DataError, match="encodes to"):  # the record's length must count the follow-ups
        encoder.encode(dataclasses.replace(longer, tokens=sample.tokens), sample_images(longer, images))


def _skipped_encoder(encoder, factor, seed=0):
    return dataclasses.replace(encoder, position_skip=factor, skip_seed=seed)


def test_position_skip_moves_the_mrope_rows_once_at_a_page_boundary(four, page_store, encoder):
    samples, encoded = four
    _, images = page_store
    template = encoder.template
    skipped = [_skipped_encoder(encoder, 3.0).encode(s, sample_images(s, images)) for s in samples]
    moved = 0
    for plain, skip in zip(encoded, skipped):
        assert torch.equal(skip.position_ids[0], plain.position_ids[0])  # the rows' sample boundaries stay
        assert torch.equal(skip.input_ids, plain.input_ids) and torch.equal(skip.labels, plain.labels)
        delta = skip.position_ids[1:] - plain.position_ids[1:]
        assert (delta == delta[0]).all()  # t, h and w move together
        jumps = (delta[0, 1:] != delta[0, :-1]).nonzero().flatten().tolist()
        span = int(plain.position_ids[1:].max()) + 1
        assert delta[0, 0] == 0 and 0 <= delta[0, -1] <= 2 * span and len(jumps) <= 1
        if jumps:
            moved += 1
            cut = jumps[0] + 1
            ids = plain.input_ids
            page_starts = (ids == template.vision_start).nonzero().flatten().tolist()
            after_pages = int((ids == template.vision_end).nonzero().flatten()[-1]) + 1
            assert cut in page_starts[1:] + [after_pages]  # never inside a page or before the first
    assert moved >= 3  # a skip of 0 is possible, but not for most samples
    again = [_skipped_encoder(encoder, 3.0).encode(s, sample_images(s, images)) for s in samples]
    other = [_skipped_encoder(encoder, 3.0, seed=1).encode(s, sample_images(s, images)) for s in samples]
    assert all(torch.equal(a.position_ids, b.position_ids) for a, b in zip(skipped, again))
    assert any(not torch.equal(a.position_ids, b.position_ids) for a, b in zip(skipped, other))
    off = [_skipped_encoder(encoder, 1.0).encode(s, sample_images(s, images)) for s in samples]
    assert all(torch.equal(a.position_ids, b.position_ids) for a, b in zip(off, encoded))


def test_position_skip_packs_exactly_and_changes_the_outputs(four, page_store, encoder, reference, tiny_model64):
    """A packed row of skipped samples computes what each sample computes alone at its skipped mRoPE positions."""
    samples, _ = four
    _, images = page_store
    skipped = [_skipped_encoder(encoder, 3.0).encode(s, sample_images(s, images)) for s in samples]
    batch = collate_packed([skipped], pad_token_id=encoder.pad_token_id)
    with torch.no_grad():
        packed = tiny_model64(**batch.model_inputs()).logits
        alone = [tiny_model64(input_ids=e.input_ids[None], mm_token_type_ids=e.mm_token_type_ids[None],
                              position_ids=e.position_ids[1:, None], pixel_values=e.pixel_values,
                              image_grid_thw=e.image_grid_thw) for e in skipped]
    assert _max_segment_diff(packed, batch, alone) < 1e-9
    assert _max_segment_diff(packed, batch, reference) > 1e-4  # the skip is seen by the model


def test_position_skip_leaves_a_text_only_sample_as_it_is(four, template, encoder):
    samples, _ = four
    text = dataclasses.replace(samples[0], sample_id="text", pages=(), evidence=(),
                               tokens=template.count([samples[0].question], samples[0].answer))
    a = encoder.encode(text, [])
    b = _skipped_encoder(encoder, 4.0).encode(text, [])
    assert torch.equal(a.position_ids, b.position_ids)
