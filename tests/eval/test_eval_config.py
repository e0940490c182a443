"""Lengths as the CLI writes them, the depth grid, and config validation."""

import pytest

from mmprolong.errors import ConfigError
from mmprolong.eval.config import EvalConfig, depth_grid, format_length, parse_length, parse_lengths


def test_lengths_are_1024_multiples():
    assert parse_length("8k") == 8192
    assert parse_length("128K") == 131072
    assert parse_length(" 512k ") == 524288
    assert parse_length("1M") == 1 << 20
    assert parse_length("3000") == 3000
    assert parse_lengths("8k,16k,32k,64k,128k,256k,512k") == [8192 * 2**i for i in range(7)]
    assert parse_lengths(["8k", 8192, "16K"]) == [8192, 16384]  # duplicates dropped, order kept
    assert [format_length(n) for n in (8192, 131072, 1000)] == ["8K", "128K", "1000"]
    for bad in ("8g", "k", "-8k", "0", "", "8.5k"):
        with pytest.raises(ConfigError, match="lengths"):
            parse_lengths(bad)


def test_depth_grid():
    assert depth_grid(11) == [i / 10 for i in range(11)]
    assert depth_grid(3) == [0.0, 0.5, 1.0]
    assert depth_grid(1) == [0.5]


def test_config_validation_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match="store_dir"):
        EvalConfig.from_dict({"suite": "niah"})
    with pytest.raises(ConfigError, match="data_dir"):
        EvalConfig.from_dict({"suite": "docvqa"})
    with pytest.raises(ConfigError, match="datasets"):
        EvalConfig.from_dict({"suite": "docvqa", "data_dir": "x", "datasets": ["docvqa-2020"]})
    with pytest.raises(ConfigError, match="longdocurl_pages"):
        EvalConfig.from_dict({"suite": "docvqa", "data_dir": "x", "docvqa_source": "mmlongbench",
                              "longdocurl_pages": "window"})
    with pytest.raises(ConfigError, match="needles"):
        EvalConfig.from_dict({"store_dir": "s", "needles": [0]})
    with pytest.raises(ConfigError, match="needles"):
        EvalConfig.from_dict({"store_dir": "s", "needles": []})
    with pytest.raises(ConfigError, match="lookalikes"):
        EvalConfig.from_dict({"store_dir": "s", "lookalikes": [0]})
    assert EvalConfig.from_dict({"store_dir": "s", "needles": [], "lookalikes": [3]}).lookalikes == [3]
    with pytest.raises(ConfigError, match="rope_scaling"):
        EvalConfig.from_dict({"store_dir": "s", "rope_scaling": "linear"})
    config = EvalConfig.from_dict({"store_dir": "s", "lengths": [8192, 16384], "rope_scaling": "yarn"})
    assert config.lengths == [8192, 16384] and config.rope_factor == 4.0 and config.original_max_positions == 32768
