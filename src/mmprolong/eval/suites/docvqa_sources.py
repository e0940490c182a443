"""The three long-document VQA benchmarks read from the files their authors release, in the layouts their
repositories and READMEs give (field names learned from the public repositories, nothing copied).

``DATA_DIR/<dataset>/`` may be spelled as the repository is (``MMLongBench-Doc``, ``LongDocURL``,
``SlideVQA``) or in lower case; inside it:

- MMLongBench-Doc (github mayubo2333/MMLongBench-Doc, as cloned): ``data/samples.json`` + ``data/documents/*.pdf``
  (or both at the top). Records: ``doc_id`` (the PDF's name), ``question``, ``answer``, ``evidence_pages`` (a
  string such as "[19, 20]", 1-based), ``answer_format`` (Str, Int, Float, List, None).
- LongDocURL (github dengc2023/LongDocURL, as cloned, or the Hugging Face files): ``data/LongDocURL.jsonl`` +
  ``data/pdf_pngs/<range>/<dddd>/<doc_no>_<i>.png`` (i 0-based), or both at the top, or ``<doc_no>.pdf``
  anywhere below. Records: ``question_id``, ``doc_no``, ``total_pages``, ``start_end_idx`` (the 1-based page
  window the question was written on, both ends included), ``question``, ``answer`` (number, string, or a list
  whose items may be table rows as objects), ``evidence_pages`` (1-based), ``answer_format``.
- SlideVQA (github nttmdlab-nlp/SlideVQA): ``annotations/qa/test.jsonl`` (else every ``*.jsonl`` there) with
  slides where its download script puts them, ``images/<split>/<deck_name>/<deck_name>-<n>-1024.jpg``; the
  slide order is the record's ``image_urls`` (the files are named after them), else the number before the
  width. Or the Hugging Face parquet release (``*.parquet`` anywhere below, the ``test`` split when present):
  one row per question with the deck's slides in columns ``page_1`` .. ``page_20``; the slides are written
  once into the render cache. The answer format is inferred (Integer, Float or String).

A record that cannot be used keeps its place with ``error`` = "<reason>: <details>"; so does a document.
Evidence pages are 0-based here. PDFs are read through ``PdfPages``: sizes now, pixels when an item needs them.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.eval.items import ItemImage
from mmprolong.eval.pages import file_image
from mmprolong.eval.pdf_pages import PdfPages
from mmprolong.models.base import ModelFamily

RELEASED_FOLDERS = {"mmlongbench-doc": "MMLongBench-Doc", "longdocurl": "LongDocURL", "slidevqa": "SlideVQA"}
FORMATS = ("Str", "String", "Int", "Integer", "Float", "List", "None")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# Reasons a record or document cannot be used (the text before the first ": " of an error).
MALFORMED = "malformed record"
NO_DOCUMENT = "document not found"
BAD_DOCUMENT = "document unreadable"
INCOMPLETE = "document incomplete"


@dataclass
class BenchDoc:
    name: str
    pages: list[ItemImage]
    error: str = ""  # "<reason>: <details>" when the document cannot be used


@dataclass
class BenchQuestion:
    dataset: str
    qid: str
    doc: str
    question: str = ""
    answer: str = ""  # the gold as scored: text, or a JSON list
    answer_format: str = "String"
    evidence: list[int] = field(default_factory=list)  # 0-based page indices
    window: tuple[int, int] | None = None  # LongDocURL: 0-based first and last page of the record's window
    notes: list[str] = field(default_factory=list)  # how the record was read where it needed reading
    error: str = ""  # "<reason>: <details>" when the record cannot be used


@dataclass
class BenchSet:
    dataset: str
    docs: dict[str, BenchDoc]
    questions: list[BenchQuestion]


@dataclass
class Sources:
    """What loaders need besides the folder: the model family and pixel budget pages are counted for, the PDF
    pages, the cache folder."""

    family: ModelFamily
    min_pixels: int
    max_pixels: int
    pdfs: PdfPages
    cache_dir: Path


def dataset_root(data_dir: Path, dataset: str) -> Path:
    """``DATA_DIR/<dataset>``, the name spelled as we do or as its repository does (any case)."""
    if (data_dir / dataset).is_dir():
        return data_dir / dataset
    if data_dir.is_dir():
        for child in sorted(data_dir.iterdir()):
            if child.is_dir() and child.name.lower() == dataset:
                return child
    raise DataError(f"no folder {dataset}/ or {RELEASED_FOLDERS[dataset]}/ in {data_dir} (write_docvqa_samples "
                    "makes a small one)")


# --- records -----------------------------------------------------------------------------------------------


def _pages_1based(value) -> tuple[list[int], list[str]]:
    """Evidence pages (1-based in every benchmark) -> (0-based indices, notes). Page 0 is not a page: it is read
    as unknown evidence (MMLongBench-Doc has three such records; its scorer does not use the pages)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip() or "[]")
        except (ValueError, SyntaxError):
            raise DataError(f"evidence_pages {value!r} is not a list of page numbers") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, int) and not isinstance(p, bool) for p in value):
        raise DataError(f"evidence_pages {value!r} is not a list of page numbers")
    if any(p < 0 for p in value):
        raise DataError(f"evidence_pages {value!r}: pages number from 1")
    notes = ["evidence page 0 read as unknown (pages number from 1)"] if 0 in value else []
    return sorted({p - 1 for p in value if p > 0}), notes


def gold_text(answer) -> str:
    """The gold as items carry it: text as it is; a list as JSON, its items kept as they are (LongDocURL's
    table-row objects stay objects, which its scorer joins by value)."""
    if isinstance(answer, (list, tuple)):
        return json.dumps(list(answer), ensure_ascii=False)
    return str(answer)


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


def read_question(dataset: str, qid: str, doc: str, record: dict, fmt_key: str | None) -> BenchQuestion:
    """A record as a BenchQuestion; ``fmt_key`` None infers the answer format. Problems become ``error``."""
    q = BenchQuestion(dataset=dataset, qid=qid, doc=doc)
    try:
        for key in ("question", "answer", "evidence_pages"):
            if key not in record:
                raise DataError(f"field {key!r} missing")
        if not isinstance(record["question"], str) or not record["question"].strip():
            raise DataError("question is empty or not text")
        q.question, q.answer = record["question"].strip(), gold_text(record["answer"])
        q.evidence, q.notes = _pages_1based(record["evidence_pages"])
        q.answer_format = infer_format(record["answer"]) if fmt_key is None else str(record.get(fmt_key, ""))
        if q.answer_format not in FORMATS:
            raise DataError(f"answer_format {q.answer_format!r} not one of {', '.join(FORMATS)}")
    except DataError as exc:
        q.error = f"{MALFORMED}: {dataset} record {qid}: {exc}"
    return q


def read_records(path: Path) -> list:
    """The records of a JSON list or JSON-lines file; a line that is not JSON is kept as a DataError."""
    if path.suffix == ".jsonl":
        rows: list = []
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


def read_all(dataset: str, rows: list, make: Callable[[int, dict], BenchQuestion]) -> list[BenchQuestion]:
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            out.append(make(i, row))
            continue
        reason = str(row) if isinstance(row, Exception) else f"record is a {type(row).__name__}, not an object"
        out.append(BenchQuestion(dataset=dataset, qid=f"#{i}", doc="", error=f"{MALFORMED}: {dataset} record "
                                                                                   f"#{i}: {reason}"))
    return out


def _first_file(root: Path, *names: str) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def _file_doc(name: str, paths: list[Path], root: Path, src: Sources) -> BenchDoc:
    try:
        images = [file_image(p, min_pixels=src.min_pixels, max_pixels=src.max_pixels, family=src.family,
                             key=f"file:{p.relative_to(root).as_posix()}:{p.stat().st_size}") for p in paths]
    except DataError as exc:
        return BenchDoc(name, [], f"{BAD_DOCUMENT}: {exc}")
    return BenchDoc(name, images)


def _pdf_doc(name: str, pdf: Path, src: Sources) -> BenchDoc:
    try:
        return BenchDoc(name, src.pdfs.document(pdf))
    except DataError as exc:
        return BenchDoc(name, [], f"{BAD_DOCUMENT}: {exc}")


# --- MMLongBench-Doc ---------------------------------------------------------------------------------------


def load_mmlongbench_doc(root: Path, src: Sources) -> BenchSet:
    dataset = "mmlongbench-doc"
    samples = _first_file(root, "data/samples.json", "samples.json")
    if samples is None:
        raise DataError(f"{root}: no data/samples.json or samples.json (MMLongBench-Doc's repository layout: "
                        "data/samples.json + data/documents/*.pdf)")
    documents = next((d for d in (samples.parent / "documents", root / "documents") if d.is_dir()), root)

    def make(i: int, row: dict) -> BenchQuestion:
        return read_question(dataset, f"{i}", str(row.get("doc_id", "")), row, "answer_format")

    questions = read_all(dataset, read_records(samples), make)
    docs = {}
    for name in sorted({q.doc for q in questions if q.doc}):
        pdf = documents / name
        docs[name] = _pdf_doc(name, pdf, src) if pdf.is_file() else BenchDoc(
            name, [], f"{NO_DOCUMENT}: PDF {pdf} not found")
    return BenchSet(dataset, docs, questions)


# --- LongDocURL --------------------------------------------------------------------------------------------

_PNG_PAGE = re.compile(r"^(.+)_(\d+)\.png$")


def _window(value) -> tuple[int, int] | None:
    """start_end_idx [first, last] (1-based, both included) -> 0-based (first, last); None when absent."""
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in value) or not 1 <= value[0] <= value[1]):
        raise DataError(f"start_end_idx {value!r} is not [first page, last page] from 1")
    return value[0] - 1, value[1] - 1


def load_longdocurl(root: Path, src: Sources) -> BenchSet:
    dataset = "longdocurl"
    folders = [root / "data", root]
    qa = next((p for d in folders for p in sorted(d.glob("LongDocURL*.jsonl"))), None) or next(
        (p for d in folders for p in sorted(d.glob("*.jsonl"))), None)
    if qa is None:
        raise DataError(f"{root}: no data/LongDocURL.jsonl or LongDocURL.jsonl (LongDocURL's repository layout: "
                        "data/LongDocURL.jsonl + data/pdf_pngs/)")
    totals: dict[str, int] = {}

    def make(i: int, row: dict) -> BenchQuestion:
        doc = str(row.get("doc_no", ""))
        if isinstance(row.get("total_pages"), int):
            totals[doc] = max(totals.get(doc, 0), row["total_pages"])
        q = read_question(dataset, str(row.get("question_id", f"#{i}")), doc, row, "answer_format")
        if not q.error:
            try:
                q.window = _window(row.get("start_end_idx"))
            except DataError as exc:
                q.error = f"{MALFORMED}: {dataset} record {q.qid}: {exc}"
        return q

    questions = read_all(dataset, read_records(qa), make)
    pngs: dict[str, dict[int, Path]] = {}
    for path in sorted(root.rglob("*.png")):
        match = _PNG_PAGE.match(path.name)
        if match:
            pngs.setdefault(match.group(1), {})[int(match.group(2))] = path
    docs = {}
    for name in sorted({q.doc for q in questions if q.doc}):
        pages = pngs.get(name, {})
        if not pages:
            pdf = next(iter(sorted(root.rglob(f"{name}.pdf"))), None)
            docs[name] = _pdf_doc(name, pdf, src) if pdf else BenchDoc(
                name, [], f"{NO_DOCUMENT}: no page images {name}_<i>.png and no {name}.pdf under {root}")
            continue
        total = totals.get(name, max(pages) + 1)
        missing = [i for i in range(total) if i not in pages]
        docs[name] = (BenchDoc(name, [], f"{INCOMPLETE}: page image {name}_{missing[0]}.png is missing "
                                         f"({len(missing)} of {total})")
                      if missing else _file_doc(name, [pages[i] for i in range(total)], root, src))
    return BenchSet(dataset, docs, questions)


# --- SlideVQA ----------------------------------------------------------------------------------------------

_SLIDE_THEN_WIDTH = re.compile(r"-(\d+)-\d+$")  # <deck_name>-<n>-<width>: the deck's name may hold numbers too
_LAST_NUMBER = re.compile(r"(\d+)\D*$")


def slide_number(name: str) -> int | None:
    """The slide number in a slide's file name: ``<deck>-<n>-1024.jpg`` -> n; else the last number."""
    stem = Path(name).stem
    match = _SLIDE_THEN_WIDTH.search(stem) or _LAST_NUMBER.search(stem)
    return int(match.group(1)) if match else None


def deck_slides(folder: Path, urls: list[str] | None) -> list[Path] | str:
    """The slides of a deck folder in deck order, or why they cannot be: a slide missing (the download
    script's 404s) would shift every later page, so it makes the deck unusable."""
    files = {p.name: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    if urls:
        names = [u.rstrip("/").rsplit("/", 1)[-1] for u in urls]
        missing = [n for n in names if n not in files]
        if missing:
            return (f"{INCOMPLETE}: {len(missing)} of the {len(names)} slides of {folder.name} are missing "
                    f"({missing[0]} first); the Hugging Face parquet release has every slide")
        return [files[n] for n in names]
    numbered: dict[int, Path] = {}
    for name, path in sorted(files.items()):
        number = slide_number(name)
        if number is None or number in numbered:
            return f"{BAD_DOCUMENT}: cannot order the slides of {folder.name}: {name} has no slide number of its own"
        numbered[number] = path
    missing = [n for n in range(1, max(numbered, default=0) + 1) if n not in numbered]
    if missing or not numbered:
        return f"{INCOMPLETE}: slide {missing[0] if missing else 1} of {folder.name} is missing"
    return [numbered[n] for n in sorted(numbered)]


def _slidevqa_question(dataset: str, i: int, row: dict) -> BenchQuestion:
    return read_question(dataset, str(row.get("qa_id", f"#{i}")), str(row.get("deck_name", "")), row, None)


def load_slidevqa(root: Path, src: Sources) -> BenchSet:
    dataset = "slidevqa"
    qa_dir = root / "annotations" / "qa"
    files = [qa_dir / "test.jsonl"] if (qa_dir / "test.jsonl").is_file() else sorted(qa_dir.glob("*.jsonl"))
    if not files:
        parquets = sorted(root.rglob("*.parquet"))
        if parquets:
            return _load_slidevqa_parquet(root, parquets, src)
        raise DataError(f"{root}: no annotations/qa/*.jsonl and no *.parquet (SlideVQA's layouts: annotations/qa + "
                        "images/<split>/<deck>/, or the Hugging Face parquet files)")
    rows = [r for f in files for r in read_records(f)]
    questions = read_all(dataset, rows, lambda i, row: _slidevqa_question(dataset, i, row))
    urls: dict[str, list[str]] = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("image_urls"), list) and row["image_urls"]:
            urls.setdefault(str(row.get("deck_name", "")), [str(u) for u in row["image_urls"]])
    docs = {}
    for name in sorted({q.doc for q in questions if q.doc}):
        folders = sorted(p for p in [*(root / "images").glob(f"*/{name}"), root / "images" / name] if p.is_dir())
        slides = deck_slides(folders[0], urls.get(name)) if folders else (
            f"{NO_DOCUMENT}: no folder {root / 'images'}/<split>/{name}/")
        docs[name] = BenchDoc(name, [], slides) if isinstance(slides, str) else _file_doc(name, slides, root, src)
    return BenchSet(dataset, docs, questions)


_PAGE_COLUMN = re.compile(r"^page_(\d+)$")


def _load_slidevqa_parquet(root: Path, parquets: list[Path], src: Sources) -> BenchSet:
    """The Hugging Face release: one row per question, the deck's slides as image structs (bytes, path) in
    page_1..page_20 (null where a deck has fewer). Each deck's slides are written once into
    ``cache_dir/slidevqa/<sha256>.<ext>``; an index keyed by the parquet files' names, sizes and times makes
    later runs read only the question columns."""
    import pyarrow.dataset as ds

    dataset = "slidevqa"
    test = [p for p in parquets if p.name.startswith("test") or p.parent.name == "test"]
    parquets = test or parquets
    table = ds.dataset([str(p) for p in parquets], format="parquet")
    pages = sorted((c for c in table.schema.names if _PAGE_COLUMN.match(c)), key=lambda c: int(c[5:]))
    if not pages:
        raise DataError(f"{parquets[0]}: no page_1 .. page_N image columns (SlideVQA's parquet release)")
    rows = table.to_table(columns=[c for c in table.schema.names if c not in pages]).to_pylist()
    questions = read_all(dataset, rows, lambda i, row: _slidevqa_question(dataset, i, row))
    first_row: dict[str, int] = {}
    for i, q in enumerate(questions):
        if q.doc:
            first_row.setdefault(q.doc, i)
    slides = _parquet_slides(table, pages, first_row, parquets, src.cache_dir / "slidevqa")
    cache = src.cache_dir / "slidevqa"
    docs = {}
    for name, files in slides.items():
        while files and files[-1] is None:  # a deck shorter than the table's widest one
            files = files[:-1]
        if None in files or not files:  # an empty column inside the deck would shift every later slide
            gap = files.index(None) + 1 if files else 1
            docs[name] = BenchDoc(name, [], f"{INCOMPLETE}: slide {gap} of {name} is empty")
        else:
            docs[name] = _file_doc(name, [cache / f for f in files], cache, src)
    return BenchSet(dataset, docs, questions)


def _parquet_slides(table, pages: list[str], first_row: dict[str, int], parquets: list[Path],
                    folder: Path) -> dict[str, list[str | None]]:
    """{deck: [slide file name in ``folder``, or None for an empty column]}, extracting what is not there yet."""
    stamp = ";".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in parquets)
    index = folder / f"index-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.json"
    if index.is_file():
        known = json.loads(index.read_text())
        if set(first_row) <= set(known):
            return {d: known[d] for d in first_row}
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str | None]] = {}
    decks = sorted(first_row, key=first_row.get)
    for start in range(0, len(decks), 16):  # 16 decks (320 slides) in memory at a time
        chunk = decks[start:start + 16]
        batch = table.take([first_row[d] for d in chunk], columns=pages).to_pylist()
        for deck, row in zip(chunk, batch):
            out[deck] = [_write_slide(row[c], folder) for c in pages]
    tmp = index.with_name(index.name + ".tmp")
    tmp.write_text(json.dumps(out, sort_keys=True))
    tmp.replace(index)
    return out


def _write_slide(cell, folder: Path) -> str | None:
    """An image cell (a struct of bytes and path, as datasets writes images) as a file named by its content."""
    import io

    from PIL import Image, UnidentifiedImageError

    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            suffix = {"JPEG": ".jpg", "PNG": ".png"}.get(image.format or "", ".img")
    except (OSError, UnidentifiedImageError):
        suffix = ".img"  # kept: reading it later reports the deck as unreadable
    name = hashlib.sha256(data).hexdigest() + suffix
    if not (folder / name).is_file():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
    return name


LOADERS: dict[str, Callable[[Path, Sources], BenchSet]] = {
    "mmlongbench-doc": load_mmlongbench_doc, "longdocurl": load_longdocurl, "slidevqa": load_slidevqa}


def load_dataset(dataset: str, data_dir: Path, src: Sources) -> BenchSet:
    return LOADERS[dataset](dataset_root(data_dir, dataset), src)
