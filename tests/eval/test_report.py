"""Tables and plots from a hand-made results set; comparing runs."""

import dataclasses
import json

import pytest

from mmprolong.eval.items import EvalResult, write_results
from mmprolong.eval.report import compare_runs, markdown_table, summarize, write_report


def _result(task, length, depth, score, status="ok", suite="niah"):
    return EvalResult(item_id=f"{suite}-{task}-{length}-{depth}-{score}-{status}", suite=suite, task=task,
                      length=length, depth=depth, tokens=length, achieved_depth=depth, status=status,
                      score=score if status == "ok" else 0.0, error="" if status == "ok" else "boom")


def hand_made(shift=0.0):
    return [
        _result("single", 8192, 0.0, 1.0), _result("single", 8192, 0.0, 0.0), _result("single", 8192, 1.0, 1.0),
        _result("single", 16384, 0.0, max(0.0, 0.5 - shift)), _result("single", 16384, 1.0, 0.0),
        _result("single", 16384, 1.0, 0.0, status="error"),
        _result("multi-2", 8192, 0.0, 0.5), _result("multi-2", 16384, 0.0, 0.0, status="error"),
        _result("longdocurl", 8192, -1.0, 0.25, suite="docvqa"), _result("slidevqa", 8192, -1.0, 0.75, suite="docvqa"),
    ]


def _row(rows, suite, task, length, depth):
    [row] = [r for r in rows if (r["suite"], r["task"], r["length"], r["depth"]) == (suite, task, length, depth)]
    return row


def test_summary_numbers():
    rows = summarize(hand_made())
    assert _row(rows, "niah", "single", 8192, 0.0) == {"suite": "niah", "task": "single", "length": 8192,
                                                       "depth": 0.0, "n": 2, "ok": 2, "errors": 0, "score": 0.5,
                                                       "ci95": [0.0945, 0.9055]}  # Wilson, 1 of 2
    assert _row(rows, "niah", "single", 8192, "all")["score"] == pytest.approx(2 / 3, abs=1e-6)
    assert _row(rows, "niah", "single", 16384, 1.0) == {"suite": "niah", "task": "single", "length": 16384,
                                                             "depth": 1.0, "n": 2, "ok": 1, "errors": 1, "score": 0.0,
                                                             "ci95": [0.0, 0.7935]}  # Wilson, 0 of 1
    assert _row(rows, "niah", "multi-2", 16384, "all")["score"] is None  # only errors: no score
    assert _row(rows, "niah", "multi-2", 16384, "all")["ci95"] is None
    assert _row(rows, "niah", "all", 8192, "all")["score"] == pytest.approx((2 / 3 + 0.5) / 2, abs=1e-6)  # task mean
    assert _row(rows, "docvqa", "all", 8192, "all")["score"] == 0.5  # mean over datasets
    assert _row(rows, "niah", "all", 16384, "all")["errors"] == 2


def test_markdown_table_and_plots(tmp_path):
    results = hand_made()
    files = write_report(tmp_path, results, label="base")
    md = (tmp_path / "table.md").read_text()
    assert "| niah | single | 8K | 0% | 2 | 0 | 50.0 [9.4, 90.5] (n=2) |" in md
    assert "| niah | single | 16K | 100% | 2 | 1 | 0.0 [0.0, 79.3] (n=1) |" in md
    assert "| niah | multi-2 | 16K | all | 1 | 1 | — |" in md
    assert "| docvqa | all | 8K | all | 2 | 0 | 50.0 [" in md
    assert "| 0% | 50.0 | 50.0 |" in md and "| 100% | 100.0 | 0.0 |" in md  # the single-needle depth x length grid
    assert markdown_table(summarize(results)) == md.split("\n", 2)[2]
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["label"] == "base" and table["rows"] == summarize(results)
    for name in ("needle_heatmap", "accuracy_vs_length"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert b"Software" not in data and b"matplotlib" not in data.lower()  # no version stamp
    before = (tmp_path / "needle_heatmap.png").read_bytes()
    write_report(tmp_path, results, label="base")
    assert (tmp_path / "needle_heatmap.png").read_bytes() == before  # deterministic bytes
    assert set(files) == {"table_json", "table_md", "accuracy_vs_length", "needle_heatmap"}


def test_compare_runs_side_by_side(tmp_path):
    for name, shift in (("base", 0.5), ("trained", 0.0)):
        run = tmp_path / name
        write_results(run, hand_made(shift))
        (run / "run.json").write_text(json.dumps({"label": f"{name}-model"}))
    files = compare_runs([tmp_path / "base", tmp_path / "trained"], tmp_path / "cmp", training_length=8192)
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| suite | task | length | base-model | trained-model |" in md
    assert "| niah | single | 16K | 0.0 [0.0, 65.8] (n=2) (1 err) | 25.0 [0.0, 100.0] (n=2) (1 err) |" in md
    assert "| niah | single | 8K | 66.7 [20.8, 93.8] (n=3) | 66.7 [20.8, 93.8] (n=3) |" in md
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert data["runs"] == ["base-model", "trained-model"]
    assert any(e["task"] == "all" for e in data["rows"])  # two niah tasks: their mean is a row of its own
    for key in ("accuracy_vs_length", "needle_heatmaps"):
        assert (tmp_path / "cmp" / f"{key}.png").stat().st_size > 5000 and key in files


def _coded(length, depth, score, in_place, task="single"):
    """A needle answer with a 6-digit code, its first round(6 * in_place) characters in place."""
    r = _result(task, length, depth, score)
    places = [float(i < round(6 * in_place)) for i in range(6)]
    return dataclasses.replace(r, item_id=f"{r.item_id}-{in_place}",
                               metadata=json.dumps({"in_place": in_place, "in_place_by_position": places}))


def test_needle_rows_carry_partial_credit_through_tables_and_comparisons(tmp_path):
    results = [_coded(1024, 0.0, 1.0, 1.0), _coded(1024, 1.0, 0.0, 0.5), _coded(4096, 0.0, 0.0, 1 / 6),
               _coded(4096, 1.0, 0.0, 0.5), _result("single", 4096, 1.0, 0.0, status="error"),
               _coded(1024, 0.0, 0.0, 0.0, task="multi-2")]
    rows = summarize(results)
    cell = _row(rows, "niah", "single", 4096, "all")
    assert cell["score"] == 0.0 and cell["ok"] == 2  # the error item is in neither mean
    assert cell["in_place"] == pytest.approx(1 / 3, abs=1e-6)
    assert cell["in_place_ci95"][0] == 0.0 and cell["in_place_ci95"][1] == pytest.approx(1.0, abs=1e-4)  # t, n=2
    assert _row(rows, "niah", "single", 1024, 1.0)["in_place"] == 0.5
    assert _row(rows, "niah", "all", 1024, "all")["in_place"] == pytest.approx((0.75 + 0.0) / 2, abs=1e-6)
    assert "in_place" not in _row(summarize(hand_made()), "niah", "single", 8192, "all")  # answers without it
    assert cell["in_place_by_position"] == [1.0, 0.5, 0.5, 0.0, 0.0, 0.0]  # 1/6 and 1/2 of the code: per place
    for share, (low, high) in zip(cell["in_place_by_position"], cell["in_place_by_position_ci95"]):
        assert 0 <= low <= share <= high <= 1
    assert cell["in_place_by_position_ci95"][0] == [0.3424, 1.0]  # 2 of 2 in place: Wilson's interval, n=2
    assert _row(rows, "niah", "single", 1024, "all")["in_place_by_position"] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert "in_place_by_position" not in _row(rows, "niah", "all", 1024, "all")  # tasks are not pooled per place

    write_report(tmp_path / "base", results, label="base")
    md = (tmp_path / "base" / "table.md").read_text()
    assert "## niah single: characters of the code in place (%)" in md
    assert "| 4K | 33.3 [0.0, 100.0] (n=2) | 100 50 50 0 0 0 |" in md and "| 1K | 75.0 [" in md

    better = [_coded(4096, 0.0, 1.0, 1.0), _coded(4096, 1.0, 0.0, 5 / 6)]
    write_results(tmp_path / "trained", better)
    write_results(tmp_path / "base-results", results)
    compare_runs([tmp_path / "base-results", tmp_path / "trained"], tmp_path / "cmp")
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "## Needle codes: characters in place (%)" in md
    assert "| single | 4K | 33.3 [0.0, 100.0] (n=2) | 91.7 [" in md
    assert "| single | 1K | 75.0 [" in md and "| — |" in md  # the trained run has no 1K answers
    assert "| single | 4K | 100 50 50 0 0 0 | 100 100 100 100 100 50 |" in md.split("by place in the code", 1)[1]
    assert (tmp_path / "cmp" / "code_places.png").stat().st_size > 5000
    [entry] = [e for e in json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]
               if (e["task"], e["length"]) == ("single", 4096)]
    assert entry["in_place"] == {"base-results": pytest.approx(1 / 3, abs=1e-6),
                                 "trained": pytest.approx(11 / 12, abs=1e-6)}


def test_a_suite_of_one_task_has_no_rows_repeating_it(tmp_path):
    for name in ("base", "trained"):
        write_results(tmp_path / name, [_coded(1024, 0.0, 1.0, 1.0), _coded(4096, 1.0, 0.0, 0.5)])
    compare_runs([tmp_path / "base", tmp_path / "trained"], tmp_path / "cmp")
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]
    assert [(e["task"], e["length"]) for e in rows] == [("single", 1024), ("single", 4096)]
    assert "| niah | all |" not in (tmp_path / "cmp" / "compare.md").read_text()
    # one run's table likewise: no "all" rows, no second partial-credit section repeating the single task's
    results = [_coded(1024, 0.0, 1.0, 1.0), _coded(4096, 1.0, 0.0, 0.5)]
    write_report(tmp_path / "one", results, label="base")
    md = (tmp_path / "one" / "table.md").read_text()
    assert "| niah | all |" not in md and "## niah all:" not in md
    assert "| niah | single | 4K | all | 1 | 0 | 0.0 [" in md and "## niah single: characters of the code" in md
    assert any(r["task"] == "all" for r in json.loads((tmp_path / "one" / "table.json").read_text())["rows"])


def test_accuracy_plot_draws_intervals_and_runs_deterministically(tmp_path):
    """Error bars and per-run dots change the figure; a length without an interval gets none; same data, same
    bytes."""
    from mmprolong.eval.report import plot_accuracy_vs_length

    series = {"seeds": {1024: 0.9, 4096: 0.4}, "one run": {1024: 0.5, 4096: 0.0}}
    bars = {"seeds": {1024: [0.8, 1.0], 4096: [0.1, 0.7]}, "one run": {1024: None, 4096: None}}
    runs = {"seeds": {1024: [1.0, 0.8], 4096: [0.2, 0.6]}}
    plain = plot_accuracy_vs_length(series, tmp_path / "plain.png").read_bytes()
    first = plot_accuracy_vs_length(series, tmp_path / "a.png", intervals=bars, runs=runs).read_bytes()
    again = plot_accuracy_vs_length(series, tmp_path / "b.png", intervals=bars, runs=runs).read_bytes()
    without_dots = plot_accuracy_vs_length(series, tmp_path / "c.png", intervals=bars).read_bytes()
    assert first == again
    assert len({plain, first, without_dots}) == 3
    # four runs at 29/30 each: a zero-width interval over runs, rounded to 4 digits, lies just above the pooled
    # score rounded to 6; the bar is drawn (of zero height), not refused
    pooled = {"seeds": {1024: 0.966667}}
    assert plot_accuracy_vs_length(pooled, tmp_path / "d.png", intervals={"seeds": {1024: [0.9667, 0.9667]}},
                                   runs={"seeds": {1024: [0.966667] * 4}}).stat().st_size > 1000
