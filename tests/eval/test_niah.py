"""The needle grid: deterministic, exact lengths within the tolerance, needles at their depths, the same items for
every model."""

import json

import pytest
from eval_fixtures import FakeBackend

from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.config import depth_grid
from mmprolong.eval.items import read_items
from mmprolong.eval.pages import StorePages, span
from mmprolong.eval.scoring import score_item
from mmprolong.eval.suites.common import SuiteContext
from mmprolong.eval.suites.niah import build_items
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

LENGTHS = [512, 1024]


def _items(tmp_path, store_dir, template, *, seed=0, needles=(1, 3), depth_steps=5, lookalikes=(),
           haystacks="per-length"):
    config = EvalConfig(store_dir=str(store_dir), lengths=LENGTHS, depth_steps=depth_steps, needles=list(needles),
                        seed=seed, lookalikes=list(lookalikes), haystacks=haystacks)
    ctx = SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, tmp_path)
    return build_items(ctx)


@pytest.fixture(scope="module")
def items(tmp_path_factory, store_dir, template):
    return _items(tmp_path_factory.mktemp("niah"), store_dir, template)


def test_grid_is_deterministic_for_a_seed(tmp_path, store_dir, template, items):
    again = _items(tmp_path, store_dir, template)
    assert [i.to_row() | {"parts": None} for i in again] == [i.to_row() | {"parts": None} for i in items]
    assert [i.content_key() for i in again] == [i.content_key() for i in items]  # needle pixels too
    other = _items(tmp_path / "s1", store_dir, template, seed=1)
    assert {i.item_id for i in other}.isdisjoint({i.item_id for i in items})
    assert len(items) == len(LENGTHS) * 2 * 5 and len({i.item_id for i in items}) == len(items)
    assert [(i.length, i.task, i.depth) for i in items[:5]] == [(512, "single", d) for d in depth_grid(5)]


def test_haystacks_per_item_draw_each_depth_its_own(tmp_path, store_dir, template, items):
    """Per length (the default) item i of every depth hides its needle among the same documents, so a length's
    items are few haystacks; per item each depth draws its own, with the same needle and question."""
    own = _items(tmp_path, store_dir, template, haystacks="per-item")
    assert [(i.length, i.task, i.depth, i.question, i.answers) for i in own] == \
        [(i.length, i.task, i.depth, i.question, i.answers) for i in items]
    for length in LENGTHS:
        for grid, draws in ((items, 1), (own, 5)):
            fillers = {tuple(json.loads(i.metadata)["fillers"]) for i in grid
                       if i.length == length and i.task == "single"}
            assert len(fillers) == draws, (length, fillers)
    store = StorePages(store_dir)
    one_page = max(span(p) for doc in store.pages.values() for p in doc)
    assert all(not i.error and i.length - one_page <= i.tokens <= i.length for i in own)


def test_lengths_exact_within_one_page(items, template, store_dir):
    store = StorePages(store_dir)
    one_page = max(span(p) for doc in store.pages.values() for p in doc)
    for item in items:
        assert not item.error, item.error
        parts = [p if isinstance(p, str) else p.vision_tokens for p in item.parts]
        assert item.tokens == template.count(parts, ", ".join(item.answers))
        assert item.prompt_tokens == len(template.prompt_ids(parts))
        assert item.length - one_page <= item.tokens <= item.length, (item.length, item.tokens)
        assert json.loads(item.metadata)["tolerance"] == one_page


def test_needles_sit_at_their_depths(items):
    for item in items:
        images = item.images
        needles = [i for i, im in enumerate(images) if im.kind == "file"]
        assert list(item.evidence) == needles
        haystack = sum(span(im) for im in images if im.kind == "store")
        page = max(span(im) for im in images)
        # The first needle starts at the requested fraction of the haystack, within two pages (pages are whole).
        assert abs(item.achieved_depth - item.depth) <= 2 * page / haystack, (item.depth, item.achieved_depth)
        if item.depth == 0.0:
            assert needles[0] == 0
        if item.depth == 1.0:
            assert needles[-1] == len(images) - 1


def test_multi_needle_variant(items):
    multi = [i for i in items if i.task == "multi-3"]
    assert multi and all(i.metric == "niah-all" for i in multi)
    for item in multi:
        meta = json.loads(item.metadata)
        assert len(item.answers) == 3 and len(set(item.answers)) == 3
        assert [n["code"] for n in meta["needles"]] == list(item.answers)
        assert len(item.evidence) == 3 and list(item.evidence) == sorted(item.evidence)
        for needle in meta["needles"]:  # the question asks for every archive
            assert needle["archive"] in item.question
        assert len({im.key() for im in item.images if im.kind == "file"}) == 3  # three different note pages
    single = [i for i in items if i.task == "single"]
    assert all(len(i.answers) == 1 and i.metric == "niah" and i.answers[0] in json.loads(i.metadata)["needles"][0]
               ["code"] for i in single)


def test_same_items_for_two_models(tmp_path, store_dir):
    config = EvalConfig(store_dir=str(store_dir), lengths=[512], depth_steps=3, needles=[1, 2], max_new_tokens=8)
    a = evaluate(FakeBackend("model-a"), "niah", out_dir=tmp_path / "a", config=config)
    b = evaluate(FakeBackend("model-b", answer="no idea"), "niah", out_dir=tmp_path / "b", config=config)
    items_a = read_items(tmp_path / "a" / "items.jsonl")
    items_b = read_items(tmp_path / "b" / "items.jsonl")
    assert [i.item_id for i in items_a] == [i.item_id for i in items_b]
    assert [i.content_key() for i in items_a] == [i.content_key() for i in items_b]
    assert a["ok"] == b["ok"] == len(items_a) == 6
    table = json.loads((tmp_path / "a" / "table.json").read_text())["rows"]
    single = [r for r in table if r["task"] == "single" and r["depth"] == "all"]
    multi = [r for r in table if r["task"] == "multi-2" and r["depth"] == "all"]
    assert single[0]["score"] == 1.0 and multi[0]["score"] == 0.5  # FakeBackend finds half the multi needles
    table_b = json.loads((tmp_path / "b" / "table.json").read_text())["rows"]
    assert all(r["score"] == 0.0 for r in table_b)


def test_needle_page_is_a_store_sized_image(items, store_dir):
    store = StorePages(store_dir)
    width, height = store.common_size()
    needle = next(im for im in items[0].images if im.kind == "file")
    assert (needle.width, needle.height) == (width, height) == (112, 140)
    assert needle.vision_tokens == 20
    from PIL import Image

    with Image.open(needle.path) as image:
        assert image.size == (112, 140)


def test_lookalikes_hide_the_single_needle_among_other_notes(tmp_path, store_dir, template, items):
    """A lookalikes-L item is the single item's needle and question with L other notes in the haystack; an answer
    with a look-alike's code scores 0 and is recorded as such."""
    both = _items(tmp_path, store_dir, template, needles=(1,), lookalikes=(2,))
    single = [i for i in both if i.task == "single"]
    assert [(i.item_id, i.content_key()) for i in single] == [(i.item_id, i.content_key()) for i in items
                                                             if i.task == "single"]  # unchanged by the variant
    tricky = [i for i in both if i.task == "lookalikes-2"]
    assert len(tricky) == len(single) == len(LENGTHS) * 5
    one_page = max(span(p) for doc in StorePages(store_dir).pages.values() for p in doc)
    for plain, item in zip(single, tricky):
        meta = json.loads(item.metadata)
        assert (item.length, item.depth, item.question, item.answers) == (plain.length, plain.depth, plain.question,
                                                                         plain.answers)
        assert not item.error and item.length - one_page <= item.tokens <= item.length
        notes = [im for im in item.images if im.kind == "file"]
        assert len(notes) == 3 and len({im.key() for im in notes}) == 3
        (needle,) = [im for im in plain.images if im.kind == "file"]
        assert item.images[item.evidence[0]].key() == needle.key() and len(item.evidence) == 1
        others = meta["lookalikes"]
        assert len(others) == 2 and meta["needles"] == json.loads(plain.metadata)["needles"]
        assert not {o["archive"] for o in others} & {meta["needles"][0]["archive"]}
        assert not {o["code"] for o in others} & set(item.answers)
        assert all(o["archive"] not in item.question for o in others)
        page = max(span(im) for im in item.images)
        haystack = sum(span(im) for im in item.images if im.kind == "store")
        assert abs(item.achieved_depth - item.depth) <= 4 * page / haystack
    item = tricky[0]
    decoy = json.loads(item.metadata)["lookalikes"][1]["code"]
    score, details = score_item(item, f"The code is {decoy}.")
    assert score == 0.0 and details["lookalike"] == 1
    score, details = score_item(item, item.answers[0])
    assert score == 1.0 and details["lookalike"] == 0 and "lookalike" not in score_item(single[0], "1")[1]
    assert {i.depth for i in tricky} == set(depth_grid(5))
