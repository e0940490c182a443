"""The starting point: the shipped model loads offline and reproduces its recorded check; a build runs its stages,
writes its model card, resumes, and refuses a bad recipe before any work."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mmprolong import startpoint
from mmprolong.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = {
    "corpus": {"docs": 8, "seed": 5, "min_pages": 8, "max_pages": 12, "layout": "large-print"},
    "ingest": {"max_pixels": 100352, "max_dpi": 72.0, "workers": 1},
    "window": 1024,
    "model": {"preset": "tiny", "seed": 0, "rope_theta": 10000.0, "max_position_embeddings": 1024,
              "max_pixels": 100352},
    "stages": [
        {"name": "read", "synth": {"target_tokens": 400, "buckets": [100, 401], "task_mix": {"ocr-full": 1.0},
                                   "budget_tokens": 6000, "seed": 1},
         "train": {"device": "cpu", "optim": {"lr": 1e-3}, "logging": {"progress_bar": False, "plot": True},
                   "schedule": {"budget_tokens": 4096, "global_batch_tokens": 2048, "warmup_fraction": 0.5,
                                "min_lr": 1e-4}}},
        {"name": "vqa", "corpus": "other",  # its own corpus; the evaluation's held-out documents: 2 of the main 8
         "synth": {"target_tokens": 1024, "buckets": [256, 1025], "budget_tokens": 8000, "seed": 2,
                   "task_mix": {"extract-single": 1.0}, "heldout_fraction": 0.35},
         "train": {"device": "cpu", "optim": {"lr": 1e-3}, "logging": {"progress_bar": False},
                   "schedule": {"budget_tokens": 4096, "global_batch_tokens": 2048, "warmup_fraction": 0.5,
                                "min_lr": 1e-4},
                   "checkpoint": {"final_dtype": "bfloat16"}}},
    ],
    "corpora": {"other": {"docs": 4, "seed": 6, "min_pages": 8, "max_pages": 12, "layout": "large-print"}},
    "eval": {"niah_items_per_cell": 1, "heldout_items": 1, "depth_steps": 2, "reading_items": 1},
}


def test_the_shipped_starting_point_reproduces_its_recorded_check(tmp_path):
    """Offline, from the package: the fixed niah grid of its card, answer for answer."""
    card = json.loads((startpoint.shipped_path() / startpoint.CARD_JSON).read_text())
    check = startpoint.fixed_check(startpoint.shipped_path(), tmp_path)
    assert check["answers"] == card["check"]["answers"]
    assert check["score"] == card["check"]["score"]
    assert card["parameters"] > 2_000_000 and card["recipe"]["window"] == 1024
    size = sum(p.stat().st_size for p in startpoint.shipped_path().glob("*.safetensors"))
    assert size <= 25 * 2**20  # the package carries at most 25 MB of weights


def test_the_recipe_in_the_repository_is_valid_and_keeps_the_vision_tower_frozen_in_every_stage(tmp_path):
    recipe = startpoint.load_recipe(REPO / "recipes" / "miniature-start.yaml")
    recipe.validate()
    assert [s.name for s in recipe.stages] == ["read", "vqa", "notes", "notes2", "docs", "unanchored", "names",
                                               "names2", "world", "names3", "world2", "names4", "blend"]
    assert recipe.model["preset"] == "mini"
    assert [s.corpus for s in recipe.stages] == ["", "", "registers", "registers", "world", "world", "notes",
                                                 "notes", "world", "notes", "world", "notes", "notes"]
    for stage in recipe.stages[5:]:  # their questions name no place, as niah's and LongPT's
        assert all(synth["anchor_share"] == 0 for synth in (stage.synth, *stage.mix.values()))
    assert set(recipe.stages[-1].mix) == {"world"}  # the last trains on note questions and the world's together
    assert recipe.corpora["notes"]["register_gap"] == 0  # notes beside notes: the choice by name
    assert recipe.corpora["registers"]["register_gap"] > 0  # notes stand among other cards, as the needle does
    for index in range(len(recipe.stages)):  # the recipe's model section reaches the later stages too
        model = startpoint.stage_train_config(recipe, index, tmp_path).model
        assert (model.train_vision, model.train_merger, model.train_language) == (False, False, True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("start")
    recipe = startpoint.StartRecipe.from_dict(TINY_RECIPE)
    return out, recipe, startpoint.build(recipe, out, show_progress=False)


def test_a_build_trains_its_stages_in_order_and_writes_a_model_card(built):
    out, _, final = built
    read = json.loads((out / "train-read" / "summary.json").read_text())
    vqa = yaml.safe_load((out / "train-vqa" / "config.yaml").read_text())
    assert read["steps"] == 2 and vqa["model"]["path"] == str(out / "train-read" / "final")  # stage 2 continues
    # stage 2 trains on its own corpus; the evaluation's held-out documents come from the main one
    assert json.loads((out / "data-vqa" / "summary.json").read_text())["store"].endswith("store-other")
    documents = {p.stem for p in (out / "corpus").glob("*.pdf")}
    assert len(documents) == 8 and len({p.stem for p in (out / "corpus-other").glob("*.pdf")}) == 4
    stores = {json.loads((out / f"eval-{s}" / "config.json").read_text())["config"]["store_dir"]
              for s in ("niah", "synth-heldout", "reading")}
    assert stores == {str(out / "store")}
    card = json.loads((final / startpoint.CARD_JSON).read_text())
    assert [s["stage"] for s in card["stages"]] == ["read", "vqa"]
    assert set(card["scores"]) == {"niah", "synth-heldout", "reading"}
    reading = card["scores"]["reading"]["ocr-full"]["512"]  # transcripts at half the window, 4 depths x 1
    assert reading["n"] == 4 and 0 <= reading["accuracy"] <= 1
    assert json.loads((out / "eval-reading" / "config.json").read_text())["config"]["max_new_tokens"] == 512
    assert set(card["scores"]["niah"]["single"]) == {"1024", "2048", "4096"}  # 1x, 2x and 4x the window
    cell = card["scores"]["niah"]["single"]["1024"]
    assert cell["n"] == 2 and 0 <= cell["ci95"][0] <= cell["accuracy"] <= cell["ci95"][1] <= 1
    readme = (final / "README.md").read_text()
    assert card["command"] in readme and "| read |" in readme and (final / "loss-read.png").is_file()
    assert len(card["check"]["answers"]) == 6  # 3 depths x 2 needles


def test_a_rebuild_finds_everything_done(built):
    out, recipe, final = built
    weights = (final / "model.safetensors").read_bytes()
    assert startpoint.build(recipe, out, show_progress=False) == final
    assert (final / "model.safetensors").read_bytes() == weights


MORE = {"name": "more", "synth": {"target_tokens": 1024, "buckets": [256, 1025], "budget_tokens": 6000, "seed": 3,
                                  "task_mix": {"extract-single": 1.0}},
        "train": {"device": "cpu", "optim": {"lr": 1e-3}, "logging": {"progress_bar": False},
                  "schedule": {"budget_tokens": 2048, "global_batch_tokens": 2048, "min_lr": 1e-4}}}


MORE_AGAIN = {**MORE, "name": "again", "synth": {**MORE["synth"], "seed": 4}}


def test_a_build_resumed_from_a_built_start_trains_only_the_stages_added_since(built, tmp_path):
    _, _, first = built
    before = json.loads((first / startpoint.CARD_JSON).read_text())
    recipe = startpoint.StartRecipe.from_dict({**TINY_RECIPE, "stages": TINY_RECIPE["stages"] + [MORE]})
    final = startpoint.build(recipe, tmp_path, resume_from=first, show_progress=False)
    assert not (tmp_path / "train-read").exists() and not (tmp_path / "train-vqa").exists()
    assert not (tmp_path / "corpus-other").exists()  # only the resumed stages used it
    more = yaml.safe_load((tmp_path / "train-more" / "config.yaml").read_text())
    assert more["model"]["path"] == str(first)  # the new stage continues the built weights
    card = json.loads((final / startpoint.CARD_JSON).read_text())
    assert card["stages"][:2] == before["stages"] and card["stages"][2]["stage"] == "more"
    assert card["stages"][2]["steps"] == 1
    first_run = {"stages": ["read", "vqa"], "date": before["date"], "hardware": before["hardware"]}
    assert card["resumed_from"] == [first_run]
    assert card["seconds"]["stage read"] == before["seconds"]["stage read"] and card["seconds"]["stage more"] > 0
    assert (final / "loss-read.png").read_bytes() == (first / "loss-read.png").read_bytes()
    assert f"Built in 2 runs: stages read, vqa on {before['date']}" in (final / "README.md").read_text()
    # a third run continues the second: the card names all three, each with the stages it trained
    recipe = startpoint.StartRecipe.from_dict({**TINY_RECIPE, "stages": TINY_RECIPE["stages"] + [MORE, MORE_AGAIN]})
    third = startpoint.build(recipe, tmp_path / "third", resume_from=final, show_progress=False)
    assert not (tmp_path / "third" / "train-more").exists()
    card3 = json.loads((third / startpoint.CARD_JSON).read_text())
    assert [s["stage"] for s in card3["stages"]] == ["read", "vqa", "more", "again"]
    assert card3["resumed_from"] == [first_run, {"stages": ["more"], "date": card["date"],
                                                 "hardware": card["hardware"]}]
    assert "Built in 3 runs: stages read, vqa on" in (third / "README.md").read_text()
    # a card written before the runs were a list (one run, a dict) is read the same way
    legacy = {**card, "resumed_from": first_run}
    assert startpoint.earlier_runs(legacy) == card3["resumed_from"]


def test_a_stage_that_mixes_corpora_trains_on_both_at_once(built, tmp_path):
    """`mix`: the stage's own mixture (the main corpus) and one of another corpus, synthesised apart and trained
    on together; the card counts both. Resumed from a card written before stages had `mix`."""
    _, _, first = built
    legacy = shutil.copytree(first, tmp_path / "legacy")
    card = json.loads((legacy / startpoint.CARD_JSON).read_text())
    for stage in card["recipe"]["stages"]:
        del stage["mix"]
    (legacy / startpoint.CARD_JSON).write_text(json.dumps(card))
    mixed = {**MORE, "mix": {"other": {**MORE["synth"], "seed": 9, "budget_tokens": 3000}}}
    recipe = startpoint.StartRecipe.from_dict({**TINY_RECIPE, "stages": TINY_RECIPE["stages"] + [mixed]})
    final = startpoint.build(recipe, tmp_path / "out", resume_from=legacy, show_progress=False)
    out = tmp_path / "out"
    summaries = [json.loads((out / d / "summary.json").read_text()) for d in ("data-more", "data-more-other")]
    assert summaries[0]["tokens"] > 0 and summaries[1]["tokens"] > 0
    config = yaml.safe_load((out / "train-more" / "config.yaml").read_text())
    assert config["data"]["mix_dirs"] == [str(out / "data-more-other")]
    assert config["data"]["data_dir"] == str(out / "data-more")
    trained = json.loads((out / "train-more" / "summary.json").read_text())
    assert trained["tokens_per_epoch_by_folder"] == [d["tokens"] for d in summaries]  # both trained on, none lost
    record = json.loads((final / startpoint.CARD_JSON).read_text())["stages"][-1]
    assert record["samples"] == sum(d["samples"] for d in summaries)
    assert record["tokens"] == sum(d["tokens"] for d in summaries)


@pytest.mark.parametrize("change, field", [
    ({"stages": TINY_RECIPE["stages"]}, "stages"),  # nothing added
    ({"stages": [TINY_RECIPE["stages"][0], {**TINY_RECIPE["stages"][1], "synth": {}}, MORE]}, "stages"),
    ({"stages": TINY_RECIPE["stages"] + [MORE], "window": 2048}, "window"),
    ({"stages": TINY_RECIPE["stages"] + [MORE], "corpora": {"other": {"docs": 5, "seed": 6}}}, "corpora.other"),
])
def test_a_resume_from_another_recipe_is_refused_naming_the_field(built, change, field, tmp_path):
    _, _, first = built
    with pytest.raises(ConfigError, match=field.replace("[", r"\[")):
        startpoint.build(startpoint.StartRecipe.from_dict({**TINY_RECIPE, **change}), tmp_path / "out",
                         resume_from=first, show_progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="resume_from"):
        startpoint.build(startpoint.StartRecipe.from_dict({**TINY_RECIPE, "stages": TINY_RECIPE["stages"] + [MORE]}),
                         tmp_path / "out", resume_from=tmp_path, show_progress=False)


def test_install_copies_a_built_model_and_refuses_anything_else(built, tmp_path):
    _, _, final = built
    target = startpoint.install(final, tmp_path / "start")
    assert (target / "card.json").is_file() and (target / "model.safetensors").is_file()
    with pytest.raises(ConfigError, match="card.json"):
        startpoint.install(tmp_path, tmp_path / "other")


@pytest.mark.parametrize("change, field", [
    ({"stages": []}, "stages"),
    ({"stages": [TINY_RECIPE["stages"][0], TINY_RECIPE["stages"][0]]}, "stages"),
    ({"window": 100}, "window"),
    ({"stages": [{**TINY_RECIPE["stages"][0], "corpus": "nowhere"}]}, "stages[0].corpus"),
    ({"stages": TINY_RECIPE["stages"][:1]}, "corpora.other"),  # a corpus no stage trains on
    ({"corpora": {"a/b": {"docs": 2, "seed": 1}}, "stages": [{**TINY_RECIPE["stages"][0], "corpus": "a/b"}]},
     "corpora.a/b"),
    ({"corpora": {"other": {"docs": 2, "seed": 1, "pages": 3}}}, "corpora.other.pages"),
    ({"corpus": {"docs": 2}}, "corpus.seed"),
    ({"eval": {"items": 3}}, "eval.items"),
    ({"ingest": {"max_dpi": -1}}, "ingest.max_dpi"),
    ({"stages": [{"name": "x", "synth": {"task_mix": {"nonsense": 1.0}}}]}, "stages[0].synth.task_mix"),
    ({"stages": [{"name": "x", "train": {"optim": {"lr": -1}}}]}, "optim.lr"),
    ({"stages": [TINY_RECIPE["stages"][0], {**TINY_RECIPE["stages"][1], "mix": {"nowhere": {}}}]},
     "stages[1].mix.nowhere"),
    ({"stages": [TINY_RECIPE["stages"][0], {**TINY_RECIPE["stages"][1], "mix": {"other": {}}}]},
     "stages[1].mix.other"),  # the stage's own corpus
    ({"stages": [{**TINY_RECIPE["stages"][0], "mix": {"other": {"task_mix": {"nonsense": 1.0}}}}]},
     "stages[0].mix.other.task_mix"),
])
def test_bad_recipes_are_refused_naming_the_field(change, field, tmp_path):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        startpoint.build(startpoint.StartRecipe.from_dict({**TINY_RECIPE, **change}), tmp_path / "out",
                         show_progress=False)
    assert not (tmp_path / "out").exists()
