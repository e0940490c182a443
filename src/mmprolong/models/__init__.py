"""Model families and the model itself: the package train and eval both stand on.

    family = family_of_checkpoint("ckpt/Qwen3-VL-8B-Instruct")    # from config.json's model_type
    family.image_tokens(1584, 1224, min_pixels=family.min_pixels, max_pixels=family.max_pixels)
    model, tokenizer, image_processor = load_model(ModelConfig(preset="tiny-qwen3-vl"))

``base`` says what a family is (``ModelFamily``); one module per family (``qwen2_vl``, ``qwen2_5_vl``,
``qwen3_vl``) states it; ``config`` holds ``ModelConfig``; ``loading`` builds, loads, freezes and saves models;
``attention`` is the ``sdpa_packed`` kernel. Adding a family is one module and one line in ``FAMILIES``.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmprolong.errors import ConfigError
from mmprolong.models import qwen2_5_vl, qwen2_vl, qwen3_vl
from mmprolong.models.base import ModelFamily, Preset

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (qwen2_vl.FAMILY, qwen2_5_vl.FAMILY, qwen3_vl.FAMILY)}
DEFAULT_FAMILY = qwen2_5_vl.FAMILY  # the paper's; what stores and runs made before families existed used
PRESETS: dict[str, ModelFamily] = {name: f for f in FAMILIES.values() for name in f.presets}


def get_family(name: str, *, field: str = "family") -> ModelFamily:
    """The family called ``name`` (config.json's model_type); ConfigError naming ``field`` otherwise."""
    if name not in FAMILIES:
        raise ConfigError(field, name, f"unknown model family; supported: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of_config(config) -> ModelFamily:
    """The family of a transformers model config (``model.config``)."""
    return get_family(config.model_type, field="model_type")


def family_of_preset(preset: str) -> ModelFamily:
    if preset not in PRESETS:
        raise ConfigError("preset", preset, f"unknown preset; known: {', '.join(PRESETS)}")
    return PRESETS[preset]


def family_of_checkpoint(folder: str | Path, *, field: str = "path") -> ModelFamily:
    """The family of a local checkpoint folder, from its config.json; ConfigError naming ``field`` otherwise."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ConfigError(field, str(folder), "not a model folder: no config.json (give a local checkpoint "
                                              f"folder of {', '.join(f.label for f in FAMILIES.values())}; "
                                              "nothing is downloaded)")
    model_type = json.loads(path.read_text()).get("model_type")
    if model_type not in FAMILIES:
        raise ConfigError(field, str(folder), f"model_type is {model_type!r}; mmprolong supports "
                                              f"{', '.join(FAMILIES)}")
    return FAMILIES[model_type]


__all__ = ["DEFAULT_FAMILY", "FAMILIES", "ModelFamily", "PRESETS", "Preset", "family_of_checkpoint",
           "family_of_config", "family_of_preset", "get_family"]
