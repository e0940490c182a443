"""The GPU paths of the training loop (skipped without CUDA; the multi-GPU ones without 2 GPUs, the kernel ones
without flash-attn / ring-flash-attn / liger-kernel): bf16 mixed precision, flash-attention, FSDP2 on NCCL,
ring sequence parallelism and the Liger fused loss, each checked against the plain path."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mmprolong.train.config import TrainConfig
from mmprolong.train.run import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

# The train tests' data helpers, loaded by path: tests/train/conftest.py and the train_fixtures module it uses.
sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
_spec = importlib.util.spec_from_file_location("train_conftest", Path(__file__).parents[1] / "train" / "conftest.py")
train_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_fixtures)

needs_2_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
needs_flash = pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="flash-attn not installed")
needs_ring = pytest.mark.skipif(importlib.util.find_spec("ring_flash_attn") is None,
                                reason="ring-flash-attn not installed")
needs_liger = pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is None,
                                 reason="liger-kernel not installed")


@pytest.fixture(scope="session")
def gpu_data_dir(tmp_path_factory):
    """A synth-style DATA_DIR of 40 tiny samples (as tests/train's ``data_dir``)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mmprolong.records import SAMPLE_SCHEMA
    from mmprolong.template import ChatTemplate
    from mmprolong.tokenizer import load_tokenizer
    from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

    store = tmp_path_factory.mktemp("store")
    images = train_fixtures.write_page_store(store, docs=6, pages=5, seed=0)
    root = tmp_path_factory.mktemp("data")
    samples = train_fixtures.make_samples(images, ChatTemplate(load_tokenizer()), count=40, seed=1)
    pq.write_table(pa.Table.from_pylist([s.to_row() for s in samples], schema=SAMPLE_SCHEMA),
                   root / "unit-00000.parquet")
    (root / "summary.json").write_text(json.dumps({"store": "../" + store.name, "min_pixels": DEFAULT_MIN_PIXELS,
                                                   "max_pixels": DEFAULT_MAX_PIXELS}))
    return root


@pytest.fixture
def gpu_config(gpu_data_dir):
    """``gpu_config(run_dir, **dotted_overrides) -> dict`` on CUDA."""

    def make(run_dir, **overrides):
        overrides = {"device": "cuda", "parallel.mixed_precision": "bfloat16", **overrides}
        return train_fixtures.train_config_dict(run_dir, gpu_data_dir, **overrides)

    return make


def losses(run_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def torchrun(config: dict, path, processes: int = 2) -> None:
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc_per_node={processes}", "-m", "mmprolong.cli", "train", "--config", str(path)],
                            env=dict(os.environ), check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]


def test_bf16_autocast_on_one_gpu_learns(gpu_config, tmp_path):
    summary = train(TrainConfig.from_dict(gpu_config(tmp_path / "run", steps=30)))
    assert summary["final_loss"] < 0.7 * summary["first_loss"]
    assert 0 < summary["peak_memory_gb"] < 10


@needs_flash
def test_flash_attention_matches_sdpa(gpu_config, tmp_path):
    train(TrainConfig.from_dict(gpu_config(tmp_path / "sdpa", steps=3)))
    train(TrainConfig.from_dict(gpu_config(tmp_path / "flash", steps=3,
                                           **{"model.attn_implementation": "flash_attention_2"})))
    assert losses(tmp_path / "sdpa") == pytest.approx(losses(tmp_path / "flash"), rel=2e-2)


@needs_2_gpus
def test_fsdp2_bf16_on_two_gpus_matches_one_gpu(gpu_config, tmp_path):
    train(TrainConfig.from_dict(gpu_config(tmp_path / "one", steps=4)))
    torchrun(gpu_config(tmp_path / "two", steps=4), tmp_path / "two.yaml")
    assert losses(tmp_path / "one") == pytest.approx(losses(tmp_path / "two"), rel=2e-2)


@needs_2_gpus
@needs_flash
@needs_ring
def test_ring_sequence_parallel_matches_one_gpu(gpu_config, tmp_path):
    per_step = {"schedule.global_batch_tokens": 512, "schedule.budget_tokens": 3 * 512,
                "model.attn_implementation": "flash_attention_2"}
    train(TrainConfig.from_dict(gpu_config(tmp_path / "one", **per_step)))
    torchrun(gpu_config(tmp_path / "ring", **per_step, **{"parallel.sequence_parallel": "ring",
                                                          "parallel.sp_degree": 2}), tmp_path / "ring.yaml")
    assert losses(tmp_path / "one") == pytest.approx(losses(tmp_path / "ring"), rel=2e-2)


@needs_liger
def test_liger_fused_loss_matches_the_target_only_loss(gpu_config, tmp_path):
    train(TrainConfig.from_dict(gpu_config(tmp_path / "plain", steps=3)))
    train(TrainConfig.from_dict(gpu_config(tmp_path / "liger", steps=3, **{"parallel.fused_loss": "liger"})))
    assert losses(tmp_path / "plain") == pytest.approx(losses(tmp_path / "liger"), rel=2e-2)
