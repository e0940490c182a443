"""A run killed after some items resumes without recomputing them and ends with an uninterrupted run's results."""

import json

import pytest
from eval_fixtures import FakeBackend

from mmprolong.errors import ResumeError
from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.items import read_jsonl, read_results


def _config(store_dir, **extra):
    return EvalConfig(store_dir=str(store_dir), lengths=[384, 512], depth_steps=3, needles=[1, 2], max_new_tokens=8,
                      **extra)


def _comparable(results):
    return [{k: v for k, v in r.to_row().items() if k != "seconds"} for r in results]


def test_interrupted_run_resumes_without_recomputing(tmp_path, store_dir):
    config = _config(store_dir)
    reference = FakeBackend()
    evaluate(reference, "niah", out_dir=tmp_path / "whole", config=config)
    total = reference.calls
    assert total == 12

    killed = FakeBackend(interrupt_at=5)
    with pytest.raises(KeyboardInterrupt):
        evaluate(killed, "niah", out_dir=tmp_path / "run", config=config)
    assert killed.calls == 5
    assert not (tmp_path / "run" / "run.json").exists()  # not marked complete
    partial = read_jsonl(tmp_path / "run" / "results.partial.jsonl")
    assert [r["item_id"] for r in partial] == killed.seen  # progress kept up to the kill

    resumed = FakeBackend()
    summary = evaluate(resumed, "niah", out_dir=tmp_path / "run", config=config)
    assert resumed.calls == total - 5 and set(resumed.seen).isdisjoint(killed.seen)  # nothing recomputed
    assert summary["cached"] == 5 and summary["generated"] == total - 5
    assert _comparable(read_results(tmp_path / "run")) == _comparable(read_results(tmp_path / "whole"))
    assert json.loads((tmp_path / "run" / "table.json").read_text())["rows"] == json.loads(
        (tmp_path / "whole" / "table.json").read_text())["rows"]


def test_a_folder_of_another_run_is_refused(tmp_path, store_dir):
    evaluate(FakeBackend("a"), "niah", out_dir=tmp_path / "run", config=_config(store_dir))
    with pytest.raises(ResumeError, match="overwrite"):
        evaluate(FakeBackend("b"), "niah", out_dir=tmp_path / "run", config=_config(store_dir))
    with pytest.raises(ResumeError):
        evaluate(FakeBackend("a"), "niah", out_dir=tmp_path / "run", config=_config(store_dir, seed=3))
    summary = evaluate(FakeBackend("b"), "niah", out_dir=tmp_path / "run", config=_config(store_dir), overwrite=True)
    assert summary["label"] == "b" and summary["ok"] == 12


def test_shared_cache_dir_serves_another_out_dir(tmp_path, store_dir):
    config = _config(store_dir, cache_dir=str(tmp_path / "cache"))
    first = FakeBackend()
    evaluate(first, "niah", out_dir=tmp_path / "one", config=config)
    second = FakeBackend()
    evaluate(second, "niah", out_dir=tmp_path / "two", config=config)
    assert first.calls == 12 and second.calls == 0
