"""docvqa runs as a user meets them: every record accounted for in OUT/summary.json and on the terminal, the
same buildable questions at every length, only the pages asked rendered (once, across runs), LongDocURL's
window protocol, MMLongBench's prebuilt files, and an oracle that scores full marks under both metrics."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from eval_fixtures import FakeBackend, OracleBackend

from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.suites.common import SuiteContext
from mmprolong.eval.suites.docvqa import build_items
from mmprolong.eval.suites.docvqa_samples import write_docvqa_samples
from mmprolong.models import DEFAULT_FAMILY
from mmprolong.tokens import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("docvqa")
    write_docvqa_samples(root, seed=2, docs=4, pages=6)
    return root


def _config(data, tmp_path, **overrides) -> EvalConfig:
    return EvalConfig(suite="docvqa", data_dir=str(data), pdf_max_dpi=72.0, render_cache_dir=str(tmp_path / "cache"),
                      max_new_tokens=8, **{"lengths": [512, 1536], **overrides})


def _build(config, template, out):
    ctx = SuiteContext(config, template, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS, Path(out))
    return build_items(ctx), ctx


@pytest.mark.parametrize("metric", ["mmlongbench", "native"])
def test_an_oracle_scores_every_scorable_item_in_full(data, tmp_path, metric):
    summary = evaluate(OracleBackend(), out_dir=tmp_path / "run", config=_config(data, tmp_path, docvqa_metric=metric))
    assert summary["errors"] == 0 and summary["ok"] == summary["items"] > 0
    results = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert {r["score"] for r in results} == {1.0}
    assert {r["task"] for r in results} == {"mmlongbench-doc", "longdocurl", "slidevqa"}


def test_summary_accounts_for_every_record(data, tmp_path):
    broken = tmp_path / "data"
    shutil.copytree(data, broken, ignore=shutil.ignore_patterns(".mmprolong-cache"))
    path = broken / "MMLongBench-Doc" / "data" / "samples.json"
    samples = json.loads(path.read_text())
    samples[0].pop("answer")
    samples.append({**samples[3], "doc_id": "missing.pdf"})
    samples.append({**samples[4], "evidence_pages": "[1, 2, 3, 4, 5, 6]"})  # too much evidence for 512 tokens
    path.write_text(json.dumps(samples))
    config = _config(broken, tmp_path, max_questions=5, datasets=["mmlongbench-doc", "slidevqa"])
    run = evaluate(FakeBackend(answer="Not answerable"), out_dir=tmp_path / "run", config=config)
    rows = json.loads((tmp_path / "run" / "summary.json").read_text())["rows"]
    assert rows == run["summary"] and len(rows) == 4
    for row in rows:
        assert row["records"] == row["not_sampled"] + row["scored"] + sum(row["errors"].values())
        assert row["scored"] == 5 and row["score"] is not None
    mmlb = [r for r in rows if r["task"] == "mmlongbench-doc"]
    assert all(r["records"] == len(samples) for r in mmlb)
    assert all(r["errors"] == {"document not found": 1, "evidence does not fit": 1, "malformed record": 1}
               for r in mmlb)  # the same three at every length: the 1536 one does not fit at 512
    table = (tmp_path / "run" / "table.md").read_text()
    assert f"| 5 of {len(samples)} questions |" in table and "1 evidence does not fit" in table


def test_questions_are_drawn_among_those_that_fit_every_length(data, tmp_path, template):
    config = _config(data, tmp_path, lengths=[256, 1536], max_questions=3, datasets=["mmlongbench-doc"])
    items, ctx = _build(config, template, tmp_path)
    asked = [i for i in items if not i.error]
    assert len(asked) == 6  # 3 questions x 2 lengths, none lost to a length
    qids = {n: [json.loads(i.metadata)["qid"] for i in asked if i.length == n] for n in (256, 1536)}
    assert qids[256] == qids[1536]
    unfit = [i for i in items if i.error]
    assert unfit and all(i.error.startswith("evidence does not fit: at 256") for i in unfit)
    assert {i.length for i in unfit} == {256, 1536}  # excluded at both lengths, and said so at both


def test_only_the_pages_asked_are_rendered_and_reused_by_the_next_run(data, tmp_path, template):
    cache = tmp_path / "cache" / "pdf"
    config = _config(data, tmp_path, lengths=[512], max_questions=1, datasets=["mmlongbench-doc"])
    items, _ = _build(config, template, tmp_path / "out1")
    shown = {im.path for i in items for im in i.images}
    rendered = {str(p) for p in cache.rglob("*.png")}
    assert rendered == shown and 0 < len(rendered) < 4 * 6  # 4 PDFs of 6 pages
    stamps = {p: Path(p).stat().st_mtime_ns for p in rendered}
    again, _ = _build(config, template, tmp_path / "out2")  # a new OUT folder
    assert [i.item_id for i in again] == [i.item_id for i in items]
    assert {p: Path(p).stat().st_mtime_ns for p in rendered} == stamps  # nothing rendered twice
    renamed = tmp_path / "renamed"  # the cache is keyed by content: a copy elsewhere reuses it
    shutil.copytree(data, renamed, ignore=shutil.ignore_patterns(".mmprolong-cache"))
    moved, _ = _build(_config(renamed, tmp_path, lengths=[512], max_questions=1, datasets=["mmlongbench-doc"]),
                      template, tmp_path / "out3")
    assert {im.path for i in moved for im in i.images} == shown


def test_pdf_page_sizes_from_geometry_match_the_renderer(tmp_path):
    """Odd sizes, a landscape page and a rotated one: each predicted size is the rendered size."""
    import pypdfium2 as pdfium
    from PIL import Image

    from mmprolong.eval.pdf_pages import PdfPages

    pdf = pdfium.PdfDocument.new()
    for width, height in ((612, 792), (841.89, 595.28), (300.5, 1000.25), (17, 2000)):
        pdf.new_page(width, height)
    pdf[1].set_rotation(90)
    pdf.save(str(tmp_path / "odd.pdf"))
    pdf.close()
    pages = PdfPages(tmp_path / "cache", family=DEFAULT_FAMILY, max_dpi=144.0, min_pixels=56 * 56,
                     max_pixels=512 * 28 * 28)
    images = pages.document(tmp_path / "odd.pdf")
    assert pages.render(images) == {}
    for image in images:
        assert Image.open(image.path).size == (image.width, image.height)
    assert images[1].width < images[1].height  # the landscape page turned by 90 degrees is drawn upright


def test_longdocurl_window_protocol_and_whole_document(data, tmp_path, template):
    config = _config(data, tmp_path, lengths=[1536], datasets=["longdocurl"])
    whole, _ = _build(config, template, tmp_path)
    window, _ = _build(_config(data, tmp_path, lengths=[1536], datasets=["longdocurl"], longdocurl_pages="window"),
                       template, tmp_path)
    records = [json.loads(line) for line in
               (data / "LongDocURL" / "data" / "LongDocURL.jsonl").read_text().splitlines()]
    assert len(whole) == len(window) == len(records)
    for item, record in zip(window, records):
        meta = json.loads(item.metadata)
        first, last = record["start_end_idx"]
        assert meta["kept_pages"] == list(range(first, last + 1)) and meta["window"] is True
        assert not meta["left_docs"] and not meta["right_docs"] and item.tokens < 1536 - meta["tolerance"]
    assert all(json.loads(i.metadata)["left_docs"] for i in whole)  # the whole document, padded to length


def _write_prebuilt(data: Path, root: Path, lengths: list[int]) -> None:
    """MMLongBench's prebuilt layout: mmlb_data/documentQA/<name>_K<k>.jsonl + mmlb_image/, made from the
    sample LongDocURL set (pages named <doc>_page<i>.png, i 0-based), with the other documents as padding."""
    images = root / "mmlb_image" / "documentQA" / "longdocurl"
    records = [json.loads(line) for line in
               (data / "LongDocURL" / "data" / "LongDocURL.jsonl").read_text().splitlines()]
    for png in (data / "LongDocURL" / "data" / "pdf_pngs").rglob("*.png"):
        doc, page = png.stem.rsplit("_", 1)
        (images / doc).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, images / doc / f"{doc}_page{page}.png")
    docs = sorted({r["doc_no"] for r in records})
    for length in lengths:
        rows = []
        for n, record in enumerate(records):
            other = next(d for d in docs if d != record["doc_no"])
            pages = [f"documentQA/longdocurl/{other}/{other}_page{i}.png" for i in range(length // 1024)]
            pages += [f"documentQA/longdocurl/{record['doc_no']}/{record['doc_no']}_page{i}.png" for i in range(6)]
            rows.append({"id": f"longdocurl_{n}", "doc_name": record["doc_no"], "question": record["question"],
                         "answer": record["answer"], "answer_format": record["answer_format"], "page_list": pages,
                         "ans_page_list": [p - 1 for p in record["evidence_pages"]]})
        folder = root / "mmlb_data" / "documentQA"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"longdocurl_K{length // 1024}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_mmlongbench_prebuilt_files_are_read_as_they_are(data, tmp_path, template):
    import numpy as np

    _write_prebuilt(data, tmp_path / "mmlb", [1024, 2048])
    config = EvalConfig(suite="docvqa", data_dir=str(tmp_path / "mmlb"), docvqa_source="mmlongbench", seed=42,
                        lengths=[1024, 2048, 4096], datasets=["longdocurl"], max_questions=4)
    items, ctx = _build(config, template, tmp_path)
    rows = (tmp_path / "mmlb" / "mmlb_data" / "documentQA" / "longdocurl_K1.jsonl").read_text().splitlines()
    picked = [int(i) for i in np.random.default_rng(42).permutation(len(rows))[:4]]  # MMLongBench's draw
    for length, pages_before in ((1024, 1), (2048, 2)):
        asked = [i for i in items if i.length == length]
        assert [json.loads(i.metadata)["row"] for i in asked] == picked and not any(i.error for i in asked)
        for item in asked:
            row = json.loads(rows[json.loads(item.metadata)["row"]])
            assert len(item.images) == pages_before + 6 and item.answers == (str(row["answer"]) if not
                                                                             isinstance(row["answer"], list)
                                                                             else json.dumps(row["answer"]),)
            assert list(item.evidence) == [pages_before + p for p in row["ans_page_list"]]
    [missing] = [i for i in items if i.length == 4096]
    assert missing.error.startswith("dataset unreadable:") and "longdocurl_K4.jsonl" in missing.error
    assert ctx.records[("longdocurl", 1024)] == len(rows) and ctx.records[("longdocurl", 4096)] == 0


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mmprolong.cli", "eval", *args], capture_output=True, text=True,
                          cwd=cwd, check=False)


def test_cli_prints_the_score_table_and_fails_when_nothing_is_scored(data, tmp_path):
    run = _cli("--suite", "docvqa", "--data-dir", str(data), "--datasets", "mmlongbench-doc,slidevqa",
               "--lengths", "1k", "--max-questions", "1", "--max-new-tokens", "2", "--pdf-max-dpi", "72",
               "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "| docvqa | mmlongbench-doc | 1K |" in run.stdout and "| docvqa | slidevqa | 1K |" in run.stdout
    records = len(json.loads((data / "MMLongBench-Doc" / "data" / "samples.json").read_text()))
    assert f"| 1 of {records} questions | {records - 1} |" in run.stdout
    wrong = _cli("--suite", "docvqa", "--data-dir", str(tmp_path / "nowhere"), "--lengths", "1k",
                 "--out", str(tmp_path / "wrong"), cwd=tmp_path)
    assert wrong.returncode == 2
    assert "nothing could be scored" in wrong.stderr and "dataset unreadable: cannot read" in wrong.stderr
