"""Fixtures for the train tests: the real tokenizer, the tiny Qwen2.5-VL, a tiny page store and samples.

Pages are small random PNGs (56x84 .. 112x140 px: 6-20 vision tokens) so whole samples are ~100 tokens.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from train_fixtures import (  # noqa: F401
    QWEN3_MIN_PIXELS,
    make_samples,
    random_page_image,
    sample_images,
    write_page_store,
)

from mmprolong.models import DEFAULT_FAMILY, get_family
from mmprolong.models.loading import build_preset_model
from mmprolong.records import SAMPLE_SCHEMA
from mmprolong.template import ChatTemplate


@pytest.fixture(scope="session")
def image_processor():
    return DEFAULT_FAMILY.image_processor()


@pytest.fixture(scope="session")
def tiny_model64(tokenizer):
    """The tiny preset in float64, eval mode (no dropout anyway): exact comparisons."""
    return build_preset_model(tokenizer, seed=0, dtype="float64").eval()


@pytest.fixture(scope="session")
def page_store(tmp_path_factory):
    """(store_dir, {(doc_id, page_index): PIL image}): 6 documents of 5 pages."""
    store_dir = tmp_path_factory.mktemp("store")
    return store_dir, write_page_store(store_dir, docs=6, pages=5, seed=0)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, page_store, template):
    """A synth-style DATA_DIR: 2 sample shards and summary.json whose ``store`` is a relative path."""
    store_dir, images = page_store
    root = tmp_path_factory.mktemp("data")
    samples = make_samples(images, template, count=40, seed=1)
    write_data_dir(root, samples, store_dir, {"min_pixels": DEFAULT_FAMILY.min_pixels,
                                              "max_pixels": DEFAULT_FAMILY.max_pixels})
    return root, samples


@pytest.fixture(scope="session")
def mix_data(tmp_path_factory, template):
    """(DATA_DIR, samples, images) as ``data_dir`` on another page store, whose documents carry ``data_dir``'s ids
    but other pages: a sample read from the wrong store would get the wrong images."""
    store_dir = tmp_path_factory.mktemp("store-mix")
    images = write_page_store(store_dir, docs=6, pages=5, seed=1)
    root = tmp_path_factory.mktemp("data-mix")
    samples = make_samples(images, template, count=30, seed=2, prefix="m")
    write_data_dir(root, samples, store_dir, {"min_pixels": DEFAULT_FAMILY.min_pixels,
                                              "max_pixels": DEFAULT_FAMILY.max_pixels})
    return root, samples, images


@pytest.fixture(scope="session")
def qwen3_data(tmp_path_factory, tokenizer):
    """(DATA_DIR, store_dir, samples) as ``data_dir`` but counted for Qwen3-VL (32-px tokens) at a budget floor of
    ``QWEN3_MIN_PIXELS``."""
    family = get_family("qwen3_vl")
    store_dir = tmp_path_factory.mktemp("store-qwen3")
    images = write_page_store(store_dir, docs=6, pages=5, seed=0, family=family, min_pixels=QWEN3_MIN_PIXELS)
    root = tmp_path_factory.mktemp("data-qwen3")
    samples = make_samples(images, ChatTemplate(tokenizer, family=family), count=40, seed=1,
                           min_pixels=QWEN3_MIN_PIXELS)
    write_data_dir(root, samples, store_dir, {"family": family.name, "min_pixels": QWEN3_MIN_PIXELS,
                                              "max_pixels": family.max_pixels})
    return root, store_dir, samples


def write_data_dir(root, samples, store_dir, summary: dict) -> None:
    """2 sample shards and summary.json (``store`` relative to ``root``), as synth writes them."""
    for i, part in enumerate((samples[:25], samples[25:])):
        pq.write_table(pa.Table.from_pylist([s.to_row() for s in part], schema=SAMPLE_SCHEMA),
                       root / f"unit-{i:05d}.parquet")
    (root / "summary.json").write_text(json.dumps({"store": "../" + store_dir.name, "samples": len(samples),
                                                   **summary}))


# --- the training loop's fixtures (tests/train/test_trainer.py, test_resume.py, test_distributed.py) -----------


def train_config_dict(run_dir, data_dir, **overrides) -> dict:
    """A TrainConfig mapping for the tiny preset on the fixture data: rows of 512 tokens, 2 rows per step.

    ``overrides`` use dotted keys (``optim.lr=...``); ``steps=N`` sets the budget to N steps.
    """
    from mmprolong.config import merge_overrides

    steps = overrides.pop("steps", 6)
    base = {
        "run_dir": str(run_dir), "seed": 0, "device": "cpu",
        "model": {"preset": "tiny", "seed": 0, "rope_theta": 4.0e6, "dtype": "float32"},
        "data": {"data_dir": str(data_dir), "max_seq_len": 512, "seed": 0, "num_workers": 0},
        "optim": {"lr": 3e-3, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "max_grad_norm": 1.0},
        "schedule": {"budget_tokens": steps * 1024, "global_batch_tokens": 1024, "warmup_fraction": 0.1,
                     "decay": "cosine", "min_lr": 3e-4},
        "checkpoint": {"interval_steps": -1, "keep_last": 2, "resume": "auto", "save_final": True},
        "parallel": {"mixed_precision": "none"},
        "logging": {"progress_bar": False, "tensorboard": True, "plot": True},
    }
    return merge_overrides(base, overrides)


@pytest.fixture
def train_config_mapping(data_dir):
    """``train_config_mapping(run_dir, data_dir=None, **dotted_overrides) -> dict`` (unvalidated)."""

    def make(run_dir, data=None, **overrides):
        return train_config_dict(run_dir, data or data_dir[0], **overrides)

    return make


@pytest.fixture
def make_train_config(data_dir):
    """``make_train_config(run_dir, **dotted_overrides) -> TrainConfig`` on the session's fixture data."""
    from mmprolong.train.config import TrainConfig

    def make(run_dir, **overrides):
        return TrainConfig.from_dict(train_config_dict(run_dir, data_dir[0], **overrides))

    return make
