"""The Ray executor runs the same shard tasks and writes the same bytes as the local one."""

import os
from pathlib import Path

import pytest
from ingest_fixtures import make_corpus, make_pdf, segfaulting_processor

from mmprolong.ingest import ingest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    # Ray workers import the test helpers (the crash test's processor) from this folder.
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()
    mp.undo()


def test_ray_shards_are_byte_identical_to_local(local_ray, tmp_path, small_config):
    folder = tmp_path / "pdfs"
    make_corpus(folder, docs=5, pages=2)
    local = ingest(folder, tmp_path / "local", small_config(workers=2), show_progress=False)
    remote = ingest(folder, tmp_path / "ray", small_config(workers=2, executor="ray"), show_progress=False)

    def shards(store):
        return {p.name: p.read_bytes() for p in sorted(store.glob("shard-*.parquet"))}

    assert len(shards(tmp_path / "local")) == 3
    assert shards(tmp_path / "local") == shards(tmp_path / "ray")
    assert (remote.pages, remote.documents) == (local.pages, local.documents) == (10, 5)
    assert (tmp_path / "ray" / "errors.jsonl").read_bytes() == (tmp_path / "local" / "errors.jsonl").read_bytes()


def test_ray_worker_crash_is_reported(local_ray, tmp_path, small_config):
    folder = tmp_path / "pdfs"
    for name in ("a", "b_crash", "c"):
        make_pdf(folder / f"{name}.pdf", 2)
    summary = ingest(folder, tmp_path / "ray", small_config(executor="ray"), processor=segfaulting_processor,
                     show_progress=False)
    assert (summary.documents, summary.pages, summary.skipped) == (2, 4, 1)
    assert "crashed" in (tmp_path / "ray" / "errors.jsonl").read_text()
