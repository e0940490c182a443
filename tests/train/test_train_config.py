"""TrainConfig: the recipes load with the paper's numbers, and bad configs are refused at start naming the field."""

from pathlib import Path

import pytest

from mmprolong.errors import ConfigError
from mmprolong.train.config import SECTIONS, TrainConfig, micro_batches_per_step
from mmprolong.train.run import train
from mmprolong.train.schedule import lr_at

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_7b_recipe_is_the_papers(data_dir, tmp_path):
    config = TrainConfig.from_yaml(RECIPES / "mmprolong-7b.yaml", {"data.data_dir": str(data_dir[0]),
                                                                   "run_dir": str(tmp_path)})
    s, o, m = config.schedule, config.optim, config.model
    assert (s.budget_tokens, s.global_batch_tokens) == (5 * 2**30, 32 * 131_072)
    assert (s.total_steps, s.warmup_steps) == (1280, 128)
    assert (o.lr, s.min_lr, o.weight_decay, o.beta1, o.beta2) == (1e-5, 1e-6, 0.1, 0.9, 0.95)
    assert (s.decay, s.warmup_fraction) == ("cosine", 0.1)
    assert (config.data.max_seq_len, m.rope_theta, m.attn_implementation) == (131_072, 4e6, "flash_attention_2")
    assert config.parallel.sp_degree == 2 and config.parallel.data_parallel == "fsdp2"
    # 64 GPUs = 32 data-parallel x 2 sequence-parallel: one 128K row per rank per step; 8 GPUs: 8 rows.
    assert micro_batches_per_step(config, 64) == 1 and micro_batches_per_step(config, 8) == 8
    lr = {"peak_lr": o.lr, "min_lr": s.min_lr, "total": s.total_steps, "warmup": s.warmup_steps, "decay": s.decay}
    assert lr_at(0, **lr) == pytest.approx(1e-5 / 128) and lr_at(127, **lr) == 1e-5
    assert lr_at(128, **lr) == 1e-5 and lr_at(1279, **lr) == pytest.approx(1e-6)
    assert_every_setting_names_its_source(RECIPES / "mmprolong-7b.yaml")


def test_the_qwen3_vl_recipe_keeps_the_papers_schedule_on_qwen3_vl(data_dir, tmp_path):
    config = TrainConfig.from_yaml(RECIPES / "qwen3-vl-8b.yaml", {"data.data_dir": str(data_dir[0]),
                                                                  "run_dir": str(tmp_path)})
    s, m = config.schedule, config.model
    assert (m.family, m.rope_theta, m.max_position_embeddings) == ("qwen3_vl", 2e7, 4 * 262_144)
    assert (config.data.max_seq_len, s.budget_tokens, s.global_batch_tokens, s.total_steps) == (
        131_072, 5 * 2**30, 32 * 131_072, 1280)
    assert (config.optim.lr, s.min_lr, s.warmup_fraction) == (1e-5, 1e-6, 0.1)
    assert_every_setting_names_its_source(RECIPES / "qwen3-vl-8b.yaml")
    text = (RECIPES / "qwen3-vl-8b.yaml").read_text()
    assert "[ours]" in text.split("rope_theta:")[1].splitlines()[0]  # the base is our estimate, and says so


def assert_every_setting_names_its_source(path: Path) -> None:
    for line in path.read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#") and not line.rstrip().endswith(":") \
                and line.split(":")[0].strip() not in ("backend", "log_interval_steps", "progress_bar", "tensorboard",
                                                       "plot"):
            assert "#" in line, line


@pytest.mark.parametrize("name, family", [("debug-cpu.yaml", "qwen2_5_vl"), ("debug-cpu-qwen3-vl.yaml", "qwen3_vl")])
def test_the_debug_recipes_load(name, family, data_dir, tmp_path):
    config = TrainConfig.from_yaml(RECIPES / name, {"data.data_dir": str(data_dir[0]), "run_dir": str(tmp_path)})
    assert config.device == "cpu" and config.model.path is None and config.schedule.total_steps == 8
    assert config.model.known_family().name == family
    assert micro_batches_per_step(config, 1) == 2 and micro_batches_per_step(config, 2) == 1


def test_every_field_has_help():
    rows = TrainConfig.reference()
    assert all(help_text for _, _, _, help_text in rows)
    names = {name for name, *_ in rows}
    assert {"optim.lr", "schedule.budget_tokens", "parallel.sp_degree", "checkpoint.resume", "data.max_seq_len",
            "model.rope_theta", "logging.tensorboard", "run_dir"} <= names
    assert set(SECTIONS) == {"model", "data", "optim", "schedule", "checkpoint", "parallel", "logging"}


BAD = [
    ({"data.max_seq_len": 0}, "data.max_seq_len"),
    ({"schedule.global_batch_tokens": 1000}, "schedule.global_batch_tokens"),  # not whole rows of 512
    ({"schedule.global_batch_tokens": 2**20}, "schedule.global_batch_tokens"),  # more than the budget
    ({"schedule.warmup_fraction": 1.5}, "schedule.warmup_fraction"),
    ({"schedule.min_lr": 1.0}, "schedule.min_lr"),  # above the peak
    ({"schedule.stop_at_step": 99}, "schedule.stop_at_step"),  # past the last step
    ({"optim.lr": -1e-5}, "optim.lr"),
    ({"optim.beta2": 1.0}, "optim.beta2"),
    ({"optim.max_grad_norm": 0.0}, "optim.max_grad_norm"),
    ({"optim.learning_rate": 1e-5}, "optim.learning_rate"),  # unknown key
    ({"optim.lr": "fast"}, "optim.lr"),  # wrong type
    ({"parallel.sequence_parallel": "ulysses", "parallel.sp_degree": 2}, "parallel.sequence_parallel"),
    ({"parallel.sequence_parallel": "ring", "parallel.sp_degree": 2,
      "model.attn_implementation": "flash_attention_2"}, "parallel.sequence_parallel"),  # GPU only, device cpu
    ({"parallel.sp_degree": 2}, "parallel.sp_degree"),  # without a sequence_parallel kind
    ({"model.attn_logn_window": 1024, "parallel.sequence_parallel": "kv_allgather", "parallel.sp_degree": 2},
     "model.attn_logn_window"),  # sequence parallel replaces the kernel that applies it
    ({"parallel.sequence_parallel": "kv_allgather", "parallel.sp_degree": 3}, "parallel.sp_degree"),  # 512 % 3
    ({"parallel.fused_loss": "liger"}, "parallel.fused_loss"),  # GPU only
    ({"parallel.mixed_precision": "bfloat16"}, "parallel.mixed_precision"),  # GPU only
    ({"model.attn_implementation": "flash_attention_2"}, "model.attn_implementation"),  # GPU only
    ({"model.rope_theta": -1.0}, "model.rope_theta"),
    ({"checkpoint.keep_last": 0}, "checkpoint.keep_last"),
    ({"checkpoint.interval_steps": 0}, "checkpoint.interval_steps"),
    ({"checkpoint.resume": "/no/such/checkpoint"}, "checkpoint.resume"),
    ({"logging.log_interval_steps": 0}, "logging.log_interval_steps"),
    ({"device": "tpu"}, "device"),
]


@pytest.mark.parametrize("overrides,field", BAD, ids=[f for _, f in BAD])
def test_bad_configs_are_refused_naming_the_field(overrides, field, train_config_mapping, tmp_path):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(train_config_mapping(tmp_path / "run", **overrides))
    assert info.value.field == field, info.value


def test_a_missing_data_folder_and_bf16_with_float64_are_refused(train_config_mapping, tmp_path):
    with pytest.raises(ConfigError, match="data.data_dir"):
        TrainConfig.from_dict(train_config_mapping(tmp_path / "run", tmp_path / "nothing"))
    with pytest.raises(ConfigError, match=r"data.mix_dirs\[0\]"):  # a mixed-in folder is checked the same way
        TrainConfig.from_dict(train_config_mapping(tmp_path / "run", **{"data.mix_dirs": [str(tmp_path / "none")]}))
    raw = train_config_mapping(tmp_path / "run", **{"device": "auto", "model.dtype": "float64",
                                                              "parallel.mixed_precision": "bfloat16"})
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(raw)
    assert info.value.field == "parallel.mixed_precision"


def test_a_config_built_in_python_is_checked_too(make_train_config, tmp_path):
    config = make_train_config(tmp_path / "run")
    config.schedule.warmup_fraction = -0.1
    with pytest.raises(ConfigError) as info:
        config.validate()
    assert info.value.field == "schedule.warmup_fraction"


def test_micro_batches_must_split_evenly_over_the_world(make_train_config, tmp_path):
    config = make_train_config(tmp_path / "run")  # 1024 tokens per step = 2 rows of 512
    assert micro_batches_per_step(config, 1) == 2 and micro_batches_per_step(config, 2) == 1
    with pytest.raises(ConfigError) as info:
        micro_batches_per_step(config, 4)
    assert info.value.field == "schedule.global_batch_tokens" and "512 x 4" in info.value.fix


def test_train_refuses_a_bad_world_before_any_work(make_train_config, tmp_path):
    config = make_train_config(tmp_path / "run")
    with pytest.raises(ConfigError, match="schedule.global_batch_tokens"):
        train(config, rank=0, world_size=3)
    assert not (tmp_path / "run").exists()


def test_overrides_from_the_command_line(train_config_mapping, tmp_path):
    import yaml

    from mmprolong.cli import build_parser, config_from_args

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(train_config_mapping(tmp_path / "x")))
    args = build_parser().parse_args(["train", "--config", str(path), "--optim.lr", "1e-2", "--run-dir",
                                      str(tmp_path), "--parallel.activation-checkpointing", "true"])
    config = config_from_args(args, TrainConfig)
    assert (config.optim.lr, config.run_dir, config.parallel.activation_checkpointing) == (1e-2, str(tmp_path), True)
    args = build_parser().parse_args(["train", "--config", str(path), "--optim.lr", "fast"])
    with pytest.raises(ConfigError, match="optim.lr"):
        config_from_args(args, TrainConfig)