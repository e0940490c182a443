"""docvqa loaders on small excerpts in the benchmarks' real released formats (made-up content, written here):
each benchmark loads from its layout as cloned or downloaded, slides keep their order, records that the
official scorers score are kept, and a gold keeps the structure its scorer needs."""

import io
import json
import shutil
from pathlib import Path

import pytest

from mmprolong.eval import EvalConfig, metrics
from mmprolong.eval.pdf_pages import PdfPages
from mmprolong.eval.suites.common import SuiteContext
from mmprolong.eval.suites.docvqa import build_items
from mmprolong.eval.suites.docvqa_samples import write_docvqa_samples
from mmprolong.eval.suites.docvqa_sources import Sources, load_dataset, slide_number
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The three layouts as cloned; SlideVQA decks of 12 slides, so slide 10 sorts before 2 as text."""
    root = tmp_path_factory.mktemp("released")
    write_docvqa_samples(root, seed=1, docs=3, pages=12)
    return root


def _copy(released, tmp_path) -> Path:
    shutil.copytree(released, tmp_path / "data", ignore=shutil.ignore_patterns(".mmprolong-cache"))
    return tmp_path / "data"


def _sources(cache) -> Sources:
    pdfs = PdfPages(cache, family=DEFAULT_FAMILY, max_dpi=72.0, min_pixels=DEFAULT_MIN_PIXELS,
                    max_pixels=DEFAULT_MAX_PIXELS)
    return Sources(DEFAULT_FAMILY, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, pdfs, Path(cache))


def _items(data, tmp_path, template, **overrides):
    config = EvalConfig(suite="docvqa", data_dir=str(data), pdf_max_dpi=72.0, render_cache_dir=str(tmp_path / "c"),
                        **{"lengths": [1024], **overrides})
    ctx = SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, tmp_path)
    return build_items(ctx), ctx


# --- SlideVQA ----------------------------------------------------------------------------------------------


def test_slide_numbers_in_released_file_names():
    assert slide_number("1-new-land-acquisition-act-process-flow-12-1024.jpg") == 12
    assert slide_number("2019-budget-3-1024.jpg") == 3
    assert slide_number("page_07.png") == 7


def test_slides_of_a_deck_named_with_digits_load_in_deck_order(released, tmp_path):
    bench = load_dataset("slidevqa", released, _sources(tmp_path))
    deck = next(name for name in bench.docs if name[0].isdigit())
    pages = bench.docs[deck].pages
    assert [Path(p.path).name for p in pages] == [f"{deck}-{n}-1024.jpg" for n in range(1, 13)]
    for urls in (True, False):  # the record's image_urls, or the file names alone
        data = _copy(released, tmp_path / f"u{urls}")
        if not urls:
            path = data / "SlideVQA" / "annotations" / "qa" / "test.jsonl"
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "image_urls"}) + "\n"
                                    for r in rows))
        again = load_dataset("slidevqa", data, _sources(tmp_path / f"c{urls}")).docs[deck].pages
        assert [Path(p.path).name for p in again] == [Path(p.path).name for p in pages]


def test_a_deck_with_a_missing_slide_is_an_error_not_a_shift(released, tmp_path, template):
    data = _copy(released, tmp_path)
    deck = sorted((data / "SlideVQA" / "images" / "test").iterdir())[0]
    (deck / f"{deck.name}-5-1024.jpg").unlink()  # a download 404
    items, _ = _items(data, tmp_path, template, datasets=["slidevqa"])
    on_deck = [i for i in items if json.loads(i.metadata)["doc"] == deck.name]
    assert on_deck and all(i.error.startswith("document incomplete: 1 of the 12 slides") for i in on_deck)
    assert any(not i.error for i in items)
    path = data / "SlideVQA" / "annotations" / "qa" / "test.jsonl"  # without image_urls: the gap is seen too
    path.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "image_urls"}) + "\n"
                            for line in path.read_text().splitlines()))
    bench = load_dataset("slidevqa", data, _sources(tmp_path / "c2"))
    assert bench.docs[deck.name].error == f"document incomplete: slide 5 of {deck.name} is missing"


def _write_slidevqa_parquet(released, folder: Path, *, drop_slide: int | None = None) -> None:
    """SlideVQA's Hugging Face release: a row per question, the deck's slides as image structs in page_<n>."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in
            (released / "SlideVQA" / "annotations" / "qa" / "test.jsonl").read_text().splitlines()]
    images = released / "SlideVQA" / "images" / "test"
    table = []
    for row in rows:
        deck = images / row["deck_name"]
        entry = {k: row[k] for k in ("deck_name", "deck_url", "qa_id", "question", "answer",
                                     "arithmetic_expression", "evidence_pages", "reasoning_type", "answer_type")}
        for n in range(1, 21):
            path = deck / f"{row['deck_name']}-{n}-1024.jpg"
            keep = path.is_file() and n != drop_slide
            entry[f"page_{n}"] = {"bytes": path.read_bytes(), "path": path.name} if keep else None
        table.append(entry)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([(k, pa.string()) for k in ("deck_name", "deck_url", "question", "answer",
                                                   "arithmetic_expression", "reasoning_type", "answer_type")]
                       + [("qa_id", pa.int64()), ("evidence_pages", pa.list_(pa.int64()))]
                       + [(f"page_{n}", image) for n in range(1, 21)])
    folder.mkdir(parents=True, exist_ok=True)
    half = len(table) // 2  # two shards, as the Hub writes them
    for i, part in enumerate((table[:half], table[half:])):
        pq.write_table(pa.Table.from_pylist(part, schema=schema), folder / f"test-0000{i}-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(table[:1], schema=schema), folder / "train-00000-of-00001.parquet")


def test_slidevqa_parquet_release_loads_like_the_annotations_and_images(released, tmp_path):
    from PIL import Image

    _write_slidevqa_parquet(released, tmp_path / "hub" / "SlideVQA" / "data")
    first = load_dataset("slidevqa", tmp_path / "hub", _sources(tmp_path / "c"))
    reference = load_dataset("slidevqa", released, _sources(tmp_path / "c0"))
    assert [(q.qid, q.question, q.answer, q.evidence) for q in first.questions] == \
           [(q.qid, q.question, q.answer, q.evidence) for q in reference.questions]  # the test split only
    for deck, doc in reference.docs.items():
        assert not first.docs[deck].error and len(first.docs[deck].pages) == len(doc.pages) == 12
        for ours, theirs in zip(first.docs[deck].pages, doc.pages):
            assert Image.open(ours.path).tobytes() == Image.open(theirs.path).tobytes()
    again = load_dataset("slidevqa", tmp_path / "hub", _sources(tmp_path / "c"))  # from the index, same files
    assert [p.path for d in again.docs.values() for p in d.pages] == \
           [p.path for d in first.docs.values() for p in d.pages]


def test_slidevqa_parquet_deck_with_an_empty_slide_is_an_error(released, tmp_path):
    _write_slidevqa_parquet(released, tmp_path / "hub" / "SlideVQA", drop_slide=3)
    bench = load_dataset("slidevqa", tmp_path / "hub", _sources(tmp_path / "c"))
    assert all(d.error.startswith("document incomplete: slide 3 of") for d in bench.docs.values())


# --- LongDocURL --------------------------------------------------------------------------------------------


def test_longdocurl_loads_as_cloned_flattened_and_lower_case(released, tmp_path):
    cloned = load_dataset("longdocurl", released, _sources(tmp_path / "c"))
    data = _copy(released, tmp_path)
    root = data / "LongDocURL"
    for child in (root / "data").iterdir():  # the flattened layout: LongDocURL.jsonl + pdf_pngs/ at the top
        child.rename(root / child.name)
    root.rename(data / "longdocurl")
    flat = load_dataset("longdocurl", data, _sources(tmp_path / "c"))
    assert [(q.qid, q.evidence, q.window) for q in flat.questions] == \
           [(q.qid, q.evidence, q.window) for q in cloned.questions]
    assert {n: len(d.pages) for n, d in flat.docs.items()} == {n: len(d.pages) for n, d in cloned.docs.items()}


def test_longdocurl_table_row_answers_keep_their_objects(released, tmp_path):
    bench = load_dataset("longdocurl", released, _sources(tmp_path))
    row = next(q for q in bench.questions if q.answer.startswith("[{"))
    value = json.loads(row.answer)[0]
    prediction = json.dumps([value])  # a correct answer, as a model (or LongDocURL's extractor) gives it
    assert metrics.score("longdocurl", prediction, row.answer, "List") == 1.0
    joined = "-".join(str(v) for v in value.values())  # LongDocURL's scorer reads a row as its values joined
    assert metrics.score("longdocurl", f"['{joined}']", row.answer, "List") == 1.0


# --- MMLongBench-Doc ---------------------------------------------------------------------------------------


def test_mmlongbench_doc_page_zero_and_evidence_beyond_the_pdf_are_kept(released, tmp_path, template):
    """The released file has three records with evidence_pages "[0]" and five whose pages lie beyond their PDF;
    the official scorer scores them all, so they are asked, with notes, never dropped."""
    data = _copy(released, tmp_path)
    path = data / "MMLongBench-Doc" / "data" / "samples.json"
    samples = json.loads(path.read_text())
    samples[0]["evidence_pages"] = "[0]"
    samples[1]["evidence_pages"] = "[2, 1418]"  # as released: a typo for 14, 18 in a 20-page PDF
    samples[2]["evidence_pages"] = "[289, 290]"  # printed page numbers of a book, beyond the PDF
    path.write_text(json.dumps(samples, indent=4))
    items, ctx = _items(data, tmp_path, template, datasets=["mmlongbench-doc"])
    assert ctx.records[("mmlongbench-doc", 1024)] == len(samples) == len(items)
    assert not any(i.error for i in items)
    meta = [json.loads(i.metadata) for i in items[:3]]
    assert meta[0]["evidence_pages"] == [] and "page 0" in meta[0]["notes"][0]
    assert meta[1]["evidence_pages"] == [2, 1418] and "[1418]" in meta[1]["notes"][0]
    assert items[1].evidence and "[289, 290]" in meta[2]["notes"][0] and not items[2].evidence


def test_folder_names_as_the_repositories_spell_them_or_lower_case(released, tmp_path):
    data = _copy(released, tmp_path)
    (data / "MMLongBench-Doc").rename(data / "mmlongbench-doc")
    (data / "SlideVQA").rename(data / "slidevqa")
    for dataset in ("mmlongbench-doc", "longdocurl", "slidevqa"):
        bench = load_dataset(dataset, data, _sources(tmp_path / "c"))
        assert bench.questions and not any(d.error for d in bench.docs.values())


def test_png_images_of_a_parquet_cell_keep_their_format(tmp_path):
    from PIL import Image

    from mmprolong.eval.suites.docvqa_sources import _write_slide

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    name = _write_slide({"bytes": buffer.getvalue(), "path": None}, tmp_path)
    assert name.endswith(".png") and _write_slide(None, tmp_path) is None
