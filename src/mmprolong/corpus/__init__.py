"""The embedded document corpus: realistic multi-page PDFs with ground-truth facts, made deterministically.

    paths = make_corpus("pdfs/", docs=8, seed=0)          # pdfs/doc-00000.pdf + doc-00000.truth.json, ...
    truth = load_truth(paths[0])                          # facts: entity, attribute, value, page, box

Document i depends only on (seed, i, min_pages, max_pages): ``docs=5`` makes a prefix of ``docs=10``.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from mmprolong.corpus.content import plan_document
from mmprolong.corpus.render import render_pdf
from mmprolong.corpus.truth import DocumentTruth, Fact, SectionTruth, load_truth, truth_path

__all__ = ["DocumentTruth", "Fact", "SectionTruth", "load_truth", "make_corpus", "make_document", "truth_path"]
KINDS = ("report", "manual", "slides")
MIN_PAGES = 3  # a title page, a contents page and one content page


def document_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"mmprolong-corpus/{seed}/{index}".encode()).digest()[:8], "big")


def make_document(seed: int, index: int, *, min_pages: int, max_pages: int) -> tuple[bytes, DocumentTruth]:
    """PDF bytes and ground truth of document ``index`` of the corpus made with ``seed``."""
    doc_seed = document_seed(seed, index)
    rng = random.Random(doc_seed)
    kind = rng.choice(KINDS)
    num_pages = rng.randint(min_pages, max_pages)
    plan = plan_document(rng, num_pages, kind)
    pdf, facts = render_pdf(plan)
    groups: dict[str, list[str]] = {}
    for fact in facts:
        if fact.attribute != "document number":
            groups.setdefault(fact.attribute, []).append(fact.fact_id)
    truth = DocumentTruth(
        doc_name=f"doc-{index:05d}", kind=kind, title=plan.title, organisation=plan.organisation,
        num_pages=len(plan.pages), seed=doc_seed,
        sections=tuple(SectionTruth(title=t, level=lv, start_page=a, end_page=b) for t, lv, a, b in plan.sections),
        facts=tuple(facts), groups={k: v for k, v in sorted(groups.items()) if len(v) > 1})
    return pdf, truth


def make_corpus(out_dir: str | Path, *, docs: int, seed: int, min_pages: int = 20, max_pages: int = 200,
                show_progress: bool = False) -> list[Path]:
    """Write ``docs`` PDFs and their ``.truth.json`` into ``out_dir``; documents already there are kept."""
    if docs < 1:
        raise ValueError(f"docs={docs}: make at least 1 document")
    if not MIN_PAGES <= min_pages <= max_pages:
        raise ValueError(f"min_pages={min_pages}, max_pages={max_pages}: need {MIN_PAGES} <= min_pages <= max_pages")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    paths = []
    for index in tqdm(range(docs), desc="corpus", unit="doc", disable=not show_progress):
        pdf_path = out / f"doc-{index:05d}.pdf"
        if not (pdf_path.is_file() and truth_path(pdf_path).is_file()):
            pdf, truth = make_document(seed, index, min_pages=min_pages, max_pages=max_pages)
            _write_atomic(truth_path(pdf_path), truth.to_json().encode())
            _write_atomic(pdf_path, pdf)  # written last: a PDF beside its truth marks the document done
        paths.append(pdf_path)
    return paths


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
