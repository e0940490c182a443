"""Two processes (torchrun, gloo, CPU) give the same per-step losses as one process with the same global batch:
FSDP2 data parallelism (1 row per rank vs 2 micro-batches in one process), including a sharded checkpoint and
resume, and sequence parallelism (kv_allgather: one row split over 2 ranks vs the whole row in one process).
float64 makes the comparison tight."""

import json

import torch
from train_fixtures import make_samples, max_weight_diff, metrics, sample_images, torchrun

from mmprolong.models.loading import build_preset_model
from mmprolong.train.collate import SampleEncoder, collate_packed
from mmprolong.train.parallelize import apply_fsdp2, fsdp_units
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
    # The final model, gathered from the FSDP2 shards, equals the one-process model, and decodes with a KV cache.
    assert max_weight_diff(one, two) < 1e-10
    assert json.loads((two / "final" / "generation_config.json").read_text())["use_cache"] is True


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


def test_fsdp2_blocks_get_float32_rotary_inputs_under_bfloat16(tokenizer, image_processor, page_store, template):
    """With bfloat16 FSDP2 mixed precision, the vision blocks compute in bfloat16 but get the rotary cos/sin in
    float32, as transformers and inference do (a block policy that casts its inputs rounds them to bfloat16)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    model = build_preset_model(tokenizer, seed=0)
    _, images = page_store
    sample = make_samples(images, template, count=1, seed=3)[0]
    encoder = SampleEncoder.build(tokenizer, image_processor, model.config)
    batch = collate_packed([[encoder.encode(sample, sample_images(sample, images))]], pad_token_id=0)
    vision_blocks = set(model.model.visual.blocks)
    seen = []

    def record(module, args, kwargs):
        cos, sin = kwargs["position_embeddings"]
        seen.append((module in vision_blocks, args[0].dtype, cos.dtype, sin.dtype))

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        apply_fsdp2(model, init_device_mesh("cpu", (1,)), param_dtype=torch.bfloat16)
        for unit in fsdp_units(model):
            unit.register_forward_pre_hook(record, with_kwargs=True)
        with torch.no_grad():
            model(**batch.model_inputs(labels=False))
    finally:
        dist.destroy_process_group()
    vision = [s for s in seen if s[0]]
    assert len(vision) == len(vision_blocks) and len(seen) == len(fsdp_units(model))
    assert {s[1:] for s in vision} == {(torch.bfloat16, torch.float32, torch.float32)}
    # The decoder layers' hidden states and (text) rotary cos/sin are bfloat16: mixed precision is on.
    assert {s[1:] for s in seen if s not in vision} == {(torch.bfloat16,) * 3}
