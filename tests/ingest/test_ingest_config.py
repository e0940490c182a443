"""Bad settings fail before any work, with a ConfigError naming the field."""

import pytest

from mmprolong.errors import ConfigError
from mmprolong.ingest import IngestConfig, ingest


@pytest.mark.parametrize("overrides, field", [
    ({"workers": 0}, "workers"),
    ({"docs_per_shard": -1}, "docs_per_shard"),
    ({"max_pages": 0}, "max_pages"),
    ({"max_file_bytes": 0}, "max_file_bytes"),
    ({"max_dpi": 0.0}, "max_dpi"),
    ({"max_page_side_pt": -5.0}, "max_page_side_pt"),
    ({"min_pixels": 2_000_000, "max_pixels": 1_000_000}, "min_pixels"),
    ({"max_pixels": 100}, "max_pixels"),
    ({"jpeg_quality": 101}, "jpeg_quality"),
    ({"max_image_pixels": 0}, "max_image_pixels"),
    ({"max_worker_memory_bytes": 1000}, "max_worker_memory_bytes"),
    ({"image_format": "webp"}, "image_format"),
    ({"executor": "slurm"}, "executor"),
    ({"workers": "2"}, "workers"),
])
def test_bad_config_names_the_field(overrides, field, tmp_path):
    with pytest.raises(ConfigError) as info:
        IngestConfig.from_dict(overrides)
    assert info.value.field == field
    with pytest.raises(ConfigError):  # ingest validates too, before touching the (missing) folder
        ingest(tmp_path / "missing", tmp_path / "out", IngestConfig(**overrides), show_progress=False)
    assert not (tmp_path / "out").exists()


def test_defaults_are_valid():
    config = IngestConfig()
    config.validate()
    assert config.max_dpi == 144.0 and config.image_format == "png"


def test_ray_executor_without_ray_names_the_extra(monkeypatch, corpus, small_config, tmp_path):
    from mmprolong.errors import MissingDependencyError

    _, folder = corpus
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"mmprolong\[ray\]"):
        ingest(folder, tmp_path / "out", small_config(executor="ray"), show_progress=False)
