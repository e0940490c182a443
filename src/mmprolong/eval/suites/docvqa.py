"""Long-document VQA at a chosen length, from local copies of MMLongBench-Doc, LongDocURL and SlideVQA.

Each dataset is read from ``DATA_DIR/<dataset>/`` in its released layout (field names learned from the
public repositories, nothing copied):

- ``mmlongbench-doc``: ``samples.json`` (or ``data/samples.json``), a list of records with ``doc_id`` (the PDF's
  file name in ``documents/``), ``question``, ``answer``, ``evidence_pages`` (a string such as "[19, 20]",
  1-based), ``answer_format`` (Str, Int, Float, List, None). PDFs are rendered with ingest's renderer at
  ``pdf_max_dpi`` within the pixel budget, once, into OUT/pdf_pages/.
- ``longdocurl``: ``LongDocURL.jsonl`` (or any ``*.jsonl``) with ``question_id``, ``doc_no``, ``total_pages``,
  ``question``, ``answer`` (number, string or list), ``evidence_pages`` (1-based list), ``answer_format``
  (String, Integer, Float, List); page images ``pdf_pngs/**/<doc_no>_<i>.png`` (i 0-based), or a PDF
  ``**/<doc_no>.pdf``.
- ``slidevqa``: ``annotations/qa/test.jsonl`` (else every ``*.jsonl`` there) with ``deck_name``, ``qa_id``,
  ``question``, ``answer``, ``evidence_pages`` (1-based); slides ``images/<split>/<deck_name>/slide-<n>-*.jpg``.
  The answer format is inferred (Integer, Float or String).

Cut or pad to length L, as MMLongBench builds its doc inputs with cross-modal token counting: every image is
preceded by a label ("Document X (page n):", so page references in questions stay valid after cutting) and the
question comes last. A document longer than L loses the non-evidence pages farthest from its evidence first
(evidence pages are always kept; a question without evidence keeps the document's start). A shorter one is
padded with unrelated documents, whole and in a seeded order, alternately on the left and the right (the
paper's 256K/512K construction), the last one cut at a page boundary. Lengths land in [L - tolerance, L].
Padding documents are the dataset's other documents, then the page store's (``store_dir``) if one is given.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.eval.items import NO_DEPTH, EvalItem, ItemImage, error_item
from mmprolong.eval.pages import file_image, span
from mmprolong.eval.suites.common import SuiteContext, count, finish_item, rng_for

INSTRUCTION = ("Answer as concisely as you can, in a single phrase or sentence if possible. If the document does "
               "not contain the answer, write 'Not answerable'.")
NATIVE_METRIC = {"mmlongbench-doc": "mmlongbench-doc", "longdocurl": "longdocurl", "slidevqa": "slidevqa"}
FORMATS = ("Str", "String", "Int", "Integer", "Float", "List", "None")


@dataclass
class BenchDoc:
    name: str
    pages: list[ItemImage]
    error: str = ""  # why the document cannot be used (missing PDF, missing page image)


@dataclass
class BenchQuestion:
    dataset: str
    qid: str
    doc: str
    question: str = ""
    answer: str = ""
    answer_format: str = "String"
    evidence: list[int] = field(default_factory=list)  # 0-based page indices
    error: str = ""  # why the record is malformed


@dataclass
class BenchSet:
    dataset: str
    docs: dict[str, BenchDoc]
    questions: list[BenchQuestion]


# --- loaders -----------------------------------------------------------------------------------------------


def _first(root: Path, *names: str) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def _pages_1based(value, dataset: str) -> list[int]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip() or "[]")
        except (ValueError, SyntaxError):
            raise DataError(f"evidence_pages {value!r} is not a list of page numbers") from None
    if isinstance(value, int):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, int) and not isinstance(p, bool) for p in value):
        raise DataError(f"evidence_pages {value!r} is not a list of page numbers")
    if any(p < 1 for p in value):
        raise DataError(f"evidence_pages {value!r}: {dataset} numbers pages from 1")
    return sorted({p - 1 for p in value})


def _gold(answer) -> str:
    if isinstance(answer, (list, tuple)):
        return json.dumps([str(a) if not isinstance(a, (int, float)) else a for a in answer])
    return str(answer)


def _question(dataset: str, qid: str, doc: str, record: dict, fmt_key: str | None,
              fmt_infer: bool = False) -> BenchQuestion:
    q = BenchQuestion(dataset=dataset, qid=qid, doc=doc)
    try:
        for key in ("question", "answer", "evidence_pages"):
            if key not in record:
                raise DataError(f"field {key!r} missing")
        if not isinstance(record["question"], str) or not record["question"].strip():
            raise DataError("question is empty or not text")
        q.question, q.answer = record["question"].strip(), _gold(record["answer"])
        q.evidence = _pages_1based(record["evidence_pages"], dataset)
        if fmt_infer:
            q.answer_format = infer_format(record["answer"])
        else:
            q.answer_format = str(record.get(fmt_key, ""))
            if q.answer_format not in FORMATS:
                raise DataError(f"answer_format {q.answer_format!r} not one of {', '.join(FORMATS)}")
    except (DataError, ValueError, SyntaxError, TypeError) as exc:
        q.error = f"malformed {dataset} record {qid}: {exc}"
    return q


def infer_format(answer) -> str:
    """SlideVQA has no answer format: Integer / Float for numbers (also "1,840", "12.5"), else String."""
    if isinstance(answer, bool):
        return "String"
    if isinstance(answer, int):
        return "Integer"
    if isinstance(answer, float):
        return "Float"
    text = str(answer).strip().replace(",", "")
    if re.fullmatch(r"-?\d+", text):
        return "Integer"
    if re.fullmatch(r"-?\d*\.\d+", text):
        return "Float"
    return "String"


def _read_json_records(path: Path) -> list:
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                rows.append(DataError(f"{path.name} line {n} is not JSON: {exc.msg}"))
        return rows
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a list of records")
    return data


def _records(dataset: str, rows: list, make: Callable[[int, dict], BenchQuestion]) -> list[BenchQuestion]:
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, Exception) or not isinstance(row, dict):
            reason = str(row) if isinstance(row, Exception) else f"record is a {type(row).__name__}, not an object"
            out.append(BenchQuestion(dataset=dataset, qid=f"#{i}", doc="", error=f"malformed {dataset} record "
                                                                                   f"#{i}: {reason}"))
            continue
        out.append(make(i, row))
    return out


def render_pdf_pages(pdf: Path, ctx: SuiteContext) -> BenchDoc:
    """A PDF's pages as images (rendered once into OUT/pdf_pages/<hash>/ with ingest's renderer)."""
    from mmprolong.ingest.config import IngestConfig
    from mmprolong.ingest.pdf import SkipReport, doc_id_of, read_pdf_bytes, render_document

    config = IngestConfig(family=ctx.family.name, min_pixels=ctx.min_pixels, max_pixels=ctx.max_pixels,
                          max_dpi=ctx.config.pdf_max_dpi)
    data = read_pdf_bytes(pdf, config)
    if isinstance(data, str):
        return BenchDoc(pdf.name, [], error=f"PDF {pdf}: {data}")
    digest = doc_id_of(data)
    folder = ctx.out_dir / "pdf_pages" / f"{digest}-{config.max_dpi:g}-{ctx.min_pixels}-{ctx.max_pixels}"
    marker = folder / "pages.json"
    if not marker.is_file():
        pages = []
        for record in render_document(data, pdf.name, config):
            if isinstance(record, SkipReport):
                return BenchDoc(pdf.name, [], error=f"PDF {pdf}: page {record.page}: {record.reason}")
            path = folder / f"{record.page_index:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(record.image)
            pages.append(path.name)
        marker.write_text(json.dumps(pages))
    names = json.loads(marker.read_text())
    images = [file_image(folder / n, min_pixels=ctx.min_pixels, max_pixels=ctx.max_pixels, family=ctx.family,
                         key=f"pdf:{digest}/{i}@{config.max_dpi:g}") for i, n in enumerate(names)]
    return BenchDoc(pdf.name, images)


def load_mmlongbench_doc(root: Path, ctx: SuiteContext) -> BenchSet:
    dataset = "mmlongbench-doc"
    samples = _first(root, "samples.json", "data/samples.json")
    if samples is None:
        raise DataError(f"{root}: no samples.json (MMLongBench-Doc layout: samples.json + documents/*.pdf)")
    documents = next((d for d in (samples.parent / "documents", root / "documents") if d.is_dir()), root)

    def make(i: int, row: dict) -> BenchQuestion:
        return _question(dataset, f"{i}", str(row.get("doc_id", "")), row, "answer_format")

    questions = _records(dataset, _read_json_records(samples), make)
    docs = {}
    for name in sorted({q.doc for q in questions if q.doc}):
        pdf = documents / name
        docs[name] = render_pdf_pages(pdf, ctx) if pdf.is_file() else BenchDoc(name, [], f"PDF {pdf} not found")
    return BenchSet(dataset, docs, questions)


_PNG_PAGE = re.compile(r"^(.+)_(\d+)\.png$")


def load_longdocurl(root: Path, ctx: SuiteContext) -> BenchSet:
    dataset = "longdocurl"
    qa = _first(root, "LongDocURL.jsonl") or next(iter(sorted(root.glob("*.jsonl"))), None)
    if qa is None:
        raise DataError(f"{root}: no LongDocURL.jsonl (LongDocURL layout: LongDocURL.jsonl + pdf_pngs/)")
    pngs: dict[str, dict[int, Path]] = {}
    for path in sorted(root.rglob("*.png")):
        match = _PNG_PAGE.match(path.name)
        if match:
            pngs.setdefault(match.group(1), {})[int(match.group(2))] = path

    totals: dict[str, int] = {}

    def make(i: int, row: dict) -> BenchQuestion:
        doc = str(row.get("doc_no", ""))
        if isinstance(row.get("total_pages"), int):
            totals[doc] = max(totals.get(doc, 0), row["total_pages"])
        return _question(dataset, str(row.get("question_id", f"#{i}")), doc, row, "answer_format")

    questions = _records(dataset, _read_json_records(qa), make)
    docs = {}
    for name in sorted({q.doc for q in questions if q.doc}):
        pages = pngs.get(name, {})
        if not pages:
            pdf = next(iter(sorted(root.rglob(f"{name}.pdf"))), None)
            docs[name] = (render_pdf_pages(pdf, ctx) if pdf else
                          BenchDoc(name, [], f"no page images {name}_<i>.png and no {name}.pdf under {root}"))
            continue
        total = totals.get(name, max(pages) + 1)
        missing = [i for i in range(total) if i not in pages]
        docs[name] = (BenchDoc(name, [], f"page image {name}_{missing[0]}.png is missing ({len(missing)} of {total})")
                      if missing else _file_doc(name, [pages[i] for i in range(total)], root, ctx))
    return BenchSet(dataset, docs, questions)


def _file_doc(name: str, paths: Sequence[Path], root: Path, ctx: SuiteContext) -> BenchDoc:
    try:
        images = [file_image(p, min_pixels=ctx.min_pixels, max_pixels=ctx.max_pixels, family=ctx.family,
                             key=f"file:{p.relative_to(root).as_posix()}:{p.stat().st_size}") for p in paths]
    except DataError as exc:
        return BenchDoc(name, [], str(exc))
    return BenchDoc(name, images)


_SLIDE_NUMBER = re.compile(r"(\d+)")


def load_slidevqa(root: Path, ctx: SuiteContext) -> BenchSet:
    dataset = "slidevqa"
    qa_dir = root / "annotations" / "qa"
    files = [qa_dir / "test.jsonl"] if (qa_dir / "test.jsonl").is_file() else sorted(qa_dir.glob("*.jsonl"))
    if not files:
        raise DataError(f"{root}: no annotations/qa/*.jsonl (SlideVQA layout: annotations/qa + images/<split>/)")

    def make(i: int, row: dict) -> BenchQuestion:
        return _question(dataset, str(row.get("qa_id", f"#{i}")), str(row.get("deck_name", "")), row, None,
                         fmt_infer=True)

    questions = _records(dataset, [r for f in files for r in _read_json_records(f)], make)
    docs = {}
    for name in sorted({q.doc for q in questions if q.doc}):
        folders = sorted(p for p in (root / "images").glob(f"*/{name}") if p.is_dir())
        slides = sorted((p for p in folders[0].iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                        key=_slide_key) if folders else []
        docs[name] = _file_doc(name, slides, root, ctx) if slides else BenchDoc(
            name, [], f"no slide images in {root / 'images'}/<split>/{name}/")
    return BenchSet(dataset, docs, questions)


def _slide_key(path: Path):
    match = _SLIDE_NUMBER.search(path.stem)
    return (int(match.group(1)) if match else 1 << 30, path.name)


LOADERS = {"mmlongbench-doc": load_mmlongbench_doc, "longdocurl": load_longdocurl, "slidevqa": load_slidevqa}


def load_dataset(dataset: str, root: Path, ctx: SuiteContext) -> BenchSet:
    if not root.is_dir():
        raise DataError(f"{dataset}: folder {root} not found (write_docvqa_samples makes a small one)")
    return LOADERS[dataset](root, ctx)


# --- cut or pad to a length --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    doc: str
    index: int  # 0-based page of its document
    image: ItemImage
    label: str  # the text part before the image
    cost: int  # label tokens + image span


def doc_label(name: str) -> str:
    """How a document is named in the prompt: its file name without extension, cut to 15 characters."""
    return Path(name).stem[:15] or name[:15]


def _pages(ctx: SuiteContext, name: str, images: Sequence[ItemImage]) -> list[_Page]:
    label = doc_label(name)
    out = []
    for i, image in enumerate(images):
        text = f"\nDocument {label} (page {i + 1}): "
        out.append(_Page(name, i, image, text, len(ctx.template.text_ids(text)) + span(image)))
    return out


def fit_document(main: list[_Page], evidence: Sequence[int], pool: Sequence[list[_Page]],
                 budget: int) -> tuple[list[_Page], list[_Page], list[_Page]] | str:
    """(left padding, kept document pages, right padding) whose costs sum to at most ``budget``, or the reason
    none fits. Cutting drops the non-evidence pages farthest from the evidence; padding alternates left/right
    by whole documents (left takes a document's last pages first, right its first pages)."""
    if budget <= 0:
        return f"the prompt without pages already takes {-budget} tokens more than the length"
    keep = set(range(len(main)))
    used = sum(p.cost for p in main)
    needed = sum(main[e].cost for e in evidence)
    if needed > budget:
        return f"the evidence pages alone take {needed} tokens, more than the {budget} left for pages"
    if used > budget:
        anchors = list(evidence) or [0]
        order = sorted((i for i in keep if i not in set(evidence)),
                       key=lambda i: (-min(abs(i - a) for a in anchors), -i))
        for i in order:
            if used <= budget:
                break
            keep.discard(i)
            used -= main[i].cost
        return [], [main[i] for i in sorted(keep)], []
    left: list[_Page] = []
    right: list[_Page] = []
    for turn, doc in enumerate(pool):
        pages = list(reversed(doc)) if turn % 2 == 0 else doc
        for page in pages:
            if used + page.cost > budget:
                return list(reversed(left)), list(main), right
            (left if turn % 2 == 0 else right).append(page)
            used += page.cost
    return list(reversed(left)), list(main), right


# --- items -------------------------------------------------------------------------------------------------


def build_items(ctx: SuiteContext) -> list[EvalItem]:
    """Per dataset: the same questions (``max_questions``, seeded) at every length."""
    config = ctx.config
    store_docs = _store_pool(ctx) if config.store_dir else []
    items = []
    for dataset in config.datasets:
        metric = "mmlongbench-docqa" if config.docvqa_metric == "mmlongbench" else NATIVE_METRIC[dataset]
        try:
            bench = load_dataset(dataset, Path(config.data_dir) / dataset, ctx)
        except (DataError, OSError, ValueError) as exc:
            items += [error_item(suite="docvqa", task=dataset, length=n, depth=NO_DEPTH, metric=metric,
                                 error=f"cannot read {dataset}: {exc}") for n in config.lengths]
            continue
        pages = {name: _pages(ctx, name, doc.pages) for name, doc in bench.docs.items() if not doc.error}
        questions = _select(bench.questions, config.max_questions, rng_for("docvqa-select", config.seed, dataset))
        for q in questions:
            for length in config.lengths:
                items.append(_build_one(ctx, bench, pages, store_docs, q, length, metric))
    return items


def _select(questions: list[BenchQuestion], limit: int, rng) -> list[BenchQuestion]:
    if limit < 0 or limit >= len(questions):
        return questions
    return [questions[i] for i in sorted(rng.sample(range(len(questions)), limit))]


def _store_pool(ctx: SuiteContext) -> list[list[_Page]]:
    store = ctx.store
    return [_pages(ctx, store.sources.get(d, d), store.pages[d]) for d in store.doc_ids]


def _build_one(ctx: SuiteContext, bench: BenchSet, pages: dict[str, list[_Page]], store_docs, q: BenchQuestion,
               length: int, metric: str) -> EvalItem:
    meta = {"dataset": bench.dataset, "qid": q.qid, "doc": q.doc, "evidence_pages": [e + 1 for e in q.evidence]}

    def fail(reason: str) -> EvalItem:
        return error_item(suite="docvqa", task=bench.dataset, length=length, depth=NO_DEPTH, metric=metric,
                          question=q.question, answers=[q.answer], answer_format=q.answer_format or "String",
                          error=reason, metadata=meta)

    if q.error:
        return fail(q.error)
    doc = bench.docs.get(q.doc)
    if doc is None or doc.error:
        return fail(doc.error if doc else f"document {q.doc!r} not found")
    main = pages[q.doc]
    if any(e >= len(main) for e in q.evidence):
        return fail(f"evidence page {max(q.evidence) + 1} is beyond the document's {len(main)} pages")
    question = (f"\n\nBased on Document {doc_label(q.doc)}, answer the following question. {q.question}\n"
                f"{INSTRUCTION}")
    fixed = count(ctx.template, [question], [q.answer])
    pool = [p for name, p in sorted(pages.items()) if name != q.doc] + list(store_docs)
    rng_for("docvqa-pad", ctx.config.seed, bench.dataset, q.qid).shuffle(pool)
    fitted = fit_document(main, q.evidence, pool, length - fixed)
    if isinstance(fitted, str):
        return fail(f"cannot fit {length} tokens: {fitted}")
    left, kept, right = fitted
    sequence = left + kept + right
    parts: list = []
    for page in sequence:
        parts += [page.label, page.image]
    parts.append(question)
    evidence = [len(left) + i for i, p in enumerate(kept) if p.index in set(q.evidence)]
    tolerance = ctx.tolerance([p.cost for p in main] + [p.cost for doc_pages in pool for p in doc_pages])
    item = finish_item(ctx, suite="docvqa", task=bench.dataset, length=length, depth=NO_DEPTH, parts=parts,
                       question=q.question, answers=[q.answer], answer_format=q.answer_format, metric=metric,
                       evidence=evidence, metadata={**meta, "kept_pages": [p.index + 1 for p in kept],
                                                    "left_docs": _docs_of(left), "right_docs": _docs_of(right),
                                                    "tolerance": tolerance})
    if not length - tolerance <= item.tokens <= length:
        return fail(f"not enough pages to pad the document to {length} tokens: reached {item.tokens} "
                    f"(tolerance {tolerance}); add documents or a store_dir")
    return item


def _docs_of(pages: Sequence[_Page]) -> list[str]:
    out: list[str] = []
    for p in pages:
        if not out or out[-1] != p.doc:
            out.append(p.doc)
    return out
