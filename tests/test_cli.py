"""The CLI: every sub-command documents every config field, and bad values fail with the field's name."""

import subprocess
import sys

import pytest

from mmprolong.cli import build_parser, main
from mmprolong.eval.config import EvalConfig
from mmprolong.ingest import IngestConfig
from mmprolong.reproduce import ReproduceConfig
from mmprolong.synth.config import SynthConfig
from mmprolong.train.config import TrainConfig

COMMANDS = [["ingest"], ["synth"], ["export"], ["train"], ["eval"], ["report"], ["corpus", "make"],
            ["tokenizer", "train"], ["quickstart"], ["reproduce"]]


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


# Every list field of every command with values it accepts, as flag text -> the list it must become. A list
# field missing here fails the coverage test below, so a new one gets its comma-separated test.
LIST_FLAGS = {
    "synth": {"buckets": ("8192,16384,32768", [8192, 16384, 32768]), "bucket_weights": ("0.5,1.5", [0.5, 1.5]),
              "multi_items": ("2,6", [2, 6]),
              "exclude": ("0123456789abcdef,fedcba9876543210", ["0123456789abcdef", "fedcba9876543210"])},
    "eval": {"lengths": ("8192,16384", [8192, 16384]), "needles": ("1,2", [1, 2]), "lookalikes": ("1,3", [1, 3]),
             "datasets": ("mmlongbench-doc,slidevqa", ["mmlongbench-doc", "slidevqa"]),
             "heldout_tasks": ("reasoning,aggregate", ["reasoning", "aggregate"]),
             "mmniah_tasks": ("retrieval-text,counting-image", ["retrieval-text", "counting-image"])},
    "reproduce": {"findings": ("mix,rope", ["mix", "rope"]), "lengths": ("2048,8192", [2048, 8192])},
    "train": {"data.mix_dirs": ("notes,world", ["notes", "world"])},
}
CONFIGS = {"ingest": IngestConfig, "synth": SynthConfig, "eval": EvalConfig, "train": TrainConfig,
           "reproduce": ReproduceConfig}


def test_every_list_field_has_a_comma_separated_case():
    from mmprolong.config import list_fields

    assert {c: sorted(list_fields(config)) for c, config in CONFIGS.items()} == \
        {c: sorted(LIST_FLAGS.get(c, {})) for c in CONFIGS}


@pytest.mark.parametrize("command,name", [(c, n) for c, fields in LIST_FLAGS.items() for n in fields])
def test_every_list_flag_takes_comma_separated_values(command, name, tmp_path, monkeypatch):
    """"--flag a,b" gives the list [a, b], as "--flag [a, b]" does."""
    from mmprolong.cli import config_from_args

    text, expected = LIST_FLAGS[command][name]
    monkeypatch.chdir(tmp_path)
    for folder in ("data", "notes", "world"):  # train checks that its data folders are synth outputs
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "summary.json").write_text("{}")
    positional = {"synth": ["store", "--out", "o"], "eval": ["--out", "o", "--store-dir", "s"],
                  "reproduce": ["--out", "o"], "train": ["--run-dir", "r", "--data.data-dir", "data"]}[command]
    extra = ["--distribution", "custom", "--buckets", "8192,16384,32768"] if name == "bucket_weights" else []
    for flag_text in (text, "[" + text + "]"):
        args = build_parser().parse_args([command, *positional, "--" + name.replace("_", "-"), flag_text, *extra])
        config = config_from_args(args, CONFIGS[command])
        for part in name.split("."):  # a dotted field is one of a section's
            config = getattr(config, part)
        assert config == expected, flag_text


def test_comma_separated_datasets_flag_reaches_the_config():
    """The reported failure ("expected a list of str"), and one value as a list of one."""
    from mmprolong.cli import config_from_args

    args = build_parser().parse_args(["eval", "--out", "o", "--suite", "docvqa", "--data-dir", "d",
                                      "--datasets", "mmlongbench-doc,slidevqa", "--heldout-tasks", "reasoning"])
    config = config_from_args(args, EvalConfig)
    assert config.datasets == ["mmlongbench-doc", "slidevqa"] and config.heldout_tasks == ["reasoning"]


def test_corpus_make_flags_reach_the_generator(tmp_path):
    """The quickstart's corpus, made from the command line, is the API's byte for byte."""
    from mmprolong import api
    from mmprolong.quickstart import QUICK_CORPUS

    options = {k: v for k, v in QUICK_CORPUS.items() if k not in ("min_pages", "max_pages")}
    assert main(["corpus", "make", str(tmp_path / "cli"), "--docs", "3", "--seed", "4", "--min-pages", "20",
                 "--max-pages", "24", "--layout", options["layout"], "--register-share",
                 str(options["register_share"]), "--specimen-share", str(options["specimen_share"]),
                 "--register-gap", str(options["register_gap"])]) == 0
    made = api.make_corpus(tmp_path / "api", docs=3, seed=4, min_pages=20, max_pages=24, show_progress=False,
                           **options)
    assert [p.read_bytes() for p in made] == [(tmp_path / "cli" / p.name).read_bytes() for p in made]
    other = api.make_corpus(tmp_path / "gapless", docs=3, seed=4, min_pages=20, max_pages=24, show_progress=False,
                            **{**options, "register_gap": 0})
    assert [p.read_bytes() for p in made] != [p.read_bytes() for p in other]  # the flags change the documents
