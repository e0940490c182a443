"""docvqa from MMLongBench's prebuilt inputs (github EdinburghNLP/MMLongBench; data from its download scripts).

``DATA_DIR`` holds MMLongBench's two archives unpacked: ``mmlb_data/documentQA/<name>_K<k>.jsonl`` (name:
mmlongdoc, longdocurl, slidevqa; k: 8, 16, 32, 64, 128 thousand tokens) and the page images under
``mmlb_image/``. Each line is one question already cut or padded to that length by MMLongBench: ``id``,
``doc_name``, ``question``, ``answer``, ``answer_format``, ``page_list`` (image paths below ``mmlb_image/``, in
prompt order, in folders named after their documents) and ``ans_page_list`` (0-based pages of the question's
document; files are named ``<doc>_page<i>.<ext>`` with i 0-based, SlideVQA's ``<deck>-<n>-1024.jpg`` with n
1-based).

The pages are given as the file lists them, each after a "Document <name>:" label (MMLongBench's labels carry no
page number), then the question; the prompt wording is ours. Token counts are ours too, recorded per item;
the requested length is the file's. Questions are drawn as MMLongBench draws them (``max_questions`` of a
permutation by numpy's ``default_rng(seed)``, which is what ``datasets.Dataset.shuffle(seed)`` does; its
scripts use seed 42).
"""

from __future__ import annotations

import re
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.eval.items import NO_DEPTH, EvalItem, error_item
from mmprolong.eval.pages import file_image
from mmprolong.eval.suites.common import SuiteContext, finish_item
from mmprolong.eval.suites.docvqa import INSTRUCTION, UNREADABLE, doc_label, metric_of
from mmprolong.eval.suites.docvqa_sources import FORMATS, INCOMPLETE, MALFORMED, gold_text, read_records, slide_number

PREFIX = {"mmlongbench-doc": "mmlongdoc", "longdocurl": "longdocurl", "slidevqa": "slidevqa"}
_PAGE = re.compile(r"_page(\d+)$")


def prebuilt_file(data_dir: Path, dataset: str, length: int) -> Path:
    return data_dir / "mmlb_data" / "documentQA" / f"{PREFIX[dataset]}_K{length // 1024}.jsonl"


def build_items(ctx: SuiteContext) -> list[EvalItem]:
    import numpy as np

    config = ctx.config
    data_dir = Path(config.data_dir)
    items = []
    for dataset in config.datasets:
        metric = metric_of(config, dataset)
        for length in config.lengths:
            path = prebuilt_file(data_dir, dataset, length)
            try:
                if length % 1024:
                    raise DataError(f"MMLongBench builds K-multiples only (8K..128K), not {length} tokens")
                rows = read_records(path)
            except (DataError, OSError, ValueError) as exc:
                ctx.records[(dataset, length)] = 0
                items.append(error_item(suite="docvqa", task=dataset, length=length, depth=NO_DEPTH, metric=metric,
                                        error=f"{UNREADABLE}: {path}: {exc}"))
                continue
            ctx.records[(dataset, length)] = len(rows)
            order = list(range(len(rows)))
            if 0 <= config.max_questions < len(rows):
                order = [int(i) for i in np.random.default_rng(config.seed).permutation(len(rows))]
                order = order[:config.max_questions]
            items += [_item(ctx, dataset, metric, length, path, i, rows[i], data_dir) for i in order]
    return items


def _item(ctx: SuiteContext, dataset: str, metric: str, length: int, path: Path, index: int, row,
          data_dir: Path) -> EvalItem:
    meta = {"dataset": dataset, "file": path.name, "row": index}

    def failed(error: str, **values) -> EvalItem:
        return error_item(suite="docvqa", task=dataset, length=length, depth=NO_DEPTH, metric=metric, error=error,
                          metadata=meta, **values)

    if not isinstance(row, dict):
        reason = str(row) if isinstance(row, Exception) else f"record is a {type(row).__name__}, not an object"
        return failed(f"{MALFORMED}: {path.name} row {index}: {reason}")
    meta |= {"qid": str(row.get("id", f"#{index}")), "doc": str(row.get("doc_name", "")),
             "ans_page_list": row.get("ans_page_list")}
    missing = [k for k in ("doc_name", "question", "answer", "answer_format", "page_list") if k not in row]
    fmt = str(row.get("answer_format", ""))
    if missing:
        return failed(f"{MALFORMED}: {path.name} row {index}: fields {missing} missing")
    if fmt not in FORMATS:
        return failed(f"{MALFORMED}: {path.name} row {index}: answer_format {fmt!r} not one of {', '.join(FORMATS)}")
    if not isinstance(row["page_list"], list) or not row["page_list"]:
        return failed(f"{MALFORMED}: {path.name} row {index}: page_list is not a list of page images")
    question, gold, doc = str(row["question"]).strip(), gold_text(row["answer"]), str(row["doc_name"])
    parts: list = []
    try:
        for rel in row["page_list"]:
            image = next((p for p in (data_dir / "mmlb_image" / rel, data_dir / rel) if p.is_file()), None)
            if image is None:
                raise DataError(f"page image {rel} not found in {data_dir / 'mmlb_image'}")
            parts += [f"\nDocument {doc_label(Path(rel).parent.name)}: ",
                      file_image(image, min_pixels=ctx.min_pixels, max_pixels=ctx.max_pixels, family=ctx.family,
                                 key=f"mmlb:{rel}:{image.stat().st_size}")]
    except DataError as exc:
        return failed(f"{INCOMPLETE}: {exc}", question=question, answers=[gold], answer_format=fmt)
    parts.append(f"\n\nBased on Document {doc_label(doc)}, answer the following question. {question}\n{INSTRUCTION}")
    return finish_item(ctx, suite="docvqa", task=dataset, length=length, depth=NO_DEPTH, parts=parts,
                       question=question, answers=[gold], answer_format=fmt, metric=metric,
                       evidence=_evidence(row["page_list"], doc, row.get("ans_page_list")),
                       metadata={**meta, "prebuilt": True, "prompt_images": len(row["page_list"])})


def _evidence(page_list: list, doc: str, answer_pages) -> list[int]:
    """Positions in the prompt of the question document's answer pages (0-based page ids in the file names)."""
    if not isinstance(answer_pages, list):
        return []
    wanted = {p for p in answer_pages if isinstance(p, int)}
    names = {doc, Path(doc).stem}
    out = []
    for position, rel in enumerate(page_list):
        rel = Path(str(rel))
        if rel.parent.name not in names:
            continue
        match = _PAGE.search(rel.stem)
        number = int(match.group(1)) if match else (slide_number(rel.name) or 0) - 1
        if number in wanted:
            out.append(position)
    return out

