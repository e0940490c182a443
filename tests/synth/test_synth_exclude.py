"""synth honours an exclusion list (decontaminate's exclude.txt or inline doc_ids): no page of an excluded
document enters any sample, as evidence or as filler, and the summary records which list left out what."""

import hashlib

import pytest

from mmprolong import api
from mmprolong.cli import build_parser, config_from_args
from mmprolong.decontam.exclusion import load_exclusion, write_exclusion
from mmprolong.errors import ConfigError
from mmprolong.ingest import IngestConfig
from mmprolong.synth.config import SynthConfig
from mmprolong.synth.export import read_samples
from mmprolong.synth.store import load_documents


def _config(**kw) -> SynthConfig:
    return SynthConfig(**({"target_tokens": 4096, "buckets": [1024, 2048, 4097], "budget_tokens": 60_000,
                           "unit_tokens": 20_000, "heldout_fraction": 0.0} | kw))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("exclude")
    api.make_corpus(root / "pdfs", docs=6, seed=8, min_pages=12, max_pages=20)
    api.ingest(root / "pdfs", root / "store", IngestConfig(max_pixels=96 * 28 * 28, max_dpi=72.0, workers=2),
               show_progress=False)
    return root / "store"


def _used(data) -> set[str]:
    return {page.doc_id for sample in read_samples(data) for page in sample.pages}


def test_excluded_documents_are_in_no_sample(store, tmp_path):
    doc_ids = sorted(d.doc_id for d in load_documents(store))
    api.synth(store, tmp_path / "all", _config(), show_progress=False)
    baseline = _used(tmp_path / "all")
    excluded = doc_ids[::2]
    assert set(excluded) & baseline  # without the list they are used, so the check below can fail
    path = tmp_path / "exclude.txt"
    write_exclusion(path, excluded, ["training documents that match an evaluation document"])
    summary = api.synth(store, tmp_path / "data", _config(exclude=str(path)), show_progress=False)
    used = _used(tmp_path / "data")
    assert used and not used & set(excluded)  # every page of every sample, evidence and filler
    assert summary["exclusion"] == {"source": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                    "doc_ids": len(excluded), "documents_excluded": len(excluded)}


def test_inline_list_counts_only_documents_of_the_store(store, tmp_path):
    present = sorted(d.doc_id for d in load_documents(store))[0]
    summary = api.synth(store, tmp_path / "data", _config(exclude=[present, "0123456789abcdef"]),
                        show_progress=False)
    assert present not in _used(tmp_path / "data")
    assert summary["exclusion"]["source"] == "config"
    assert (summary["exclusion"]["doc_ids"], summary["exclusion"]["documents_excluded"]) == (2, 1)


def test_bad_lists_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="'exclude'.*neither a doc_id.*nor an exclusion-list file"):
        SynthConfig.from_dict({"exclude": str(tmp_path / "missing.txt")})
    (tmp_path / "report.json").write_text('{"matches": []}\n')
    with pytest.raises(ConfigError, match="'exclude'.*not a doc_id"):
        SynthConfig.from_dict({"exclude": str(tmp_path / "report.json")})
    with pytest.raises(ConfigError, match="'exclude'"):
        SynthConfig.from_dict({"exclude": ["ABC"]})


def test_cli_flag_takes_a_file(tmp_path):
    path = tmp_path / "exclude.txt"
    write_exclusion(path, ["0123456789abcdef"], [])
    args = build_parser().parse_args(["synth", str(tmp_path), "--out", str(tmp_path / "d"), "--exclude", str(path)])
    config = config_from_args(args, SynthConfig)
    assert load_exclusion(config.exclude).doc_ids == {"0123456789abcdef"}
    both = build_parser().parse_args(["synth", str(tmp_path), "--out", str(tmp_path / "d"), "--exclude",
                                      f"{path},fedcba9876543210"])
    exclusion = load_exclusion(config_from_args(both, SynthConfig).exclude)
    assert exclusion.doc_ids == {"0123456789abcdef", "fedcba9876543210"} and exclusion.source == f"{path},config"
