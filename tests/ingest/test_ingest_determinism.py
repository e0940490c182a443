"""The same inputs and settings give byte-identical shards, whatever the worker count."""

from ingest_fixtures import make_corpus

from mmprolong.ingest import ingest


def shard_bytes(store):
    return {path.name: path.read_bytes() for path in sorted(store.glob("shard-*.parquet"))}


def test_worker_count_does_not_change_the_bytes(tmp_path, small_config):
    folder = tmp_path / "pdfs"
    make_corpus(folder, docs=7, pages=2)
    ingest(folder, tmp_path / "w1", small_config(workers=1), show_progress=False)
    ingest(folder, tmp_path / "w2", small_config(workers=2), show_progress=True)  # the progress-bar path too
    one, two = shard_bytes(tmp_path / "w1"), shard_bytes(tmp_path / "w2")
    assert len(one) == 4 and one == two
