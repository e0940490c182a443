"""``mmprolong reproduce`` end to end on a tiny grid: one finding, its two arms trained for real from the shipped
starting point, the report and reproduce.json with every cell's interval and count, and a rerun (through the CLI)
that finds every arm done. Nothing here depends on which arm wins."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmprolong import api
from mmprolong.cli import main
from mmprolong.config import merge_overrides
from mmprolong.errors import ResumeError
from mmprolong.quickstart import INGEST
from mmprolong.reproduce import ReproduceConfig
from mmprolong.reproduce.findings import VERDICTS
from mmprolong.reproduce.run import model_rope_theta
from mmprolong.startpoint import shipped_path

REPO = Path(__file__).resolve().parents[1]

# docs=14: a fact-card deck among the held-out documents, so all three held-out tasks have items (tests/test_quickstart)
TINY = dict(findings=["mix"], seeds=1, train_tokens=16384, lengths=[1024, 2048], niah_items=1, heldout_items=1,
            docs=14)


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
        assert trained["tokens"] <= 16384 and trained["steps"] == 4  # one 4K row a step, as the quickstart
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


def test_recipe_runs_every_arm_on_two_processes(run, tmp_path):
    """--recipe with --model and --pdfs under torchrun (gloo, 2 CPU processes): rank 0 makes the data and each
    arm's mixture while rank 1 waits, both train every arm (in one process group), rank 0 evaluates and reports.
    The arms' RoPE bases are multiples of the starting checkpoint's, not the recipe's."""
    out, _ = run
    recipe = merge_overrides(yaml.safe_load((REPO / "recipes" / "debug-cpu.yaml").read_text()), {
        "model.max_pixels": INGEST["max_pixels"], "schedule.budget_tokens": 16384, "logging.progress_bar": False})
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(recipe))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mmprolong.cli",
         "reproduce", "--recipe", str(tmp_path / "small.yaml"), "--model", str(shipped_path()), "--pdfs",
         str(out / "corpus"), "--out", str(tmp_path / "run"), "--findings", "mix", "--lengths", "2048",
         "--niah-items", "1", "--heldout-items", "1"], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "reproduce.json").read_text())
    (finding,) = summary["findings"]
    assert finding["name"] == "mix" and finding["verdict"] in VERDICTS
    assert summary["window"] == 4096 and summary["config"]["train_tokens"] == 16384
    start_theta = model_rope_theta(shipped_path())
    assert recipe["model"]["rope_theta"] != 4 * start_theta  # so the check below tells them apart
    for arm in ("balanced", "mix-2:8"):  # the second arm trains in the process group of the first
        arm_dir = run_dir / "arms" / f"{arm}-seed0"
        trained = json.loads((arm_dir / "train" / "summary.json").read_text())
        assert trained["world_size"] == 2 and trained["steps"] == 2  # 16,384 tokens in steps of 2 x 4,096
        config = json.loads((arm_dir / "train" / "final" / "config.json").read_text())
        assert config["text_config"]["rope_parameters"]["rope_theta"] == 4 * start_theta
    assert not (run_dir / "corpus").exists()  # the user's PDFs
    assert "LongPT: small.yaml at 4,096 tokens" in (run_dir / "report.md").read_text()
