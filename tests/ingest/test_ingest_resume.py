"""Resumable writes: a run killed with SIGKILL and run again ends with exactly the uninterrupted run's pages."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_fixtures import SMALL_BUDGET, make_corpus, make_pdf

from mmprolong.errors import ResumeError
from mmprolong.ingest import IngestConfig, ingest

SCRIPT = """
import sys
from mmprolong.ingest import IngestConfig, ingest
ingest(sys.argv[1], sys.argv[2], IngestConfig(**{config}), show_progress=False)
"""


def shard_bytes(store):
    return {path.name: path.read_bytes() for path in sorted(store.glob("shard-*.parquet"))}


def live_processes_in_group(pgid: int) -> list[int]:
    """Pids of the group's processes that are not zombies (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to check for orphan workers")
def test_kill_9_then_rerun_matches_an_uninterrupted_run(tmp_path):
    folder = tmp_path / "pdfs"
    make_corpus(folder, docs=12, pages=16)
    config = {**SMALL_BUDGET, "docs_per_shard": 2, "workers": 2}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    command = [sys.executable, "-c", SCRIPT.format(config=config), str(folder), str(killed)]

    process = subprocess.Popen(command, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (killed / "_shards" / "00000.json").exists():  # shard 0 is done: its report is written last
            assert process.poll() is None and time.monotonic() < deadline, "ingest ended before its first shard"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)  # the run itself; its workers must follow it
        process.wait()
        deadline = time.monotonic() + 10
        while live_processes_in_group(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not live_processes_in_group(process.pid), "workers outlived the killed run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert not (killed / "summary.json").exists(), "the run finished before it was killed"

    subprocess.run(command, check=True)
    summary = ingest(folder, clean, IngestConfig(**config), show_progress=False)

    assert shard_bytes(killed) == shard_bytes(clean) and len(shard_bytes(clean)) == 6
    resumed = json.loads((killed / "summary.json").read_text())
    assert resumed["pages"] == summary.pages == 192 and resumed["documents"] == 12
    assert resumed["shards_resumed"] >= 1
    assert not list(killed.glob(".*.tmp")) and not list((killed / "_shards").glob(".*.tmp"))


def test_rerun_of_a_finished_store_is_a_no_op(corpus, small_config, tmp_path):
    _, folder = corpus
    store = tmp_path / "store"
    first = ingest(folder, store, small_config(), show_progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file() and p.name != ".lock"}
    again = ingest(folder, store, small_config(workers=2), show_progress=False)  # workers may change
    assert again == first
    assert stamps == {p.name: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file() and p.name != ".lock"}


def test_rerun_with_other_settings_or_inputs_is_refused(corpus, small_config, tmp_path):
    _, folder = corpus
    store = tmp_path / "store"
    ingest(folder, store, small_config(), show_progress=False)
    with pytest.raises(ResumeError, match=r"config max_dpi: 144\.0 -> 100\.0.*overwrite"):
        ingest(folder, store, small_config(max_dpi=100.0), show_progress=False)
    make_pdf(folder / "new.pdf", 1)
    with pytest.raises(ResumeError, match=r"1 file\(s\) added: new\.pdf"):
        ingest(folder, store, small_config(), show_progress=False)
    summary = ingest(folder, store, small_config(max_dpi=100.0), overwrite=True, show_progress=False)
    assert summary.documents == 6 and summary.config["max_dpi"] == 100.0
