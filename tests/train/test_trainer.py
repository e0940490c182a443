"""The training loop on CPU with the tiny preset: the loss falls, outputs are written, the loss is the global
answer-token mean, AdamW groups, activation checkpointing, the LR schedule, and a diverging run stops cleanly."""

import json
import math

import pytest
import torch

from mmprolong.errors import TrainingDivergedError
from mmprolong.models.loading import build_preset_model, load_model
from mmprolong.train.collate import SampleEncoder
from mmprolong.train.data import PackedRows
from mmprolong.train.loss import answer_loss_sum
from mmprolong.train.run import train
from mmprolong.train.schedule import LRSchedule, lr_at, total_steps
from mmprolong.train.trainer import build_optimizer


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_the_run_writes_its_outputs(make_train_config, tmp_path, tokenizer):
    run = tmp_path / "run"
    summary = train(make_train_config(run, steps=30))
    losses = [m["loss"] for m in metrics(run)]
    assert len(losses) == 30 and [m["step"] for m in metrics(run)] == list(range(1, 31))
    assert summary["final_loss"] < 0.7 * summary["first_loss"], losses
    assert summary["first_loss"] == losses[0] and summary["final_loss"] == losses[-1]
    assert summary["stopped"] == "completed" and summary["steps"] == 30
    for name in ("config.yaml", "metrics.jsonl", "loss.png", "summary.json", "final/config.json",
                 "final/model.safetensors", "final/tokenizer.json", "final/preprocessor_config.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "summary.json").read_text()) == summary
    assert 0 < summary["packing_efficiency"] <= 1 and summary["skipped_samples"] == {
        "too_long": 0, "missing_page": 0, "encode_failed": 0}
    assert summary["tokens"] == sum(m["tokens"] for m in metrics(run)) and summary["tokens_per_s"] > 0
    line = metrics(run)[0]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "peak_memory_gb", "targets", "tokens_seen"} <= set(line)
    # The final folder is an ordinary Qwen2.5-VL checkpoint with the new rope base.
    from transformers import AutoModelForImageTextToText

    reloaded = AutoModelForImageTextToText.from_pretrained(run / "final", local_files_only=True)
    assert reloaded.config.text_config.rope_parameters["rope_theta"] == 4e6
    config = json.loads((run / "final" / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    # Saved for use: generate() without use_cache=True decodes with a KV cache (training passes it off).
    generation = json.loads((run / "final" / "generation_config.json").read_text())
    assert config["use_cache"] is config["text_config"]["use_cache"] is generation["use_cache"] is True


def test_the_loss_is_the_mean_over_the_global_batchs_answer_tokens(make_train_config, tmp_path, data_dir):
    """Step 1's logged loss = (sum of both rows' answer-token losses) / (both rows' answer tokens), computed here
    independently from the same initial model; the mean of the two per-row means differs."""
    run = tmp_path / "run"
    train(make_train_config(run, steps=1, **{"model.dtype": "float64"}))
    logged = metrics(run)[0]["loss"]
    model, tokenizer, image_processor = load_model(make_train_config(run, steps=1, **{"model.dtype": "float64"}).model)
    rows = PackedRows(data_dir[0], SampleEncoder.build(tokenizer, image_processor, model.config), max_seq_len=512,
                      seed=0)
    first_two = [rows.build_row(r, epoch=0, row=i) for i, r in enumerate(rows.rank_rows(0)[:2])]
    with torch.no_grad():
        sums, counts = zip(*(answer_loss_sum(model, b) for b in first_two))
    global_mean = float(sum(sums) / sum(counts))
    per_row_mean = float(sum(s / c for s, c in zip(sums, counts)) / 2)
    assert counts[0] != counts[1]
    assert logged == pytest.approx(global_mean, abs=1e-12)
    assert abs(logged - per_row_mean) > 1e-6


def test_training_reads_its_rows_with_the_position_skip_it_is_given(make_train_config, tmp_path, data_dir):
    """data.position_skip reaches the rows the step computes: step 1's loss is what the skipped rows give (seeded
    by data.seed), not what the plain ones give."""
    run = tmp_path / "run"
    config = make_train_config(run, steps=1, **{"model.dtype": "float64", "data.position_skip": 3.0, "data.seed": 0})
    train(config)
    logged = metrics(run)[0]["loss"]
    model, tokenizer, image_processor = load_model(config.model)
    losses = []
    for skip in (3.0, 1.0):
        encoder = SampleEncoder.build(tokenizer, image_processor, model.config, position_skip=skip, skip_seed=0)
        rows = PackedRows(data_dir[0], encoder, max_seq_len=512, seed=0)
        with torch.no_grad():
            sums, counts = zip(*(answer_loss_sum(model, rows.build_row(r, epoch=0, row=i))
                                 for i, r in enumerate(rows.rank_rows(0)[:2])))
        losses.append(float(sum(sums) / sum(counts)))
    assert logged == pytest.approx(losses[0], abs=1e-12)
    assert abs(logged - losses[1]) > 1e-6


def test_weight_decay_skips_norms_and_biases(tokenizer, make_train_config, tmp_path):
    model = build_preset_model(tokenizer, seed=0)
    optimizer = build_optimizer(model, make_train_config(tmp_path / "run"))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decayed["params"])
    assert {names[id(p)] for p in plain["params"]} >= {"model.language_model.norm.weight",
                                                       "model.language_model.layers.0.self_attn.q_proj.bias"}
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_activation_checkpointing_gives_the_same_losses(make_train_config, tmp_path):
    plain = train(make_train_config(tmp_path / "a", steps=3, **{"model.dtype": "float64",
                                                               "checkpoint.save_final": False}))
    checkpointed = train(make_train_config(tmp_path / "b", steps=3, **{"model.dtype": "float64",
                                                                      "checkpoint.save_final": False,
                                                                      "parallel.activation_checkpointing": True}))
    a, b = metrics(tmp_path / "a"), metrics(tmp_path / "b")
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-12
    assert max(abs(x["grad_norm"] - y["grad_norm"]) for x, y in zip(a, b)) < 1e-12
    assert plain["final_model"] is None and checkpointed["steps"] == 3


def test_schedule_steps_warmup_and_decay():
    assert total_steps(5 * 2**30, 4 * 2**20) == 1280 and total_steps(10, 4) == 3
    kw = {"peak_lr": 1.0, "min_lr": 0.1, "total": 11, "warmup": 0}
    assert lr_at(0, decay="cosine", **kw) == 1.0
    assert lr_at(10, decay="cosine", **kw) == pytest.approx(0.1)
    assert lr_at(10, decay="linear", **kw) == pytest.approx(0.1)
    assert lr_at(5, decay="cosine", **kw) == pytest.approx(0.55)
    assert lr_at(5, decay="linear", **kw) == pytest.approx(0.55)
    assert lr_at(3, decay="cosine", **kw) > lr_at(3, decay="linear", **kw)
    assert all(lr_at(s, decay="constant", **kw) == 1.0 for s in range(11))
    warm = [lr_at(s, peak_lr=1.0, min_lr=0.0, total=100, warmup=10, decay="cosine") for s in range(12)]
    assert warm[:10] == pytest.approx([(s + 1) / 10 for s in range(10)]) and warm[10] == 1.0
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=5.0)
    schedule = LRSchedule(optimizer, peak_lr=1.0, min_lr=0.0, total=4, warmup=2, decay="cosine")
    seen = []
    for _ in range(4):
        seen.append(schedule.apply())
        schedule.step()
    assert seen == pytest.approx([0.5, 1.0, 1.0, 0.0]) and optimizer.param_groups[0]["lr"] == 0.0
    resumed = LRSchedule(optimizer, peak_lr=1.0, min_lr=0.0, total=4, warmup=2, decay="cosine")
    resumed.load_state_dict({"steps_taken": 2})
    assert resumed.apply() == seen[2]


def test_a_diverging_run_stops_with_the_step_and_its_samples(make_train_config, tmp_path):
    """A real divergence, no test hook: AdamW's first update moves every weight by about lr, so lr = 1e30 makes the
    weights ~1e30 and step 2's float32 forward overflows (RMSNorm squares them) to NaN."""
    run = tmp_path / "run"
    config = make_train_config(run, steps=6, **{"optim.lr": 1e30, "schedule.warmup_fraction": 0.0,
                                                "schedule.min_lr": 0.0})
    with pytest.raises(TrainingDivergedError) as info:
        train(config)
    error = info.value
    assert error.step == 2 and not math.isfinite(error.loss)
    lines = metrics(run)
    assert [m["step"] for m in lines] == [1] and math.isfinite(lines[0]["loss"])
    # The samples named are exactly those of step 2's two rows.
    rows = PackedRows(config.data.data_dir, _encoder(config), max_seq_len=512, seed=0)
    expected = [rows.samples[i].sample_id for r in rows.rank_rows(0)[2:4] for i in r]
    assert sorted(error.sample_ids) == sorted(expected) and "step 2" in str(error)
    # The last good state (after step 1) is checkpointed: finite weights, the data position before step 2.
    assert error.checkpoint.endswith("step-00000001")
    saved = json.loads((run / "checkpoints" / "step-00000001" / "trainer.json").read_text())
    assert saved["step"] == 1
    rank_state = torch.load(run / "checkpoints" / "step-00000001" / "rank-00000.pt", weights_only=True)
    assert (rank_state["data"]["epoch"], rank_state["data"]["row"]) == (0, 2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "diverged" and summary["final_model"] is None


def _encoder(config):
    model, tokenizer, image_processor = load_model(config.model)
    return SampleEncoder.build(tokenizer, image_processor, model.config)
