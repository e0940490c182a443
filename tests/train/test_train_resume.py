"""Resuming: a run stopped after k steps and resumed gives the same loss curve as an uninterrupted one, bit for
bit (float32, CPU); SIGTERM saves a checkpoint at the end of the current step and exits cleanly."""

import dataclasses
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from train_fixtures import metrics

from mmprolong.errors import ResumeError
from mmprolong.train.checkpoint import list_checkpoints
from mmprolong.train.run import train


# frozen: the tower's features are memoised (train.frozen_vision); the resumed run starts with an empty cache, so
# it encodes together images the uninterrupted run took from the cache
@pytest.mark.parametrize("vision", [{}, {"model.train_vision": False, "model.train_merger": False}],
                         ids=["trained-vision", "frozen-vision"])
def test_stopped_and_resumed_run_matches_the_uninterrupted_one(make_train_config, tmp_path, vision):
    steps = 8
    a, b = tmp_path / "a", tmp_path / "b"
    uninterrupted = train(make_train_config(a, steps=steps, **{"checkpoint.interval_steps": 2}, **vision))
    first = train(make_train_config(b, steps=steps, **{"checkpoint.interval_steps": 2, "schedule.stop_at_step": 3},
                                    **vision))
    assert first["stopped"] == "stop_at_step" and first["steps"] == 3 and first["final_model"] is None
    assert [p.name for p in list_checkpoints(b)] == ["step-00000002", "step-00000003"]
    second = train(make_train_config(b, steps=steps, **{"checkpoint.interval_steps": 2}, **vision))
    assert (uninterrupted["vision_features"] is None) == (not vision)
    assert second["stopped"] == "completed" and second["steps_this_session"] == steps - 3
    run_a, run_b = metrics(a), metrics(b)
    assert [m["step"] for m in run_b] == list(range(1, steps + 1))
    assert [m["loss"] for m in run_a] == [m["loss"] for m in run_b]  # exact, float32
    assert [m["lr"] for m in run_a] == [m["lr"] for m in run_b]
    assert [m["grad_norm"] for m in run_a] == [m["grad_norm"] for m in run_b]
    assert second["first_loss"] == run_a[0]["loss"] and second["tokens"] == sum(m["tokens"] for m in run_a)
    # keep_last=2: only the two newest checkpoints remain.
    assert [p.name for p in list_checkpoints(b)] == ["step-00000006", "step-00000008"]
    from safetensors.torch import load_file

    final_a, final_b = load_file(a / "final" / "model.safetensors"), load_file(b / "final" / "model.safetensors")
    assert all((final_a[k] == final_b[k]).all() for k in final_a)


def test_resume_refuses_other_settings_and_never_mode(make_train_config, tmp_path):
    run = tmp_path / "run"
    train(make_train_config(run, steps=4, **{"schedule.stop_at_step": 1}))
    with pytest.raises(ResumeError, match="optim.lr"):
        train(make_train_config(run, steps=4, **{"optim.lr": 1e-2}))
    with pytest.raises(ResumeError, match="resume is 'never'"):
        train(make_train_config(run, steps=4, **{"checkpoint.resume": "never"}))
    # An explicit checkpoint folder works too.
    summary = train(make_train_config(run, steps=4, **{"checkpoint.resume": str(run / "checkpoints" /
                                                                               "step-00000001")}))
    assert summary["steps"] == 4 and summary["steps_this_session"] == 3


class _RunsCode:
    """Unpickled, this creates ``marker``: any code could run in its place."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _tamper_rank_file(checkpoint: Path, marker: Path) -> None:
    state = torch.load(checkpoint / "rank-00000.pt", weights_only=True)
    torch.save({**state, "data": _RunsCode(marker)}, checkpoint / "rank-00000.pt")


def _tamper_metadata(checkpoint: Path, marker: Path) -> None:
    (checkpoint / ".metadata").write_bytes(pickle.dumps(_RunsCode(marker)))


def _tamper_optimizer_entry(checkpoint: Path, marker: Path) -> None:
    """Point the optimizer's saved learning rate (a non-tensor DCP entry) at a pickle appended to its file."""
    metadata = pickle.loads((checkpoint / ".metadata").read_bytes())
    key = next(k for k in metadata.storage_data if k.fqn == "optim.param_groups.0.lr")
    info = metadata.storage_data[key]
    payload = io.BytesIO()
    torch.save(_RunsCode(marker), payload)
    shard = checkpoint / info.relative_path
    offset = shard.stat().st_size
    shard.write_bytes(shard.read_bytes() + payload.getvalue())
    metadata.storage_data[key] = dataclasses.replace(info, offset=offset, length=len(payload.getvalue()))
    (checkpoint / ".metadata").write_bytes(pickle.dumps(metadata))


def test_a_tampered_checkpoint_is_refused_not_run(make_train_config, tmp_path):
    """A checkpoint folder from elsewhere runs no code on resume: a pickled object in a rank file, in DCP's
    .metadata or in one of DCP's non-tensor entries is refused with a ResumeError before it is unpickled."""
    run = tmp_path / "run"
    train(make_train_config(run, steps=3, **{"schedule.stop_at_step": 1}))
    checkpoint = run / "checkpoints" / "step-00000001"
    pristine = shutil.copytree(checkpoint, tmp_path / "pristine")
    for tamper in (_tamper_rank_file, _tamper_metadata, _tamper_optimizer_entry):
        shutil.rmtree(checkpoint)
        shutil.copytree(pristine, checkpoint)
        marker = tmp_path / f"{tamper.__name__}.ran"
        tamper(checkpoint, marker)
        with pytest.raises(ResumeError, match="refused without loading it"):
            train(make_train_config(run, steps=3))
        assert not marker.exists(), tamper.__name__
    # A rank file of plain values in another layout is refused with what it holds.
    torch.save({"position": 3}, checkpoint / "rank-00000.pt")
    with pytest.raises(ResumeError, match=r"not a rank state .* found \['position'\]"):
        train(make_train_config(run, steps=3))
    # The untouched checkpoint resumes.
    shutil.rmtree(checkpoint)
    shutil.copytree(pristine, checkpoint)
    assert train(make_train_config(run, steps=3))["steps_this_session"] == 2


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(train_config_mapping, make_train_config, tmp_path):
    run, reference = tmp_path / "run", tmp_path / "reference"
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(train_config_mapping(run, steps=400)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "mmprolong.cli", "train", "--config", str(config_path)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            path = run / "metrics.jsonl"
            if path.is_file() and len(path.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stdout.read()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "SIGTERM received" in output
    summary = json.loads((run / "summary.json").read_text())
    stopped_at = summary["steps"]
    assert summary["stopped"] == "signal" and 2 <= stopped_at < 400
    assert [p.name for p in list_checkpoints(run)] == [f"step-{stopped_at:08d}"]
    assert [m["step"] for m in metrics(run)] == list(range(1, stopped_at + 1))
    # Resume two more steps; an uninterrupted run of the same config gives the same losses.
    end = stopped_at + 2
    resumed = train(make_train_config(run, steps=400, **{"schedule.stop_at_step": end}))
    assert resumed["steps"] == end and resumed["steps_this_session"] == 2
    train(make_train_config(reference, steps=400, **{"schedule.stop_at_step": end}))
    assert [m["loss"] for m in metrics(run)] == [m["loss"] for m in metrics(reference)]
