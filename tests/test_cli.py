"""The CLI: every sub-command documents every config field, and bad values fail with the field's name."""

import subprocess
import sys

import pytest

from mmprolong.cli import build_parser, main
from mmprolong.eval.config import EvalConfig
from mmprolong.ingest import IngestConfig
from mmprolong.synth.config import SynthConfig
from mmprolong.train.config import TrainConfig

COMMANDS = [["ingest"], ["synth"], ["export"], ["train"], ["eval"], ["report"], ["corpus", "make"],
            ["tokenizer", "train"], ["quickstart"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_works(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(command + ["--help"])
    assert info.value.code == 0
    assert "usage: mmprolong" in capsys.readouterr().out


@pytest.mark.parametrize("command,config", [("ingest", IngestConfig), ("synth", SynthConfig), ("eval", EvalConfig),
                                            ("train", TrainConfig)])
def test_every_config_field_is_a_flag(command, config):
    help_text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    for name, *_ in config.reference():
        assert "--" + name.replace("_", "-") in help_text


def test_bad_flag_value_names_the_field(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mmprolong.cli", "ingest", str(tmp_path), "--out",
                             str(tmp_path / "s"), "--workers", "two"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "'workers'" in result.stderr and "expected int" in result.stderr
