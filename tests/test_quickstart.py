"""The quickstart end to end at a small size: every step runs for real, the report shows what was achieved, and a
rerun finds everything done."""

import json
import re

import pytest

from mmprolong import api


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    summary = api.quickstart(out, docs=5, train_tokens=60_000, niah_lengths=[1024, 2048], heldout_items=1,
                             show_progress=False)
    return out, summary


def test_report_has_every_section_and_figure(run):
    out, summary = run
    report = (out / "report.md").read_text()
    for title in ("## Data", "## Training", "## Evaluation", "## Time"):
        assert title in report
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert {"mixture.png", "loss_base.png", "loss_trained.png", "accuracy.png", "accuracy_heldout.png",
            "heatmap_base.png", "heatmap_trained.png"} <= set(figures)
    for name in figures:
        assert (out / name).stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert html.count("<img ") == len(figures) and "<table>" in html
    # the eval tables name the two models, not their folders
    assert "| starting point (%) | after LongPT (%) |" in report


def test_numbers_in_report_come_from_the_steps(run):
    out, summary = run
    store = json.loads((out / "store" / "summary.json").read_text())
    long = json.loads((out / "data-long" / "summary.json").read_text())
    trained = json.loads((out / "train-long" / "summary.json").read_text())
    report = (out / "report.md").read_text()
    assert f"{store['pages']} pages, {store['vision_tokens']:,} vision tokens" in report
    assert f"{long['samples']} samples, {long['tokens']:,} tokens" in report
    assert summary["samples"] == long["samples"] and summary["final_loss"] == trained["final_loss"]
    assert long["heldout_documents"] >= 1  # the held-out eval asks about documents training never saw
    base = json.loads((out / "train-base" / "summary.json").read_text())
    assert base["final_loss"] < base["first_loss"]  # the starting point learnt something from random weights
    for name in ("corpus", "ingest", "synth", "train", "eval", "report"):
        assert summary["timings_s"][name] >= 0


def test_rerun_finds_every_step_done(run):
    out, first = run
    weights = (out / "train-long" / "final" / "model.safetensors").read_bytes()
    again = api.quickstart(out, docs=5, train_tokens=60_000, niah_lengths=[1024, 2048], heldout_items=1,
                           show_progress=False)
    assert again["final_loss"] == first["final_loss"] and again["samples"] == first["samples"]
    assert (out / "train-long" / "final" / "model.safetensors").read_bytes() == weights
    for suite in ("niah", "synth-heldout"):
        run_json = json.loads((out / f"eval-trained-{suite}" / "run.json").read_text())
        assert run_json["cached"] == run_json["items"] > 0  # every answer from the cache: no generation
        assert run_json["errors"] == 0
    totals = json.loads((out / "timings.json").read_text())
    assert totals["train"] >= first["timings_s"]["train"]
