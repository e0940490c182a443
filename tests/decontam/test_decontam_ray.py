"""The Ray executor runs decontamination's tasks (through ingest's executors) with the same result as local."""

import json
import os

import pytest

from mmprolong import api
from mmprolong.decontam import DecontamConfig
from mmprolong.decontam.variants import make_variant
from mmprolong.ingest import IngestConfig

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    yield
    ray.shutdown()
    mp.undo()


def test_ray_gives_the_local_result(local_ray, tmp_path):
    evals = api.make_corpus(tmp_path / "eval", docs=2, seed=21, min_pages=4, max_pages=5)
    api.make_corpus(tmp_path / "train", docs=2, seed=22, min_pages=4, max_pages=5)
    for i, (pdf, kind) in enumerate(zip(evals, ("resaved", "scanned"))):
        (tmp_path / "train" / f"{kind}.pdf").write_bytes(make_variant(pdf.read_bytes(), kind, seed=i))
    api.ingest(tmp_path / "train", tmp_path / "store", IngestConfig(max_pixels=200_704, max_dpi=72.0,
                                                                    docs_per_shard=1), show_progress=False)
    results = {}
    for executor in ("local", "ray"):
        config = DecontamConfig(executor=executor, workers=2, pages_per_task=5)  # a task per store shard
        summary = api.decontaminate(tmp_path / "store", [tmp_path / "eval"], tmp_path / executor, config,
                                    show_progress=False)
        report = json.loads((tmp_path / executor / "report.json").read_text())
        results[executor] = (report["matches"], summary["excluded_documents"])
        assert len(list((tmp_path / executor / "_store").glob("*.json"))) == 4
    assert results["ray"] == results["local"]
    assert results["local"][1] == 2
