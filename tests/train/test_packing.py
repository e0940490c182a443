"""packing.py (first-fit decreasing) and data.py (the packed, sharded, resumable stream of rows)."""

import json
import random
from collections import Counter
from itertools import islice

import pytest
import torch
from train_fixtures import QWEN3_MIN_PIXELS, sample_images

from mmprolong.errors import ConfigError, DataError, ResumeError
from mmprolong.models import DEFAULT_FAMILY, get_family
from mmprolong.train.collate import SampleEncoder, collate_packed
from mmprolong.train.data import DataConfig, PackedLoader, PackedRows
from mmprolong.train.packing import pack_first_fit_decreasing, packing_efficiency

# --- packing.py -------------------------------------------------------------------------------------------


def _naive_ffd(lengths, capacity):
    rows, free = [], []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, room in enumerate(free):
            if room >= lengths[i]:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(capacity - lengths[i])
    return rows


def test_exact_fit_fills_rows_completely():
    bins = pack_first_fit_decreasing([3, 7, 5, 5], 10)
    assert bins == [[1, 0], [2, 3]]
    assert packing_efficiency(bins, [3, 7, 5, 5], 10) == 1.0


def test_all_equal_lengths_ties_broken_by_index():
    assert pack_first_fit_decreasing([4] * 5, 8) == [[0, 1], [2, 3], [4]]
    assert packing_efficiency([[0, 1], [2, 3], [4]], [4] * 5, 8) == pytest.approx(20 / 24)
    assert pack_first_fit_decreasing([5, 5], 5) == [[0], [1]]  # an item as long as a row fits alone


def test_one_huge_item_is_refused_by_name():
    with pytest.raises(DataError, match="item 2 has 11 tokens"):
        pack_first_fit_decreasing([3, 4, 11, 2], 10)


def test_empty_and_bad_inputs():
    assert pack_first_fit_decreasing([], 10) == []
    assert packing_efficiency([], [], 10) == 1.0
    with pytest.raises(ValueError):
        pack_first_fit_decreasing([1], 0)
    with pytest.raises(ValueError):
        pack_first_fit_decreasing([3, 0], 10)


def test_matches_naive_first_fit_decreasing_and_keeps_invariants():
    rng = random.Random(0)
    for _ in range(200):
        capacity = rng.randint(1, 60)
        lengths = [rng.randint(1, capacity) for _ in range(rng.randint(0, 80))]
        bins = pack_first_fit_decreasing(lengths, capacity)
        assert bins == _naive_ffd(lengths, capacity)
        assert sorted(i for row in bins for i in row) == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in row) <= capacity for row in bins)
        assert 0 < packing_efficiency(bins, lengths, capacity) <= 1 or not lengths


# --- data.py ----------------------------------------------------------------------------------------------

MAX_LEN = 512


@pytest.fixture(scope="module")
def encoder(tokenizer, image_processor):
    return SampleEncoder.build(tokenizer, image_processor, _tiny_config(tokenizer))


def _tiny_config(tokenizer):
    return DEFAULT_FAMILY.preset_config("tiny", tokenizer, rope_theta=DEFAULT_FAMILY.rope_theta,
                                        max_positions=DEFAULT_FAMILY.max_positions)


def _rows(data_dir, encoder, **kwargs):
    settings = {"max_seq_len": MAX_LEN, "seed": 0, "num_epochs": 1, **kwargs}
    return PackedRows(data_dir, encoder, **settings)


def _ids(batches):
    return [b.sample_ids[0] for b in batches]


def test_one_epoch_holds_every_sample_once_in_a_seeded_order(data_dir, encoder):
    root, samples = data_dir
    first = list(PackedLoader(_rows(root, encoder)))
    again = list(PackedLoader(_rows(root, encoder)))
    other = list(PackedLoader(_rows(root, encoder, seed=1)))
    assert _ids(first) == _ids(again) and _ids(first) != _ids(other)
    assert sorted(s for row in _ids(first) for s in row) == sorted(s.sample_id for s in samples)
    for b in first:
        assert b.input_ids.shape[0] == 1 and b.input_ids.shape[1] <= MAX_LEN and b.position_ids.shape[0] == 4
        assert b.seq_lens[0] == tuple(next(s.tokens for s in samples if s.sample_id == i) for i in b.sample_ids[0])
    assert [b.row for b in first] == list(range(len(first))) and {b.epoch for b in first} == {0}
    assert torch.equal(first[0].pixel_values, again[0].pixel_values)


def test_epochs_reshuffle(data_dir, encoder):
    root, _ = data_dir
    stream = list(PackedLoader(_rows(root, encoder, num_epochs=2)))
    epochs = Counter(b.epoch for b in stream)
    assert epochs[0] == epochs[1] > 0
    assert _ids([b for b in stream if b.epoch == 0]) != _ids([b for b in stream if b.epoch == 1])


def test_two_ranks_cover_each_row_exactly_once(data_dir, encoder):
    root, _ = data_dir
    whole = _rows(root, encoder)
    rows = [tuple(r) for r in whole.global_rows(0)]
    ranks = [_rows(root, encoder, rank=r, world_size=2) for r in (0, 1)]
    seen = [tuple(r) for d in ranks for r in d.rank_rows(0)]
    kept = rows[: len(rows) - len(rows) % 2]
    assert sorted(seen) == sorted(kept) and len(seen) == len(set(seen))
    assert len(ranks[0].rank_rows(0)) == len(ranks[1].rank_rows(0))  # same number of steps on every rank
    assert ranks[0].stats["rows_dropped_per_epoch"] == len(rows) % 2
    streamed = [b.sample_ids[0] for d in ranks for b in PackedLoader(d)]
    assert sorted(streamed) == sorted(tuple(whole.samples[i].sample_id for i in r) for r in kept)


def test_resume_continues_with_the_identical_next_row(data_dir, encoder):
    root, _ = data_dir
    full = list(PackedLoader(_rows(root, encoder, num_epochs=2)))
    per_epoch = sum(b.epoch == 0 for b in full)
    for stop in (3, per_epoch):  # inside an epoch and exactly at its end
        loader = PackedLoader(_rows(root, encoder, num_epochs=2))
        list(islice(loader, stop))
        state = json.loads(json.dumps(loader.state_dict()))  # as a checkpoint would store it
        resumed = PackedLoader(_rows(root, encoder, num_epochs=2))
        resumed.load_state_dict(state)
        rest = list(resumed)
        assert _ids(rest) == _ids(full[stop:])
        assert torch.equal(rest[0].input_ids, full[stop].input_ids)
        assert torch.equal(rest[0].pixel_values, full[stop].pixel_values)
    with pytest.raises(ResumeError, match="seed"):
        PackedLoader(_rows(root, encoder, num_epochs=2, seed=5)).load_state_dict(state)


def test_workers_give_the_same_stream_and_resume(data_dir, encoder):
    root, _ = data_dir
    serial = list(PackedLoader(_rows(root, encoder, num_epochs=2)))
    loader = PackedLoader(_rows(root, encoder, num_epochs=2), num_workers=2)
    head = list(islice(loader, 5))  # workers have prefetched beyond row 5; the state counts what was received
    state = loader.state_dict()
    resumed = PackedLoader(_rows(root, encoder, num_epochs=2), num_workers=2)
    resumed.load_state_dict(state)
    stream = head + list(resumed)
    assert _ids(stream) == _ids(serial)
    assert all(torch.equal(a.input_ids, b.input_ids) and torch.equal(a.pixel_values, b.pixel_values)
               for a, b in zip(stream, serial))


def test_over_long_samples_are_skipped_and_counted(data_dir, encoder):
    root, samples = data_dir
    limit = sorted(s.tokens for s in samples)[-5]  # 4 samples are longer (lengths are distinct enough)
    too_long = {s.sample_id for s in samples if s.tokens > limit}
    rows = _rows(root, encoder, max_seq_len=limit)
    assert rows.stats["skipped_too_long"] == len(too_long) > 0
    assert rows.stats["samples_kept"] == len(samples) - len(too_long)
    streamed = {i for b in PackedLoader(rows) for i in b.sample_ids[0]}
    assert not streamed & too_long and len(streamed) == len(samples) - len(too_long)


def test_a_sample_that_fails_to_encode_is_dropped_from_its_row_and_counted(data_dir, encoder):
    import dataclasses

    root, _ = data_dir
    rows = _rows(root, encoder)
    victim = rows.kept[0]
    sample = rows.samples[victim]
    rows.samples[victim] = dataclasses.replace(sample, tokens=sample.tokens + 1)  # as if another tokenizer
    loader = PackedLoader(rows)
    batches = list(loader)
    assert loader.stats["skipped_encode_failed"] == 1
    assert [b.skipped[0][0] for b in batches if b.skipped] == [sample.sample_id]
    assert sample.sample_id not in {i for b in batches for i in b.sample_ids[0]}


def test_pixel_budget_of_the_data_must_match_the_model(data_dir, tokenizer):
    root, _ = data_dir
    small = DEFAULT_FAMILY.image_processor(max_pixels=DEFAULT_FAMILY.pixels_for_tokens(64))
    other = SampleEncoder.build(tokenizer, small, _tiny_config(tokenizer))
    with pytest.raises(ConfigError, match="model.max_pixels"):
        _rows(root, other)


def test_family_of_the_data_must_match_the_model(data_dir, qwen3_data, tokenizer):
    """Data counted for Qwen2.5-VL (28-px tokens) cannot feed a Qwen3-VL model, and the other way round."""
    family = get_family("qwen3_vl")
    config = family.preset_config("tiny-qwen3-vl", tokenizer, rope_theta=family.rope_theta, max_positions=4096)
    qwen3 = SampleEncoder.build(tokenizer, family.image_processor(min_pixels=QWEN3_MIN_PIXELS), config)
    with pytest.raises(ConfigError, match="model.family"):
        _rows(data_dir[0], qwen3)
    with pytest.raises(ConfigError, match="counts vision tokens for qwen3_vl"):
        _rows(qwen3_data[0], SampleEncoder.build(tokenizer, DEFAULT_FAMILY.image_processor(), _tiny_config(tokenizer)))
    assert _rows(qwen3_data[0], qwen3).stats["samples_kept"] == len(qwen3_data[2])
    with pytest.raises(ConfigError, match=f"{qwen3_data[0]} counts vision tokens for qwen3_vl"):  # a mixed-in one too
        _rows(data_dir[0], SampleEncoder.build(tokenizer, DEFAULT_FAMILY.image_processor(), _tiny_config(tokenizer)),
              mix_dirs=[qwen3_data[0]])


def test_mixed_folders_are_one_pool_each_sample_read_from_its_own_store(data_dir, mix_data, page_store, encoder):
    (root, samples), (other, extra, images) = data_dir, mix_data
    rows = _rows(root, encoder, mix_dirs=[other], num_epochs=2)
    stream = list(PackedLoader(rows))
    epoch0 = [i for b in stream if b.epoch == 0 for i in b.sample_ids[0]]
    assert sorted(epoch0) == sorted(s.sample_id for s in samples + extra)
    assert any({i[0] for i in b.sample_ids[0]} == {"s", "m"} for b in stream)  # the folders share rows
    assert rows.stats["tokens_per_epoch_by_folder"] == [sum(s.tokens for s in samples), sum(s.tokens for s in extra)]
    # the mixed-in folder's pages come from its own store, though data_dir's store holds the same (doc, page) ids
    sample = extra[0]
    got = rows.build_row([rows.samples.index(sample)]).pixel_values
    own = collate_packed([[encoder.encode(sample, sample_images(sample, images))]], pad_token_id=encoder.pad_token_id)
    assert torch.equal(got, own.pixel_values)
    assert [p.tobytes() for p in sample_images(sample, images)] != [
        p.tobytes() for p in sample_images(sample, page_store[1])]
    # a resume inside the mixed stream continues it; a state saved without the mix is refused
    loader = PackedLoader(_rows(root, encoder, mix_dirs=[other], num_epochs=2))
    list(islice(loader, 4))
    resumed = PackedLoader(_rows(root, encoder, mix_dirs=[other], num_epochs=2))
    resumed.load_state_dict(loader.state_dict())
    assert _ids(list(resumed)) == _ids(stream[4:])
    with pytest.raises(ResumeError, match="fingerprint"):
        PackedLoader(_rows(root, encoder)).load_state_dict(loader.state_dict())


def test_data_config_validation():
    assert DataConfig.from_dict({"data_dir": "d"}).max_seq_len == 131072
    with pytest.raises(ConfigError):
        DataConfig.from_dict({"data_dir": "d", "max_seq_len": 0})
    with pytest.raises(ConfigError, match="mix_dirs"):
        DataConfig.from_dict({"data_dir": "d", "mix_dirs": ["e", "./d"]})
    assert DataConfig.from_dict({"data_dir": "d"}).position_skip == 1.0
    for bad in (0.5, float("nan")):
        with pytest.raises(ConfigError, match="position_skip"):
            DataConfig.from_dict({"data_dir": "d", "position_skip": bad})
