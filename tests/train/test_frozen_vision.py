"""A frozen vision tower's features memoised per image: the same losses and gradients as running the tower on every
row, each distinct image encoded once, off when the tower trains; and the byte-bounded cache beneath it."""

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

from mmprolong.errors import ConfigError
from mmprolong.models import family_of_config, family_of_preset
from mmprolong.models.features import FeatureCache
from mmprolong.models.loading import load_model
from mmprolong.train.collate import SampleEncoder, image_key
from mmprolong.train.data import PackedRows
from mmprolong.train.frozen_vision import FrozenVisionFeatures
from mmprolong.train.loss import answer_loss_sum
from mmprolong.train.run import train

FROZEN = {"model.train_vision": False, "model.train_merger": False, "model.dtype": "float64",
          "checkpoint.save_final": False}


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def first_rows(config, data_dir, count: int):
    model, tokenizer, image_processor = load_model(config.model)
    rows = PackedRows(data_dir, SampleEncoder.build(tokenizer, image_processor, model.config), max_seq_len=512,
                      seed=0)
    return model, [rows.build_row(r, epoch=0, row=i) for i, r in enumerate(rows.rank_rows(0)[:count])]


def test_memoised_features_train_as_the_tower_does(make_train_config, tmp_path):
    memo = train(make_train_config(tmp_path / "memo", steps=4, **FROZEN))
    tower = train(make_train_config(tmp_path / "tower", steps=4, **FROZEN, **{"parallel.vision_cache_mb": 0}))
    a, b = metrics(tmp_path / "memo"), metrics(tmp_path / "tower")
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-12
    assert max(abs(x["grad_norm"] - y["grad_norm"]) for x, y in zip(a, b)) < 1e-12
    assert tower["vision_features"] is None
    stats = memo["vision_features"]
    assert stats["images"] > 0 and 0 < stats["encoded"] <= stats["images"] and stats["cache_mb"] > 0


def test_an_image_is_encoded_once_and_its_features_reused_exactly(make_train_config, tmp_path, data_dir):
    config = make_train_config(tmp_path / "run", **FROZEN)
    model, rows = first_rows(config, data_dir[0], 2)
    features = FrozenVisionFeatures(family_of_config(model.config), 1 << 30)
    images = sum(len(r.image_grid_thw) for r in rows)
    distinct = len({bytes(p.numpy().tobytes()) for r in rows
                    for p in r.pixel_values.split(r.image_grid_thw.prod(dim=1).tolist())})
    with torch.no_grad():
        plain = [answer_loss_sum(model, r)[0] for r in rows]
        first = [answer_loss_sum(model, r, images=features)[0] for r in rows]
        assert (features.images, features.encoded) == (images, distinct) and len(features.cache) == distinct
        again = [answer_loss_sum(model, r, images=features)[0] for r in rows]
    assert (features.images, features.encoded) == (2 * images, distinct)
    assert features.stats()["reused"] == round(1 - distinct / (2 * images), 4)
    assert [float(x) for x in again] == [float(x) for x in first]  # bitwise: the same stored tensors
    assert [float(x) for x in first] == pytest.approx([float(x) for x in plain], abs=1e-12)


def test_images_are_keyed_by_their_pixels_where_the_rows_are_made(make_train_config, tmp_path, data_dir):
    config = make_train_config(tmp_path / "run", **FROZEN)
    model, rows = first_rows(config, data_dir[0], 2)
    images = [(p, g) for r in rows for p, g in zip(r.pixel_values.split(r.image_grid_thw.prod(dim=1).tolist()),
                                                     r.image_grid_thw)]
    keys = [k for r in rows for k in r.image_keys]
    assert len(keys) == len(images) and len(set(keys)) < len(keys)  # pages recur across the rows' samples
    same_key = {(i, j) for i in range(len(keys)) for j in range(len(keys)) if keys[i] == keys[j]}
    same_image = {(i, j) for i, (p, g) in enumerate(images) for j, (q, h) in enumerate(images)
                  if torch.equal(g, h) and torch.equal(p, q)}
    assert same_key == same_image
    features = FrozenVisionFeatures(family_of_config(model.config), 1 << 30)
    with pytest.raises(ValueError, match="image_keys"):
        features(model, replace(rows[0], image_keys=()))


def test_an_image_key_changes_with_any_pixel_and_any_processor_setting():
    family = family_of_preset("tiny")
    settings = family.image_processor().to_json_string()
    page = Image.new("RGB", (56, 84), "white")
    key = image_key(page, settings)
    assert image_key(page.copy(), settings) == key
    nudged = page.copy()
    nudged.putpixel((55, 83), (255, 255, 254))
    assert image_key(nudged, settings) != key
    assert image_key(page.convert("L"), settings) != key
    assert image_key(page, family.image_processor(max_pixels=2 * family.min_pixels).to_json_string()) != key


def test_a_trained_tower_is_never_memoised(make_train_config, tmp_path):
    summary = train(make_train_config(tmp_path / "run", steps=1, **{"model.train_vision": False,
                                                                    "checkpoint.save_final": False}))
    assert summary["vision_features"] is None  # the merger still trains


def test_the_cache_drops_the_least_recently_used_past_its_bytes():
    cache = FeatureCache(max_bytes=3 * 400)
    for key in "abc":
        cache.put(key, ((torch.zeros(100),), "grid"))  # 400 bytes each
    assert len(cache) == 3 and cache.bytes == 1200
    assert cache.get("a")[1] == "grid"  # "a" is now the most recent
    cache.put("d", ((torch.zeros(100),),))
    assert "b" not in cache and {"a", "c", "d"} == {k for k in "abcd" if k in cache}
    cache.put("e", ((torch.zeros(1000),),))  # larger than the bound alone: kept, every other entry dropped
    assert len(cache) == 1 and "e" in cache and cache.bytes == 4000 and cache.get("zz") is None


def test_a_negative_cache_size_is_refused(make_train_config, tmp_path):
    with pytest.raises(ConfigError, match="vision_cache_mb"):
        make_train_config(tmp_path / "run", **{"parallel.vision_cache_mb": -1})
