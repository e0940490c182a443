"""Synth on a local Ray cluster writes the same shards as the local executor."""

import os

import pytest

from mmprolong import api
from mmprolong.ingest import IngestConfig
from mmprolong.synth.config import SynthConfig

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(os.sys.path)}})
        yield
        ray.shutdown()


def test_ray_executor_matches_local(local_ray, tmp_path):
    api.make_corpus(tmp_path / "pdfs", docs=3, seed=2, min_pages=12, max_pages=20, show_progress=False)
    api.ingest(tmp_path / "pdfs", tmp_path / "store", IngestConfig(max_pixels=64 * 28 * 28, max_dpi=72.0),
               show_progress=False)
    config = {"target_tokens": 2048, "buckets": [512, 1024, 2049], "budget_tokens": 40_000, "unit_tokens": 8_000}
    local = api.synth(tmp_path / "store", tmp_path / "local", SynthConfig(**config), show_progress=False)
    on_ray = api.synth(tmp_path / "store", tmp_path / "ray", SynthConfig(**config, executor="ray", workers=2),
                       show_progress=False)
    assert on_ray["samples"] == local["samples"] > 0
    shards = sorted(p.name for p in (tmp_path / "local").glob("*.parquet"))
    assert shards == sorted(p.name for p in (tmp_path / "ray").glob("*.parquet"))
    for name in shards:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
