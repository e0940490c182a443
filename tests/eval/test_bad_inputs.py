"""Bad inputs become per-item errors (status + message); the run always completes."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
from eval_fixtures import FakeBackend, write_text_store

from mmprolong.eval import EvalConfig, evaluate
from mmprolong.eval.items import read_items, read_results
from mmprolong.eval.suites.docvqa_samples import write_docvqa_samples


def _errors(run_dir) -> dict[str, str]:
    return {r.item_id: r.error for r in read_results(run_dir) if r.status == "error"}


def test_too_few_store_pages_and_max_model_len(tmp_path, store_dir):
    small = tmp_path / "small"
    write_text_store(small, docs=2, pages=4, seed=5)  # about 170 tokens of pages
    config = EvalConfig(store_dir=str(small), lengths=[256, 4096], depth_steps=2, needles=[1], max_new_tokens=8)
    summary = evaluate(FakeBackend(), "niah", out_dir=tmp_path / "short", config=config)
    results = read_results(tmp_path / "short")
    assert summary["items"] == 4 and summary["errors"] >= 2
    long = [r for r in results if r.length == 4096]
    assert all(r.status == "error" and "cannot build a 4096-token haystack" in r.error for r in long)

    config = EvalConfig(store_dir=str(store_dir), lengths=[384, 1024], depth_steps=2, needles=[1], max_new_tokens=8,
                        max_model_len=600)
    backend = FakeBackend()
    summary = evaluate(backend, "niah", out_dir=tmp_path / "limit", config=config)
    errors = _errors(tmp_path / "limit")
    assert summary["ok"] == 2 and summary["errors"] == 2 and backend.calls == 2
    assert all("more than max_model_len=600" in e for e in errors.values())
    backend = FakeBackend(max_model_len=500)  # the backend's own limit counts too
    unlimited = EvalConfig.from_dict({**config.to_dict(), "max_model_len": -1})
    evaluate(backend, "niah", out_dir=tmp_path / "limit2", config=unlimited)
    assert backend.calls == 2


def test_broken_and_missing_images(tmp_path):
    store = tmp_path / "store"
    write_text_store(store, docs=8, pages=10, seed=1)
    shard = store / "shard-00000.parquet"
    table = pq.read_table(shard).to_pylist()
    for row in table[::3]:
        row["image"] = b"not a png"
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(shard)), shard)
    config = EvalConfig(store_dir=str(store), lengths=[256, 512], depth_steps=3, needles=[1], max_new_tokens=8)

    class Decoding(FakeBackend):
        def generate_one(self, item, loader, settings):
            loader.pil(item.images)  # decode, as the hf backend does
            return super().generate_one(item, loader, settings)

    summary = evaluate(Decoding(), "niah", out_dir=tmp_path / "run", config=config)
    assert summary["items"] == 6 and summary["errors"] >= 1
    assert all("cannot be decoded" in e for e in _errors(tmp_path / "run").values())

    needle = next(p for p in (tmp_path / "run" / "needles").iterdir())
    items = read_items(tmp_path / "run" / "items.jsonl")
    from mmprolong.eval.backends import GenerationSettings
    from mmprolong.eval.pages import ImageLoader

    needle.unlink()
    answers = Decoding().generate(items, ImageLoader(), GenerationSettings())
    assert any(isinstance(a, Exception) and "No such file" in str(a) for a in answers)


def test_malformed_benchmark_records_and_missing_pages(tmp_path):
    data = tmp_path / "data"
    roots = write_docvqa_samples(data, docs=3, pages=5)
    samples = json.loads((roots["mmlongbench-doc"] / "data" / "samples.json").read_text())
    samples[0].pop("answer")
    samples[1]["evidence_pages"] = "[page five]"
    samples[2]["answer_format"] = "Sentence"
    samples.append("not a record")
    samples.append({**samples[3], "doc_id": "missing.pdf"})
    (roots["mmlongbench-doc"] / "data" / "samples.json").write_text(json.dumps(samples))
    with open(roots["longdocurl"] / "data" / "LongDocURL.jsonl", "a") as f:
        f.write("{broken json\n")
    next(roots["longdocurl"].rglob("*_2.png")).unlink()  # one document loses a page
    (roots["slidevqa"] / "annotations" / "qa" / "test.jsonl").write_text("")  # no questions at all
    config = EvalConfig(suite="docvqa", data_dir=str(data), pdf_max_dpi=72.0, lengths=[1024], max_new_tokens=8,
                        datasets=["mmlongbench-doc", "longdocurl", "slidevqa", ])
    summary = evaluate(FakeBackend(answer="Not answerable"), out_dir=tmp_path / "run", config=config)
    errors = list(_errors(tmp_path / "run").values())
    assert summary["ok"] > 0 and summary["errors"] == len(errors) >= 6
    for needle in ("field 'answer' missing", "evidence_pages", "answer_format 'Sentence'", "record is a str",
                   "missing.pdf not found", "line ", "is missing"):
        assert any(needle in e for e in errors), needle
    assert summary["items"] == summary["ok"] + summary["errors"]


def test_unreadable_dataset_folder(tmp_path):
    config = EvalConfig(suite="docvqa", data_dir=str(tmp_path / "nothing"), lengths=[512, 1024], max_new_tokens=8,
                        datasets=["slidevqa"])
    summary = evaluate(FakeBackend(), out_dir=tmp_path / "run", config=config)
    assert summary["items"] == 2 and summary["errors"] == 2
    assert all("cannot read slidevqa" in e for e in _errors(tmp_path / "run").values())
