"""Resuming: a run stopped after k steps and resumed gives the same loss curve as an uninterrupted one, bit for
bit (float32, CPU); SIGTERM saves a checkpoint at the end of the current step and exits cleanly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from train_fixtures import metrics

from mmprolong.errors import ResumeError
from mmprolong.train.checkpoint import list_checkpoints
from mmprolong.train.run import train


def test_stopped_and_resumed_run_matches_the_uninterrupted_one(make_train_config, tmp_path):
    steps = 8
    a, b = tmp_path / "a", tmp_path / "b"
    train(make_train_config(a, steps=steps, **{"checkpoint.interval_steps": 2}))
    first = train(make_train_config(b, steps=steps, **{"checkpoint.interval_steps": 2, "schedule.stop_at_step": 3}))
    assert first["stopped"] == "stop_at_step" and first["steps"] == 3 and first["final_model"] is None
    assert [p.name for p in list_checkpoints(b)] == ["step-00000002", "step-00000003"]
    second = train(make_train_config(b, steps=steps, **{"checkpoint.interval_steps": 2}))
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
