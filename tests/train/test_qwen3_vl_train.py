"""A tiny Qwen3-VL through the CLI: trained by 2 gloo processes (FSDP2), stopped and resumed, equals one process
to float64 rounding; sequence parallelism splits its DeepStack features with the tokens; the final model is
evaluated by ``mmprolong eval``."""

import json
import os
import subprocess
import sys

from train_fixtures import QWEN3_MIN_PIXELS, max_weight_diff, metrics, torchrun

from mmprolong.train.run import train


def qwen3_settings(data_dir, **more) -> dict:
    """Dotted overrides of the train fixtures' config: the tiny Qwen3-VL in float64 on the Qwen3-VL data."""
    return {"model.preset": "tiny-qwen3-vl", "model.dtype": "float64", "model.min_pixels": QWEN3_MIN_PIXELS,
            "data.data_dir": str(data_dir), **more}


def test_qwen3_vl_two_processes_stopped_and_resumed_equal_one_process_and_evaluate(
        train_config_mapping, make_train_config, qwen3_data, tmp_path):
    data, store, _ = qwen3_data
    steps = 4
    one, two = tmp_path / "one", tmp_path / "two"
    settings = qwen3_settings(data)
    single = train(make_train_config(one, steps=steps, **settings))
    assert single["micro_batches_per_step"] == 2
    torchrun(train_config_mapping(two, steps=steps, **settings, **{"schedule.stop_at_step": 2}), tmp_path / "a.yaml")
    torchrun(train_config_mapping(two, steps=steps, **settings), tmp_path / "b.yaml")
    a, b = metrics(one), metrics(two)
    assert [m["step"] for m in b] == list(range(1, steps + 1))
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-10
    assert max(abs(x["grad_norm"] - y["grad_norm"]) for x, y in zip(a, b)) < 1e-10
    assert max_weight_diff(one, two) < 1e-10
    final = json.loads((two / "final" / "config.json").read_text())
    assert final["model_type"] == "qwen3_vl" and final["vision_config"]["deepstack_visual_indexes"] == [0, 1]
    # The trained model through the eval CLI: niah items counted in 32-px tokens at the model's budget.
    out = tmp_path / "eval"
    result = subprocess.run([sys.executable, "-m", "mmprolong.cli", "eval", "--model", str(two / "final"),
                             "--out", str(out), "--suite", "niah", "--store-dir", str(store), "--lengths", "256",
                             "--depth-steps", "2", "--needles", "[1]", "--max-new-tokens", "4"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert run["items"] == 2 and run["errors"] == 0 and run["generated"] == 2
    assert config["family"] == "qwen3_vl" and config["pixels"][0] == QWEN3_MIN_PIXELS


def test_qwen3_vl_sequence_parallel_matches_one_process(train_config_mapping, make_train_config, qwen3_data,
                                                       tmp_path):
    """One 512-token row per step split over 2 ranks: each keeps the DeepStack rows of its own image tokens."""
    data, _, _ = qwen3_data
    steps = 2
    settings = qwen3_settings(data, **{"schedule.global_batch_tokens": 512, "schedule.budget_tokens": 512 * steps})
    one, two = tmp_path / "one", tmp_path / "two"
    train(make_train_config(one, **settings))
    torchrun(train_config_mapping(two, **settings, **{"parallel.sequence_parallel": "kv_allgather",
                                                      "parallel.sp_degree": 2}), tmp_path / "sp.yaml")
    a, b = metrics(one), metrics(two)
    assert abs(a[0]["loss"] - b[0]["loss"]) < 1e-12 and abs(a[0]["grad_norm"] - b[0]["grad_norm"]) < 1e-12
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-7
