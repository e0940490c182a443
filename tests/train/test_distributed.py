"""Two processes (torchrun, gloo, CPU) give the same per-step losses as one process with the same global batch:
FSDP2 data parallelism (1 row per rank vs 2 micro-batches in one process), including a sharded checkpoint and
resume, and sequence parallelism (kv_allgather: one row split over 2 ranks vs the whole row in one process).
float64 makes the comparison tight."""

import json

from train_fixtures import max_weight_diff, metrics, torchrun

from mmprolong.train.run import train

FLOAT64 = {"model.dtype": "float64"}


def test_fsdp2_on_two_processes_matches_one_process(train_config_mapping, make_train_config, tmp_path):
    steps = 4
    one, two = tmp_path / "one", tmp_path / "two"
    single = train(make_train_config(one, steps=steps, **FLOAT64))
    assert single["micro_batches_per_step"] == 2
    # Two processes, stopped after step 2 and resumed from the sharded checkpoint.
    torchrun(train_config_mapping(two, steps=steps, **FLOAT64, **{"schedule.stop_at_step": 2}), tmp_path / "a.yaml")
    checkpoint = two / "checkpoints" / "step-00000002"
    assert {p.name for p in checkpoint.iterdir()} >= {"__0_0.distcp", "__1_0.distcp", "rank-00000.pt",
                                                     "rank-00001.pt", "trainer.json", ".metadata"}
    torchrun(train_config_mapping(two, steps=steps, **FLOAT64), tmp_path / "b.yaml")
    summary = json.loads((two / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["micro_batches_per_step"] == 1 and summary["steps"] == steps
    a, b = metrics(one), metrics(two)
    assert [m["step"] for m in b] == list(range(1, steps + 1))
    loss_diff = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
    norm_diff = max(abs(x["grad_norm"] - y["grad_norm"]) for x, y in zip(a, b))
    assert loss_diff < 1e-10 and norm_diff < 1e-10, (loss_diff, norm_diff)
    assert [x["tokens"] for x in a] == [y["tokens"] for y in b]
    # The final model, gathered from the FSDP2 shards, equals the one-process model.
    assert max_weight_diff(one, two) < 1e-10


def test_sequence_parallel_on_two_processes_matches_one_process(train_config_mapping, make_train_config, tmp_path):
    """One 512-token row per step: split in two 256-token chunks (K/V all-gathered) vs whole in one process."""
    steps = 3
    per_step = {"schedule.global_batch_tokens": 512, "schedule.budget_tokens": 512 * steps, **FLOAT64}
    one, two = tmp_path / "one", tmp_path / "two"
    train(make_train_config(one, **per_step))
    torchrun(train_config_mapping(two, **per_step, **{"parallel.sequence_parallel": "kv_allgather",
                                                      "parallel.sp_degree": 2}), tmp_path / "sp.yaml")
    summary = json.loads((two / "summary.json").read_text())
    assert (summary["sequence_parallel"], summary["data_parallel"]) == (2, 1)
    a, b = metrics(one), metrics(two)
    assert [x["tokens"] for x in a] == [y["tokens"] for y in b]
    # Step 1 is the same computation in another order: equal to float64 rounding. Later steps add AdamW's
    # amplification of rounding differences in near-zero gradients (update ~ lr * sign), still tiny.
    assert abs(a[0]["loss"] - b[0]["loss"]) < 1e-12 and abs(a[0]["grad_norm"] - b[0]["grad_norm"]) < 1e-12
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-7
    assert max_weight_diff(one, two) < 1e-7
    assert "_attn_implementation" not in json.loads((two / "final" / "config.json").read_text())["text_config"]
