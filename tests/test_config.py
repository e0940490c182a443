"""Configs load from YAML/dicts with types checked and errors that name the field."""

import dataclasses
from typing import Literal

import pytest

from mmprolong.config import Config, field, merge_overrides
from mmprolong.errors import ConfigError


@dataclasses.dataclass(kw_only=True)
class Optim(Config):
    lr: float = field(1e-5, help="peak learning rate")

    def validate(self):
        if self.lr <= 0:
            raise ConfigError("optim.lr", self.lr, "must be > 0")


@dataclasses.dataclass(kw_only=True)
class Example(Config):
    workers: int = field(1, help="processes")
    image_format: Literal["png", "jpeg"] = field("png", help="encoding")
    optim: Optim = field(default_factory=Optim, help="optimizer")
    names: list[str] = field(default_factory=list, help="names")
    limit: int | None = field(None, help="optional limit")


def test_loads_nested_yaml_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("workers: 2\noptim:\n  lr: 1e-4\nnames: [a, b]\n")
    config = Example.from_yaml(path, {"image_format": "jpeg", "optim.lr": 3e-4})
    assert config == Example(workers=2, image_format="jpeg", optim=Optim(lr=3e-4), names=["a", "b"])
    assert Example.from_yaml(path).optim.lr == 1e-4  # YAML's "1e-4" string is read as a float


@pytest.mark.parametrize(
    "data,field_name",
    [
        ({"workers": "2"}, "workers"),
        ({"workers": True}, "workers"),
        ({"image_format": "gif"}, "image_format"),
        ({"optim": {"lr": "fast"}}, "optim.lr"),
        ({"optim": {"lr": -1.0}}, "optim.lr"),
        ({"optim": {"momentum": 0.9}}, "optim.momentum"),
        ({"colour": "red"}, "colour"),
        ({"names": "a"}, "names"),
    ],
)
def test_bad_values_name_the_field(data, field_name):
    with pytest.raises(ConfigError) as info:
        Example.from_dict(data)
    assert info.value.field == field_name
    assert f"'{field_name}'" in str(info.value)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        Example.from_yaml(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        Example.from_yaml(tmp_path / "list.yaml")


def test_reference_flattens_nested_fields_and_fingerprint_tracks_values():
    names = [row[0] for row in Example.reference()]
    assert names == ["workers", "image_format", "optim.lr", "names", "limit"]
    assert Example().fingerprint() == Example().fingerprint()
    assert Example().fingerprint() != Example(workers=3).fingerprint()


def test_merge_overrides_does_not_mutate():
    data = {"a": {"b": 1}}
    assert merge_overrides(data, {"a.c": 2}) == {"a": {"b": 1, "c": 2}}
    assert data == {"a": {"b": 1}}
