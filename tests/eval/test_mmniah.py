"""mmniah: MMLongBench's released NIAH files (generated here in their layout, made-up content, real PNGs) are
rebuilt at chosen lengths with exact counts, needles kept at their depth, every record accounted for, and scored
with MMLongBench's metrics."""

import json
from pathlib import Path

import pytest
from eval_fixtures import FakeBackend

from mmprolong.errors import ConfigError
from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.backends.base import Answer
from mmprolong.eval.config import MMNIAH_TASKS, VISUAL_HAYSTACK_TASKS
from mmprolong.eval.items import NO_DEPTH, read_items, read_results
from mmprolong.eval.suites.common import SuiteContext
from mmprolong.eval.suites.mmniah import Unit, build_items, fit_haystack, source_file, task_files
from mmprolong.eval.suites.mmniah_samples import write_mmniah_samples
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

LENGTHS = [768, 1536]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_mmniah_samples(tmp_path_factory.mktemp("mmniah"), records=5, lengths_k=(1, 2))


def _config(sample, **overrides):
    return EvalConfig(suite="mmniah", data_dir=str(sample["data_dir"]), image_dir=str(sample["image_dir"]),
                      **{"lengths": LENGTHS, "mmniah_tasks": list(MMNIAH_TASKS), **overrides})


@pytest.fixture(scope="module")
def items(tmp_path_factory, sample, template):
    ctx = SuiteContext(_config(sample), template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS,
                       Path(tmp_path_factory.mktemp("out")))
    return build_items(ctx)


def _raw(sample, name):
    return [json.loads(line) for line in (sample["data_dir"] / "NIAH" / name).read_text().splitlines()]


def test_sample_files_have_the_released_layout(sample):
    files = task_files(sample["data_dir"])
    assert set(files) == set(MMNIAH_TASKS + VISUAL_HAYSTACK_TASKS)
    assert all(set(f) == {1024, 2048} for f in files.values())
    assert files["vh_single"][1024].name == "vh_single_test_1000_K1_dep6.jsonl"
    row = _raw(sample, "retrieval-image_test_K1_dep6.jsonl")[0]
    assert {"id", "question", "answer", "ctxs", "image_list", "choices_image", "positive_ctxs"} <= set(row)
    assert sum(c["text"].count("<image>") for c in row["ctxs"]) == len(row["image_list"])
    assert isinstance(row["answer"], int) and any(c.get("has_ans") for c in row["ctxs"])
    assert all((sample["image_dir"] / p).is_file() for p in row["image_list"] + row["choices_image"])
    row = _raw(sample, "counting-image_test_K1_dep3.jsonl")[0]
    assert "<image>" in row["question"] and row["needle_image_list"] and isinstance(row["answer"], list)
    row = _raw(sample, "vh_multi_test_1000_K2_dep3.jsonl")[0]
    assert all(isinstance(c, str) for c in row["ctxs"]) and row["answer"] in ("Yes", "No")


def test_source_file_is_the_smallest_long_enough():
    files = {8192: Path("k8"), 65536: Path("k64"), 131072: Path("k128")}
    assert source_file(files, 65536) == Path("k64") and source_file(files, 70000) == Path("k128")
    assert source_file(files, 4096) == Path("k8") and source_file(files, 524288) == Path("k128")


def test_every_item_lands_in_its_length_with_the_needles_kept(items, sample, template):
    assert len(items) == 6 * 5 * len(LENGTHS)
    assert not [i.error for i in items if i.error]
    for item in items:
        meta = json.loads(item.metadata)
        assert item.length - meta["tolerance"] <= item.tokens <= item.length
        parts = [p if isinstance(p, str) else p.vision_tokens for p in item.parts]
        assert item.tokens == len(template.encode(parts, json.dumps([int(a) for a in item.answers])
                                                  if item.metric == "soft-acc" else item.answers[0]))
        assert f"_K{1 if item.length <= 1024 else 2}_dep" in meta["source"]  # the smallest file long enough
        text = "".join(p for p in item.parts if isinstance(p, str))
        if item.task in ("retrieval-text", "counting-text", "reasoning-text"):
            raw = {r["id"]: r for r in _raw(sample, meta["source"])}[meta["id"]]
            for needle in raw["positive_ctxs"]:
                assert needle["text"] in text  # every text needle survives the cut
        assert meta["needles"] >= 1 and (meta["kept"] < meta["haystack"] or meta["added"] > 0)


def test_depth_is_kept_when_cutting_and_padding(items):
    single = [i for i in items if i.depth != NO_DEPTH]
    assert len(single) == 3 * 5 * len(LENGTHS)  # retrieval-text, retrieval-image, reasoning-image record depths
    for item in single:
        assert item.achieved_depth == pytest.approx(item.depth, abs=0.12), (item.task, item.length)
    assert {i.depth for i in single} == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_image_tasks_show_their_images_where_the_records_put_them(items):
    item = next(i for i in items if i.task == "retrieval-image")
    options = [p for p in item.parts if not isinstance(p, str)][-4:]
    assert all("mm-niah/needles" in o.path for o in options)
    assert item.parts[-2].endswith("\nD. ") and item.parts[-1] is options[-1]  # "Question: ...\nA. <image>..."
    needle = [p for p in item.parts if not isinstance(p, str)][item.evidence[0]]
    raw = json.loads(item.metadata)
    assert needle.path.endswith(".png") and "needles" in needle.path and raw["needles"] == 1
    assert item.answers[0] in "ABCD" and item.metric == "mc-acc"
    count = next(i for i in items if i.task == "counting-image")
    question_images = [p for p in count.parts[-3:] if not isinstance(p, str)]
    assert [p.path.endswith("needles/star.png") for p in question_images] == [True]
    assert count.metric == "soft-acc" and len(count.evidence) == len(count.answers)


def test_fit_haystack_scales_evenly_and_keeps_needles():
    units = [Unit(("a",), 10, False) for _ in range(10)]
    units.insert(5, Unit(("N",), 4, True))
    cut = fit_haystack(units, [], 54)
    assert isinstance(cut, list) and sum(u.cost for u in cut) <= 54 and cut.count(units[5]) == 1
    before = sum(u.cost for u in cut[: cut.index(units[5])])
    assert before == 20 or before == 30  # half of the 50 haystack tokens remain, about half of them before
    pool = [Unit(("p",), 7, False) for _ in range(40)]
    grown = fit_haystack(units, pool, 204)
    assert 204 - 7 < sum(u.cost for u in grown) <= 204
    position = grown.index(units[5])
    assert sum(u.cost for u in grown[:position]) == pytest.approx(100, abs=7)  # the needle stays mid-way
    assert "needles alone" in fit_haystack(units, pool, 3)
    assert "no haystack" in fit_haystack([Unit(("N",), 4, True)], pool, 50)


def test_every_record_is_accounted_for(tmp_path, sample, template):
    data = tmp_path / "mmlb_data" / "NIAH"
    data.mkdir(parents=True)
    rows = _raw(sample, "retrieval-text_test_K1_dep6.jsonl")
    rows[1]["answer"] = [["Saffron", "red saffron"]]  # alternatives, as nested lists
    del rows[2]["ctxs"]
    rows[3]["image_list"] = rows[3]["image_list"][1:]
    lines = [json.dumps(r) for r in rows] + ["{not json", json.dumps(["a list"])]
    (data / "retrieval-text_test_K1_dep6.jsonl").write_text("\n".join(lines) + "\n")
    mc = _raw(sample, "retrieval-image_test_K1_dep6.jsonl")
    mc[0]["answer"] = 9
    mc[1]["image_list"][0] = "mm-niah/haystack/missing.png"
    (data / "retrieval-image_test_K1_dep6.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    config = EvalConfig(suite="mmniah", data_dir=str(tmp_path / "mmlb_data"), image_dir=str(sample["image_dir"]),
                        lengths=[768], mmniah_tasks=["retrieval-text", "retrieval-image", "counting-text"],
                        mmniah_questions=-1)
    built = build_items(SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, tmp_path / "out"))
    by_task = {t: [i for i in built if i.task == t] for t in ("retrieval-text", "retrieval-image", "counting-text")}
    assert len(by_task["retrieval-text"]) == 7 and len(by_task["retrieval-image"]) == 5
    errors = {json.loads(i.metadata).get("id"): i.error for i in built if i.error}
    assert "field 'ctxs' missing" in errors["retrieval-text-2"]
    assert "markers but image_list has" in errors["retrieval-text-3"]
    assert "not JSON" in errors["#6"] and "is a list, not an object" in errors["#7"]
    assert "not an option index below 4" in errors["retrieval-image-0"]
    assert "missing.png not found" in errors["retrieval-image-1"]
    assert by_task["counting-text"][0].error.startswith("no counting-text_test*_K*.jsonl file")
    nested = next(i for i in by_task["retrieval-text"] if json.loads(i.metadata)["id"] == "retrieval-text-1")
    assert nested.answers == ("Saffron", "red saffron") and not nested.error


def test_unmarked_needles_are_used_only_at_their_own_length(tmp_path, sample, template):
    data = tmp_path / "mmlb_data" / "NIAH"
    data.mkdir(parents=True)
    rows = _raw(sample, "vh_single_test_1000_K1_dep6.jsonl")
    for row in rows:
        del row["positive_ctxs"]
    (data / "vh_single_test_1000_K1_dep6.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = EvalConfig(suite="mmniah", data_dir=str(tmp_path / "mmlb_data"), image_dir=str(sample["image_dir"]),
                        lengths=[1024], mmniah_tasks=["vh_single"], length_tolerance=2000)
    built = build_items(SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, tmp_path / "a"))
    assert not any(i.error for i in built)  # a tolerance wide enough: used as released
    config = EvalConfig.from_dict({**config.to_dict(), "length_tolerance": -1})
    built = build_items(SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, tmp_path / "b"))
    assert all("no needle is marked" in i.error for i in built) and len(built) == 5


def test_config_checks(sample):
    with pytest.raises(ConfigError, match="data_dir"):
        EvalConfig(suite="mmniah").validate()
    with pytest.raises(ConfigError, match="mmniah_tasks"):
        EvalConfig.from_dict({"suite": "mmniah", "data_dir": "x", "mmniah_tasks": ["counting"]})
    with pytest.raises(ConfigError, match="mmniah_questions"):
        EvalConfig.from_dict({"suite": "mmniah", "data_dir": "x", "mmniah_questions": 0})
    assert EvalConfig().mmniah_tasks == list(MMNIAH_TASKS)  # the paper's MM-NIAH tasks by default
    assert "mmniah_tasks" in _config(sample).item_fields() and "mmniah_tasks" not in EvalConfig().item_fields()


class Oracle(FakeBackend):
    """Answers every mmniah item right, in the form each task asks for, and the visual haystack without yes/no."""

    def generate_one(self, item, loader, settings) -> Answer:
        self.calls += 1
        loader.encoded(item.images)
        if item.metric == "soft-acc":
            return Answer(f"Counting each statement... Answer: [{', '.join(item.answers)}]")
        if item.metric == "binary-acc":
            return Answer("Hard to say.")
        return Answer(f"Answer: {item.answers[0]}")


def test_evaluate_scores_with_mmlongbench_metrics(tmp_path, sample):
    config = _config(sample, lengths=[768], mmniah_questions=4)
    summary = evaluate(Oracle(), out_dir=tmp_path / "run", config=config)
    assert summary["items"] == 6 * 4 and summary["errors"] == 0
    results = read_results(tmp_path / "run")
    assert all(r.score == 1.0 for r in results)
    assert len(read_items(tmp_path / "run" / "items.jsonl")) == 24
    rows = json.loads((tmp_path / "run" / "table.json").read_text())["rows"]
    overall = [r for r in rows if r["suite"] == "mmniah" and r["task"] == "all"]
    assert overall and overall[0]["score"] == 1.0

    wrong = evaluate(FakeBackend(answer="Answer: [99], none of these"), out_dir=tmp_path / "wrong", config=config)
    assert wrong["errors"] == 0 and all(r.score == 0.0 for r in read_results(tmp_path / "wrong"))


def test_visual_haystack_default_answers_rotate(tmp_path, sample):
    config = _config(sample, lengths=[1024], mmniah_tasks=["vh_single"], mmniah_questions=4)
    evaluate(Oracle(), out_dir=tmp_path / "vh", config=config)
    results = read_results(tmp_path / "vh")
    defaults = [json.loads(r.metadata)["default_label"] for r in results]
    assert defaults == [0, 1, 1, 0]
    golds = {json.loads(i.metadata)["id"]: i.answers[0] for i in read_items(tmp_path / "vh" / "items.jsonl")}
    assert [r.score for r in results] == [float((d == 1) == (g == "Yes")) for d, g in zip(defaults, golds.values())]
