"""The quickstart end to end at a small size: every step runs for real from the shipped starting point, the report
and quickstart.json show what was achieved with intervals and item counts, and a rerun finds everything done."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mmprolong import api
from mmprolong.config import merge_overrides
from mmprolong.errors import ConfigError
from mmprolong.eval.items import read_items
from mmprolong.quickstart import (
    CPU_DOCS,
    CPU_QUESTIONS,
    CPU_TRAIN_TOKENS,
    INGEST,
    LOGN_WINDOW,
    PAGE_WINDOW,
    POSITION_SKIP,
    RECIPE_DOCS,
    START_WINDOW,
    _question_form,
    cpu_plan,
    make_plan,
    model_label,
    recipe_plan,
)
from mmprolong.startpoint import shipped_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    summary = api.quickstart(out, **SMALL, show_progress=False)
    return out, summary


# 14 documents: the first with a fact-card deck among the held-out ones (the 14th), so every held-out task has items
# (on the quickstart's corpus most documents are registers, which carry no reasoning questions)
SMALL = dict(docs=14, train_tokens=32_768, niah_lengths=[1024, 2048], niah_items=1, heldout_items=1,
             logn_window=LOGN_WINDOW, page_window=PAGE_WINDOW, yarn=True)


def test_report_has_every_section_and_figure(run):
    out, summary = run
    report = (out / "report.md").read_text()
    for title in ("## Data", "## Starting point", "## Training", "## Evaluation", "## Time"):
        assert title in report
    card = json.loads((shipped_path() / "card.json").read_text())
    reading = card["scores"]["reading"]["ocr-full"]["512"]  # the starting point's reading score, from its card
    assert f"transcripts of held-out pages at 512 tokens match the text layer at {100 * reading['accuracy']:.1f}%" \
        in report and f"n={reading['n']})" in report
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert {"mixture.png", "loss_trained.png", "accuracy.png", "accuracy_heldout.png", "heatmap_base.png",
            "heatmap_trained.png", "heatmap_base_inference.png", "heatmap_trained_inference.png", "code_places.png"} \
        <= set(figures)
    for name in figures:
        assert (out / name).stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert html.count("<img ") == len(figures) and "<table>" in html
    # the eval tables name the models, not their folders; the needle's also the inference settings
    assert "| starting point (%) | after LongPT (%) |" in report
    assert "their extract-single questions name no place, as LongPT's and niah's do" in report
    settings = f"YaRN past its window, log-length scaling W={LOGN_WINDOW:,}, page window P={PAGE_WINDOW:,} (%)"
    assert f"| starting point (%) | after LongPT (%) | starting point, {settings} | after LongPT, {settings} |" \
        in report and f"`attn_logn_window` W={LOGN_WINDOW:,}" in report and f"`attn_page_window` P={PAGE_WINDOW}" \
        in report and "dynamic YaRN past each model's own window (`rope_scaling` yarn-dynamic" in report


def test_numbers_in_report_come_from_the_steps(run):
    out, summary = run
    store = json.loads((out / "store" / "summary.json").read_text())
    long = json.loads((out / "data-long" / "summary.json").read_text())
    trained = json.loads((out / "train-long" / "summary.json").read_text())
    report = (out / "report.md").read_text()
    assert f"{store['pages']} pages, {store['vision_tokens']:,} vision tokens" in report
    assert f"{long['samples']} samples asking {long['questions']} questions, {long['tokens']:,} tokens" in report
    assert summary["samples"] == long["samples"] and summary["final_loss"] == trained["final_loss"]
    assert summary["questions"] == long["questions"] > long["samples"]  # up to CPU_QUESTIONS a sample
    assert long["heldout_documents"] >= 1  # the held-out eval asks about documents training never saw
    place = long["evidence_pages_by_offset"]
    assert place["edges"][0] == 0 and sum(place["pages"]) >= long["questions"]
    assert f"the {long['questions']} questions need {sum(place['pages']):,} evidence pages" in report
    # the CPU default asks for its evidence nearer the question, and says so
    manifest = json.loads((out / "data-long" / "manifest.json").read_text())
    assert manifest["config"]["depth_power"] == 4.0 and "(synth's `depth_power` 4)" in report
    config = yaml.safe_load((out / "train-long" / "config.yaml").read_text())
    assert config["model"]["path"] == str(shipped_path()) and config["model"]["rope_theta"] == 40_000.0
    assert config["data"]["position_skip"] == POSITION_SKIP and "(PoSE)" in report
    # LongPT trains the language model only: the vision tower and merger stay as the starting point has them
    start, long_model = (load_file(folder / "model.safetensors")
                         for folder in (shipped_path(), out / "train-long" / "final"))
    visual = [name for name in start if name.startswith("visual.")]  # as transformers saves Qwen2.5-VL
    assert visual and all(torch.equal(long_model[name].to(start[name].dtype), start[name]) for name in visual)
    assert not torch.equal(long_model["lm_head.weight"].to(torch.bfloat16), start["lm_head.weight"])
    vision = trained["vision_features"]  # so the tower ran once per distinct page, not once per row
    assert 0 < vision["encoded"] < vision["images"] and vision["encoded"] <= store["pages"]
    assert f"encoded {vision['encoded']:,} distinct page images once" in report
    assert long["exclusion"]["source"] == summary["decontamination"]["exclusion_list"]
    assert f"the {summary['decontamination']['against']} held-out documents" in report
    card = json.loads((shipped_path() / "card.json").read_text())  # the starting point's own niah, from its card
    cell = card["scores"]["niah"]["single"]["1024"]
    assert f"1,024 tokens {100 * cell['accuracy']:.1f}% ({100 * cell['ci95'][0]:.1f}%-" in report
    assert f"n={cell['n']}), code characters in place {100 * cell['in_place']:.1f}%" in report
    for name in ("corpus", "ingest", "decontaminate", "synth", "train", "eval", "report"):
        assert summary["timings_s"][name] >= 0


def test_quickstart_json_has_every_score_with_its_interval_and_count(run):
    out, summary = run
    saved = json.loads((out / "quickstart.json").read_text())
    assert saved["scores"] == summary["scores"]
    for model in ("base", "trained"):
        niah = saved["scores"][model]["niah"]["single"]
        assert set(niah) == {"1024", "2048"}
        answers = [json.loads(line) for line in (out / f"eval-{model}-niah" / "results.jsonl").open()]
        for length, cell in niah.items():
            assert cell["n"] == 5  # 5 depths x 1 needle
            assert 0 <= cell["ci95"][0] <= cell["accuracy"] <= cell["ci95"][1] <= 1
            meta = [json.loads(a["metadata"]) for a in answers if a["length"] == int(length)]
            assert cell["in_place"] == pytest.approx(sum(m["in_place"] for m in meta) / 5, abs=1e-6)  # per answer
            assert 0 <= cell["in_place_ci95"][0] <= cell["in_place"] <= cell["in_place_ci95"][1] <= 1
            places = cell["in_place_by_position"]  # per character of the 6-digit code; their mean is in_place
            assert places == pytest.approx([sum(m["in_place_by_position"][i] for m in meta) / 5 for i in range(6)],
                                           abs=1e-6) and sum(places) / 6 == pytest.approx(cell["in_place"], abs=1e-5)
            assert all(0 <= low <= share <= high <= 1
                       for share, (low, high) in zip(places, cell["in_place_by_position_ci95"]))
        heldout = saved["scores"][model]["synth-heldout"]
        assert set(heldout) == {"extract-single", "extract-multi", "reasoning"}
        assert all(cell["n"] == 4 for task in heldout.values() for cell in task.values())  # 4 depths x 1
        # held-out extract-single questions are asked as LongPT's are: naming no place
        config = json.loads((out / f"eval-{model}-synth-heldout" / "config.json").read_text())["config"]
        assert config["heldout_anchor_share"] == 0
        truth = [i for i in read_items(out / f"eval-{model}-synth-heldout" / "items.jsonl")
                 if i.task == "extract-single" and json.loads(i.metadata)["generator"] == "truth"]
        assert truth and not any(re.search(r" on pages? \d| in the section ", i.question) for i in truth)
    # both models once more on the needles, with the inference settings: the same items, the same weights, the
    # settings recorded with the answers
    for model in ("base", "trained"):
        assert set(saved["scores"][f"{model}-inference"]) == {"niah"}
        assert {n: c["n"] for n, c in saved["scores"][f"{model}-inference"]["niah"]["single"].items()} == \
            {"1024": 5, "2048": 5}
        plain, scaled = (json.loads((out / f"eval-{m}-niah" / "config.json").read_text())
                         for m in (model, f"{model}-inference"))
        assert scaled["backend"]["attn_logn_window"] == LOGN_WINDOW and "attn_logn_window" not in plain["backend"]
        assert scaled["backend"]["attn_page_window"] == PAGE_WINDOW and "attn_page_window" not in plain["backend"]
        assert scaled["backend"]["weights"] == plain["backend"]["weights"]
        # each needle in a haystack of its own: a length's needles are independent draws, as its interval assumes
        assert plain["config"]["haystacks"] == scaled["config"]["haystacks"] == "per-item"
        # YaRN past each model's own window: the starting point's 1K, LongPT's 4K
        assert scaled["backend"]["rope_scaling"] == {"kind": "yarn-dynamic", "window": {"base": START_WINDOW,
                                                                                      "trained": 4096}[model]}
        assert "rope_scaling" not in plain["backend"]
        assert [i.content_key() for i in read_items(out / f"eval-{model}-inference-niah" / "items.jsonl")] == \
            [i.content_key() for i in read_items(out / f"eval-{model}-niah" / "items.jsonl")]  # needles: own files
    report = (out / "report.md").read_text()
    assert "each in a haystack of its own" in report
    cell = saved["scores"]["trained"]["niah"]["single"]["2048"]
    shown = f"{100 * cell['accuracy']:.1f} [{100 * cell['ci95'][0]:.1f}, {100 * cell['ci95'][1]:.1f}] (n=5)"
    assert "| niah | single | 2K |" in report and shown in report
    shown = f"{100 * cell['in_place']:.1f} [{100 * cell['in_place_ci95'][0]:.1f}, {100 * cell['in_place_ci95'][1]:.1f}]"
    assert "| single | 2K | " in report and shown in report.split("code characters in place (%)", 1)[1]
    places = " ".join(f"{100 * share:.0f}" for share in cell["in_place_by_position"])
    assert places in report.split("by place in the code (%)", 1)[1]


def test_rerun_finds_every_step_done(run):
    out, first = run
    weights = (out / "train-long" / "final" / "model.safetensors").read_bytes()
    again = api.quickstart(out, **SMALL, show_progress=False)
    assert again["final_loss"] == first["final_loss"] and again["samples"] == first["samples"]
    assert (out / "train-long" / "final" / "model.safetensors").read_bytes() == weights
    for suite in ("niah", "synth-heldout"):
        run_json = json.loads((out / f"eval-trained-{suite}" / "run.json").read_text())
        assert run_json["cached"] == run_json["items"] > 0  # every answer from the cache: no generation
        assert run_json["errors"] == 0
    totals = json.loads((out / "timings.json").read_text())
    assert totals["train"] >= first["timings_s"]["train"]
    # the same run without the inference settings: their scores and heatmaps leave the report, the plain ones stay
    plain = api.quickstart(out, **{**SMALL, "logn_window": 0, "page_window": 0, "yarn": False}, show_progress=False)
    assert set(plain["scores"]) == {"base", "trained"} and plain["scores"]["trained"] == first["scores"]["trained"]
    report = (out / "report.md").read_text()
    assert "heatmap_trained.png" in report and "_inference.png" not in report and "log-length scaling" not in report


def test_heldout_questions_are_asked_in_the_form_of_longpts_own():
    # the CPU default's LongPT asks without the place (niah's form), a recipe's as its synth config says (the
    # paper's anchored form by default): the held-out eval and the report follow
    assert _question_form(make_plan()) == "name no place, as LongPT's and niah's do"
    plan = make_plan(recipe=REPO / "recipes" / "debug-cpu.yaml", model=shipped_path())
    assert _question_form(plan) == "say where their fact is, as LongPT's do"
    plan.long_synth["anchor_share"] = 0.5
    assert _question_form(plan) == "say where their fact is, as LongPT's do (50% of them)"


def test_needles_with_inference_settings_by_default_up_to_twice_the_window_and_never_in_a_recipe(tmp_path):
    # the CPU default answers the needles a second time with dynamic YaRN past each model's window and page-local
    # attention at half the starting point's, up to 8K (16K costs as much as 1K-8K together); log-length scaling on
    # request; turned off one by one, then the pass; a recipe's run is evaluated as the paper does
    plan = make_plan()
    assert plan.niah_lengths == [1024, 2048, 4096, 8192, 16384] and plan.inference_lengths == [1024, 2048, 4096, 8192]
    assert plan.yarn and plan.logn_window == 0 and plan.page_window == PAGE_WINDOW == START_WINDOW // 2
    assert make_plan(logn_window=LOGN_WINDOW).logn_window == LOGN_WINDOW == START_WINDOW
    assert plan.evaluates_inference and make_plan(yarn=False).evaluates_inference
    assert make_plan(page_window=0).evaluates_inference
    assert not make_plan(yarn=False, page_window=0).evaluates_inference
    assert not make_plan(recipe=REPO / "recipes" / "debug-cpu.yaml", model=shipped_path()).evaluates_inference
    plan = cpu_plan(docs=14, seed=0, train_tokens=32_768, niah_lengths=[2048, 16384], niah_items=1, heldout_items=1,
                    page_window=PAGE_WINDOW)
    assert plan.inference_lengths == [2048] and plan.evaluates_inference
    assert model_label("trained-inference", plan) == f"after LongPT, page window P={PAGE_WINDOW:,}"
    with pytest.raises(ConfigError, match="yarn"):
        api.quickstart(tmp_path, recipe=REPO / "recipes" / "debug-cpu.yaml", yarn=True, show_progress=False)
    for name in ("logn_window", "page_window"):
        with pytest.raises(ConfigError, match=name):
            api.quickstart(tmp_path, **{name: -1}, show_progress=False)
        with pytest.raises(ConfigError, match=name):
            api.quickstart(tmp_path, recipe=REPO / "recipes" / "debug-cpu.yaml", **{name: 512}, show_progress=False)


def test_defaults_differ_for_the_cpu_default_and_a_recipe(tmp_path):
    # the CPU default: its own world's size, questions and budget; a recipe: the paper's one question a sample, a
    # small generated corpus when it is given no PDFs, and its own budget (train_tokens refused, not ignored)
    plan = make_plan()
    assert plan.corpus["docs"] == CPU_DOCS and plan.long_synth["questions_per_sample"] == CPU_QUESTIONS
    assert plan.long_synth["budget_tokens"] == plan.long_train["schedule"]["budget_tokens"] == CPU_TRAIN_TOKENS
    recipe = REPO / "recipes" / "debug-cpu.yaml"
    plan = make_plan(recipe=recipe, model=shipped_path())
    assert plan.corpus["docs"] == RECIPE_DOCS and plan.long_synth["questions_per_sample"] == 1
    plan = make_plan(recipe=recipe, model=shipped_path(), docs=3, questions=2)
    assert plan.corpus["docs"] == 3 and plan.long_synth["questions_per_sample"] == 2
    with pytest.raises(ConfigError, match="train_tokens"):
        make_plan(recipe=recipe, model=shipped_path(), train_tokens=32_768)
    # LongPT's position skipping: the CPU default's own (1 turns it off); a recipe's is its data.position_skip
    assert make_plan().long_train["data"]["position_skip"] == POSITION_SKIP > 1
    assert make_plan(position_skip=1).long_train["data"]["position_skip"] == 1
    assert "PoSE" in make_plan().description and "PoSE" not in make_plan(position_skip=1).description
    with pytest.raises(ConfigError, match="position_skip"):
        make_plan(recipe=recipe, model=shipped_path(), position_skip=2)
    for field, value in (("docs", 0), ("questions", 0), ("position_skip", 0.5)):
        with pytest.raises(ConfigError, match=field):
            api.quickstart(tmp_path / field, **{field: value}, show_progress=False)
        assert not (tmp_path / field).exists()


def test_device_is_where_longpt_trains(tmp_path):
    # auto (the default): the GPU when there is one; with a recipe, auto keeps the recipe's own setting
    options = dict(docs=14, seed=0, train_tokens=32_768, niah_lengths=None, niah_items=1, heldout_items=1)
    assert cpu_plan(**options).long_train["device"] == "auto"
    assert cpu_plan(**options, device="cuda").long_train["device"] == "cuda"
    recipe = REPO / "recipes" / "debug-cpu.yaml"
    assert yaml.safe_load(recipe.read_text())["device"] == "cpu"
    options = dict(model=shipped_path(), pdfs=None, docs=14, seed=0, niah_lengths=None, niah_items=1,
                   heldout_items=1)
    assert recipe_plan(recipe, **options).long_train["device"] == "cpu"
    assert recipe_plan(recipe, **options, device="cuda").long_train["device"] == "cuda"
    with pytest.raises(ConfigError, match="device"):
        api.quickstart(tmp_path / "a", device="tpu", show_progress=False)
    if not torch.cuda.is_available():  # asked for a GPU where there is none: refused before the data is made
        with pytest.raises(ConfigError, match="no CUDA device"):
            api.quickstart(tmp_path / "b", device="cuda", show_progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_recipe_runs_on_two_processes(run, tmp_path):
    """--recipe with --model and --pdfs under torchrun (gloo, 2 CPU processes): rank 0 makes the data while
    rank 1 waits, both train, rank 0 evaluates the given model and the trained one and writes the report."""
    out, _ = run
    recipe = merge_overrides(yaml.safe_load((REPO / "recipes" / "debug-cpu.yaml").read_text()), {
        "model.max_pixels": INGEST["max_pixels"],  # a config change: small pages, so 4K rows hold many
        "schedule.budget_tokens": 16384, "logging.progress_bar": False})
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(recipe))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mmprolong.cli",
         "quickstart", "--recipe", str(tmp_path / "small.yaml"), "--model", str(shipped_path()),
         "--pdfs", str(out / "corpus"), "--out", str(tmp_path / "run"), "--niah-lengths", "1k,2k",
         "--heldout-items", "1"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = tmp_path / "run"
    trained = json.loads((run_dir / "train-long" / "summary.json").read_text())
    assert trained["world_size"] == 2 and trained["steps"] == 2  # 16,384 tokens in steps of 2 x 4,096
    assert not (run_dir / "corpus").exists() and not (run_dir / "start").exists()  # the user's PDFs and model
    long = json.loads((run_dir / "data-long" / "summary.json").read_text())
    assert long["max_pixels"] == INGEST["max_pixels"]  # pages rendered at the recipe model's pixel budget
    assert 0 < max(json.loads((run_dir / "data-long" / "samples_lengths.json").read_text())["tokens"]) <= 4096
    report = (run_dir / "report.md").read_text()
    assert "LongPT: small.yaml at 4,096 tokens with RoPE base 4e+06" in report
    assert f"Starting point: {shipped_path()}" in report
    base_eval = json.loads((run_dir / "eval-base-niah" / "run.json").read_text())
    assert base_eval["items"] > 0 and base_eval["errors"] == 0
    assert (run_dir / "heatmap_trained.png").is_file() and (run_dir / "heatmap_base.png").is_file()
    assert not list(run_dir.glob("eval-*-inference-niah"))  # a recipe's run is evaluated as the paper does


def test_qwen3_vl_recipe_runs_on_two_processes(run, tmp_path):
    """The tiny Qwen3-VL recipe from a tiny Qwen3-VL checkpoint under torchrun (gloo, 2 CPU processes): pages are
    ingested and counted at the model's family and budget (32-px tokens), and every step runs on that family."""
    from mmprolong.models.config import ModelConfig
    from mmprolong.models.loading import load_model, save_model

    out, _ = run
    recipe = merge_overrides(yaml.safe_load((REPO / "recipes" / "debug-cpu-qwen3-vl.yaml").read_text()), {
        "schedule.budget_tokens": 16384, "logging.progress_bar": False})
    (tmp_path / "qwen3.yaml").write_text(yaml.safe_dump(recipe))
    start = save_model(*load_model(ModelConfig(preset="tiny-qwen3-vl")), tmp_path / "tiny-qwen3-vl")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mmprolong.cli",
         "quickstart", "--recipe", str(tmp_path / "qwen3.yaml"), "--model", str(start), "--pdfs",
         str(out / "corpus"), "--out", str(tmp_path / "run"), "--niah-lengths", "1k,2k", "--heldout-items", "1"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = tmp_path / "run"
    store = json.loads((run_dir / "store" / "summary.json").read_text())["config"]
    assert (store["family"], store["min_pixels"], store["max_pixels"]) == ("qwen3_vl", 4096, 131072)
    assert json.loads((run_dir / "data-long" / "summary.json").read_text())["family"] == "qwen3_vl"
    trained = json.loads((run_dir / "train-long" / "summary.json").read_text())
    assert trained["world_size"] == 2 and trained["steps"] == 2
    # every page's count in synth's samples is what the Qwen3-VL processor makes of its image (else it is dropped)
    assert trained["skipped_samples"]["encode_failed"] == 0 and trained["samples_kept"] > 0
    assert json.loads((run_dir / "train-long" / "final" / "config.json").read_text())["model_type"] == "qwen3_vl"
    for name in ("eval-base-niah", "eval-trained-niah", "eval-trained-synth-heldout"):
        assert json.loads((run_dir / name / "config.json").read_text())["family"] == "qwen3_vl"
    for name in ("eval-base-niah", "eval-trained-niah"):  # (5 documents hold none of the recipe's 5% held out)
        run_json = json.loads((run_dir / name / "run.json").read_text())
        assert run_json["items"] > 0 and run_json["errors"] == 0
    assert "LongPT: qwen3.yaml at 4,096 tokens with RoPE base 2e+07" in (run_dir / "report.md").read_text()


def test_recipe_problems_are_refused_before_any_work(run, tmp_path):
    out, _ = run
    recipe = REPO / "recipes" / "debug-cpu.yaml"
    with pytest.raises(ConfigError, match="model"):
        api.quickstart(tmp_path / "a", recipe=recipe, model=tmp_path / "missing", show_progress=False)
    with pytest.raises(ConfigError, match="recipe"):
        api.quickstart(tmp_path / "b", model=shipped_path(), show_progress=False)
    with pytest.raises(ConfigError, match="pdfs"):
        api.quickstart(tmp_path / "c", recipe=recipe, model=shipped_path(), pdfs=tmp_path / "none",
                       show_progress=False)
    (tmp_path / "bad.yaml").write_text("schedule:\n  warmup_fraction: 2.0\n")
    with pytest.raises(ConfigError, match="schedule.warmup_fraction"):
        api.quickstart(tmp_path / "d", recipe=tmp_path / "bad.yaml", model=shipped_path(), show_progress=False)
    with pytest.raises(ConfigError, match="rebuild_start"):
        api.quickstart(tmp_path / "e", recipe=recipe, model=shipped_path(), rebuild_start=True, show_progress=False)
    assert not any((tmp_path / name).exists() for name in "abcde")  # nothing made before the refusal


def test_a_copy_of_a_heldout_document_is_kept_out_of_longpt(tmp_path):
    """A re-saved copy of a held-out document among the training documents is found and listed for synth; the
    held-out document itself is not (it is out of training by the split already)."""
    from mmprolong.decontam import DecontamConfig
    from mmprolong.decontam.exclusion import load_exclusion
    from mmprolong.decontam.variants import make_variant
    from mmprolong.ingest import IngestConfig
    from mmprolong.ingest.pdf import doc_id_of
    from mmprolong.quickstart import decontaminate_heldout
    from mmprolong.split import heldout_split, is_heldout

    corpus = tmp_path / "corpus"
    api.make_corpus(corpus, docs=6, seed=4, min_pages=4, max_pages=6, layout="large-print", show_progress=False)
    ids = {doc_id_of(p.read_bytes()): p for p in sorted(corpus.glob("*.pdf"))}
    held = heldout_split(ids, 0.2)[1]
    assert held, "the seed must hold out a document"
    # a copy the split keeps in training (else the split, not decontamination, would keep it out)
    copy = next(c for c in (make_variant(ids[held[0]].read_bytes(), "resaved", seed=s) for s in range(20))
                if not is_heldout(doc_id_of(c), 0.2))
    (corpus / "copy.pdf").write_bytes(copy)
    api.ingest(corpus, tmp_path / "store", IngestConfig(**INGEST), show_progress=False)
    found = decontaminate_heldout(tmp_path / "store", corpus, tmp_path / "decontam", 0.2, DecontamConfig(),
                                  show_progress=False)
    assert found["against"] == len(held) and found["leaked_documents"] == 1
    assert load_exclusion(found["exclusion_list"]).doc_ids == {doc_id_of(copy)}

