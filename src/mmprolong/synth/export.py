"""Export synth samples for other trainers: LLaMA-Factory (sharegpt messages + dataset_info.json) and
ms-swift (messages jsonl). Each page image is written once under ``images/`` and shared by every sample
that shows it. The pixel budget the samples were counted with is written beside them: the trainer must
use the same, or its token counts differ from ours.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mmprolong.errors import DataError
from mmprolong.models import DEFAULT_FAMILY, ModelFamily, get_family
from mmprolong.records import SampleRecord

FORMATS = ("llamafactory", "swift")
IMAGE_TAG = "<image>"  # both frameworks' placeholder for one image in a message
DATASET_NAME = "mmprolong"


def read_samples(data_dir: str | Path) -> list[SampleRecord]:
    shards = sorted(Path(data_dir).glob("*.parquet"))
    if not shards:
        raise DataError(f"{data_dir} holds no synth shards (*.parquet): run `mmprolong synth` first")
    rows = []
    for shard in shards:
        rows += pq.read_table(shard).to_pylist()
    return [SampleRecord.from_row(r) for r in rows]


def _write_images(samples: list[SampleRecord], store_dir: Path, out_dir: Path) -> dict[tuple[str, int], str]:
    """Write each needed page once; returns (doc_id, page_index) -> path relative to out_dir."""
    needed = sorted({(p.doc_id, p.page_index) for s in samples for p in s.pages})
    wanted = {}
    for doc_id, page in needed:
        wanted.setdefault(doc_id, set()).add(page)
    paths = {}
    dataset = ds.dataset(sorted(str(p) for p in store_dir.glob("*.parquet")), format="parquet")
    for doc_id in sorted(wanted):
        table = dataset.to_table(columns=["page_index", "image", "image_format"],
                                 filter=ds.field("doc_id") == doc_id)
        for row in table.to_pylist():
            if row["page_index"] not in wanted[doc_id]:
                continue
            ext = "jpg" if row["image_format"] == "jpeg" else "png"
            rel = f"images/{doc_id}/{row['page_index']:05d}.{ext}"
            target = out_dir / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".tmp")
                tmp.write_bytes(row["image"])
                os.replace(tmp, target)
            paths[(doc_id, row["page_index"])] = rel
    missing = [key for key in needed if key not in paths]
    if missing:
        raise DataError(f"{len(missing)} pages referenced by samples are not in the store {store_dir}, "
                        f"e.g. document {missing[0][0]} page {missing[0][1]}")
    return paths


def _messages(sample: SampleRecord, family: ModelFamily) -> list[dict]:
    system = [] if family.system_prompt is None else [{"role": "system", "content": family.system_prompt}]
    turns = [{"role": "user", "content": IMAGE_TAG * len(sample.pages) + sample.question},
             {"role": "assistant", "content": sample.answer}]
    for f in sample.followups:
        turns += [{"role": "user", "content": f.question}, {"role": "assistant", "content": f.answer}]
    return [*system, *turns]


def export(data_dir: str | Path, out_dir: str | Path, *, fmt: str) -> dict:
    """Write DATA_DIR's samples in ``fmt`` (llamafactory | swift) to ``out_dir``; returns what was written."""
    if fmt not in FORMATS:
        raise DataError(f"export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    summary = json.loads((data_dir / "summary.json").read_text())
    store_dir = (data_dir / summary["store"]).resolve()
    family = get_family(summary.get("family", DEFAULT_FAMILY.name))  # the layout the samples were counted in
    samples = read_samples(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = _write_images(samples, store_dir, out_dir)
    root = out_dir.resolve()
    lines = []
    for s in samples:
        images = [paths[(p.doc_id, p.page_index)] for p in s.pages]
        if fmt == "swift":  # ms-swift opens image paths as given: make them absolute
            images = [str(root / i) for i in images]
        lines.append(json.dumps({"messages": _messages(s, family), "images": images, "sample_id": s.sample_id,
                                 "task": s.task, "tokens": s.tokens}, ensure_ascii=False, sort_keys=True))
    data_file = out_dir / f"{DATASET_NAME}.jsonl"
    data_file.write_text("\n".join(lines) + "\n")
    if fmt == "llamafactory":
        _write_llamafactory_info(out_dir)
    notes = {"format": fmt, "samples": len(samples), "images": len(paths), "data_file": data_file.name,
             "min_pixels": summary.get("min_pixels"), "max_pixels": summary.get("max_pixels"),
             "max_tokens": max((s.tokens for s in samples), default=0),
             "settings": _settings(fmt, summary, samples, family)}
    (out_dir / "export.json").write_text(json.dumps(notes, indent=1, sort_keys=True) + "\n")
    return notes


def _write_llamafactory_info(out_dir: Path) -> None:
    info = {DATASET_NAME: {
        "file_name": f"{DATASET_NAME}.jsonl", "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                 "assistant_tag": "assistant", "system_tag": "system"}}}
    (out_dir / "dataset_info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")


def _settings(fmt: str, summary: dict, samples: list[SampleRecord], family: ModelFamily) -> dict:
    """The trainer settings that keep its token counts equal to ours."""
    longest = max((s.tokens for s in samples), default=0)
    if fmt == "llamafactory":
        return {"dataset": DATASET_NAME, "dataset_dir": ".", "template": family.llamafactory_template,
                "image_min_pixels": summary.get("min_pixels"), "image_max_pixels": summary.get("max_pixels"),
                "cutoff_len": longest}
    return {"--dataset": f"{DATASET_NAME}.jsonl", "--max_length": longest,
            "env": {"MIN_PIXELS": summary.get("min_pixels"), "MAX_PIXELS": summary.get("max_pixels")}}
