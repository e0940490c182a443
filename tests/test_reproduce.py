"""``mmprolong reproduce`` end to end on a tiny grid: one finding, its two arms trained for real from the shipped
starting point, the report and reproduce.json with every cell's interval and count, and a rerun (through the CLI)
that finds every arm done. Nothing here depends on which arm wins."""

import json
import re

import pytest

from mmprolong import api
from mmprolong.cli import main
from mmprolong.errors import ResumeError
from mmprolong.reproduce import ReproduceConfig
from mmprolong.reproduce.findings import VERDICTS

TINY = dict(findings=["mix"], seeds=1, train_tokens=16384, lengths=[1024, 2048], niah_items=1, heldout_items=1,
            docs=8)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    return out, api.reproduce(out, ReproduceConfig(**TINY), show_progress=False)


def test_reproduce_json_holds_each_arm_by_length_with_interval_and_count(run):
    out, summary = run
    saved = json.loads((out / "reproduce.json").read_text())
    (finding,) = saved["findings"]
    assert finding["name"] == "mix" and finding["verdict"] in VERDICTS and finding["seeds"] == [0]
    assert "8:2" in finding["claim"]
    assert set(finding["arms"]) == {"8:2", "2:8", "starting point"}
    for cells in finding["arms"].values():
        assert set(cells) == {"1024", "2048"}
        for c in cells.values():
            assert c["n"] == 5 + 12  # 5 needle depths + 3 held-out tasks x 4 depths
            assert 0 <= c["ci95"][0] <= c["accuracy"] <= c["ci95"][1] <= 1
    (comparison,) = finding["comparisons"]
    assert (comparison["better"], comparison["worse"]) == ("8:2", "2:8")
    assert comparison["n"] == [34, 34]  # both lengths pooled
    low, high = comparison["ci95"]
    assert low <= comparison["difference"] <= high
    assert finding["verdict"] == ("agrees" if low > 0 else "disagrees" if high < 0 else "inconclusive")


def test_arms_share_the_budget_the_start_and_the_items(run):
    out, _ = run
    arms = {name: json.loads((out / "arms" / f"{name}-seed0" / "arm.json").read_text())
            for name in ("balanced", "mix-2:8")}
    assert arms["balanced"]["start"] == arms["mix-2:8"]["start"]
    assert arms["mix-2:8"]["synth"]["task_mix"] == {"extract-single": 0.1, "extract-multi": 0.1, "reasoning": 0.8}
    for name in arms:
        trained = json.loads((out / "arms" / f"{name}-seed0" / "train" / "summary.json").read_text())
        assert trained["tokens"] <= 16384 and trained["steps"] == 1
    for suite in ("niah", "synth-heldout"):
        ids = [[json.loads(line)["item_id"] for line in (out / d / f"eval-{suite}" / "items.jsonl").open()]
               for d in ("arms/balanced-seed0", "arms/mix-2:8-seed0")]
        ids.append([json.loads(line)["item_id"] for line in (out / f"eval-start-{suite}" / "items.jsonl").open()])
        assert ids[0] == ids[1] == ids[2]


def test_report_has_the_claim_the_table_the_chart_and_the_verdict(run):
    out, summary = run
    report = (out / "report.md").read_text()
    verdict = summary["findings"][0]["verdict"]
    assert f"## Finding: mix ({verdict})" in report and "1 seed(s) per arm" in report
    c = summary["findings"][0]["arms"]["2:8"]["2048"]
    assert f"{100 * c['accuracy']:.1f} [{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f}] (n=17)" in report
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert figures == ["finding-mix.png"] and (out / "finding-mix.png").stat().st_size > 1000
    assert "<table>" in (out / "report.html").read_text()


def test_rerun_through_the_cli_skips_finished_arms(run, capsys):
    out, first = run
    final = out / "arms" / "mix-2:8-seed0" / "train" / "final" / "model.safetensors"
    stamps = {p: p.stat().st_mtime_ns for p in (final, out / "arms" / "balanced-seed0" / "eval-niah" / "run.json")}
    args = ["reproduce", "--out", str(out), "--findings", "mix", "--seeds", "1", "--train-tokens", "16384",
            "--lengths", "1024,2048", "--niah-items", "1", "--heldout-items", "1", "--docs", "8"]
    assert main(args) == 0
    assert '"mix": "' + first["findings"][0]["verdict"] + '"' in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing retrained or re-evaluated
    again = json.loads((out / "reproduce.json").read_text())
    assert again["findings"] == first["findings"]
    with pytest.raises(ResumeError, match="other settings"):  # the same arm with another budget is refused
        api.reproduce(out, ReproduceConfig(**{**TINY, "train_tokens": 32768}), show_progress=False)
