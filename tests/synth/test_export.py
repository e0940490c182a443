"""Exports for LLaMA-Factory and ms-swift: loadable with `datasets`, in their documented multimodal format.

The packages themselves cannot be installed beside ours (llamafactory 0.9.5 pins transformers<=5.6,
datasets<=4.0 and imports torchaudio; ms-swift 4.6 pins transformers<5.20), so the checks below are the
rules their converters apply: roles in order, one <image> tag per image path, images that exist.
"""

import json
import re
from pathlib import Path

import datasets
import pytest
from PIL import Image

from mmprolong import api
from mmprolong.ingest import IngestConfig
from mmprolong.synth.config import SynthConfig
from mmprolong.synth.export import read_samples


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    api.make_corpus(root / "pdfs", docs=3, seed=5, min_pages=12, max_pages=20, show_progress=False)
    api.ingest(root / "pdfs", root / "store", IngestConfig(max_pixels=64 * 28 * 28, max_dpi=72.0),
               show_progress=False)
    api.synth(root / "store", root / "data", SynthConfig(target_tokens=2048, buckets=[512, 1024, 2049],
                                                         budget_tokens=30_000, questions_per_sample=2),
              show_progress=False)
    return root


@pytest.mark.parametrize("fmt", ["llamafactory", "swift"])
def test_export_loads_and_follows_the_format(data, fmt):
    out = data / f"export-{fmt}"
    notes = api.export(data / "data", out, fmt=fmt)
    samples = {s.sample_id: s for s in read_samples(data / "data")}
    rows = datasets.load_dataset("json", data_files=str(out / "mmprolong.jsonl"), split="train")
    assert len(rows) == len(samples) == notes["samples"] > 0
    assert any(s.followups for s in samples.values())
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        sample = samples[row["sample_id"]]
        assert roles == ["system"] + ["user", "assistant"] * sample.questions  # a follow-up: a turn of its own
        user = row["messages"][1]["content"]
        assert len(re.findall("<image>", user)) == len(row["images"]) == len(sample.pages)
        assert user.endswith(sample.question) and row["messages"][2]["content"] == sample.answer
        assert [m["content"] for m in row["messages"][3:]] == [t for f in sample.followups
                                                               for t in (f.question, f.answer)]
        for path, page in zip(row["images"], sample.pages):
            file = Path(path) if fmt == "swift" else out / path
            assert (Path(path).is_absolute()) == (fmt == "swift")
            assert file.name == f"{page.page_index:05d}.png" and file.parent.name == page.doc_id
    # Each page image is written once, however many samples show it.
    used = {(p.doc_id, p.page_index) for s in samples.values() for p in s.pages}
    assert len(list((out / "images").rglob("*.png"))) == len(used) == notes["images"]
    image = Image.open(next((out / "images").rglob("*.png")))
    assert image.width * image.height <= notes["max_pixels"]


def test_llamafactory_dataset_info(data):
    out = data / "export-llamafactory"
    api.export(data / "data", out, fmt="llamafactory")
    info = json.loads((out / "dataset_info.json").read_text())["mmprolong"]
    assert info["formatting"] == "sharegpt" and info["file_name"] == "mmprolong.jsonl"
    assert info["columns"] == {"messages": "messages", "images": "images"}
    assert info["tags"]["system_tag"] == "system"
    settings = json.loads((out / "export.json").read_text())["settings"]
    assert settings["image_max_pixels"] == 64 * 28 * 28
    assert settings["cutoff_len"] == max(s.tokens for s in read_samples(data / "data"))


def test_unknown_format_is_refused(data, tmp_path):
    with pytest.raises(ValueError, match="llamafactory"):
        api.export(data / "data", tmp_path, fmt="axolotl")
