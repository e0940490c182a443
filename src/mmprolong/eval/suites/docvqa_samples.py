"""A small generated docvqa set in the three released layouts, for tests and smoke runs (nothing downloaded).

``write_docvqa_samples(out_dir)`` writes the repositories' layouts as a clone gives them::

    MMLongBench-Doc/data/samples.json + data/documents/<name>.pdf   (PDFs drawn with reportlab, invariant bytes)
    LongDocURL/data/LongDocURL.jsonl  + data/pdf_pngs/4000-4999/<dddd>/<doc_no>_<i>.png
    SlideVQA/annotations/qa/test.jsonl + images/test/<deck>/<deck>-<n>-1024.jpg   (deck names start with a digit)

Each document's pages state facts ("The budget of Northwind is 1840."); the questions ask for them in each
benchmark's answer formats (integer, float, string, list, and unanswerable for MMLongBench-Doc; a table-row list
of objects for LongDocURL), with 1-based evidence pages as the benchmarks number them, and LongDocURL's page
window around the evidence. Same seed, same files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ENTITIES = ("Northwind", "Contoso", "Fabrikam", "Litware", "Tailspin", "Wingtip", "Adatum", "Proseware",
            "Lucerne", "Fourth Coffee", "Woodgrove", "Alpine Ski")  # fmt: skip
NUMERIC = ("budget", "staff count", "site count", "fleet size")
DECIMAL = ("growth rate", "margin", "ratio")
PLACES = ("Lisbon", "Oslo", "Quito", "Hanoi", "Accra", "Perth", "Lima", "Riga")
FILLER = "This section reviews operations and plans for the coming year."


def _doc_facts(rng: random.Random, pages: int) -> list[list[tuple[str, str, str, object]]]:
    """Per page: (entity, attribute, sentence, value) facts; every page has two."""
    out = []
    for _ in range(pages):
        facts = []
        for kind in ("int", rng.choice(("float", "place"))):
            entity = rng.choice(ENTITIES)
            if kind == "int":
                attr, value = rng.choice(NUMERIC), rng.randrange(100, 10_000)
                sentence = f"The {attr} of {entity} is {value}."
            elif kind == "float":
                attr, value = rng.choice(DECIMAL), round(rng.uniform(1, 99), 1)
                sentence = f"The {attr} of {entity} is {value}."
            else:
                attr, value = "headquarters", rng.choice(PLACES)
                sentence = f"The headquarters of {entity} is in {value}."
            facts.append((entity, attr, sentence, value))
        out.append(facts)
    return out


def _questions(rng: random.Random, facts, *, unanswerable: bool) -> list[dict]:
    """Questions over a document: (question, answer value, fmt, 1-based evidence pages)."""
    flat = [(p, f) for p, page in enumerate(facts) for f in page]
    out = []
    for wanted in ("int", "float", "str"):
        cands = [(p, f) for p, f in flat if (wanted == "int" and isinstance(f[3], int))
                 or (wanted == "float" and isinstance(f[3], float)) or (wanted == "str" and isinstance(f[3], str))]
        if not cands:
            continue
        p, (entity, attr, _, value) = rng.choice(cands)
        if wanted == "str":
            q = f"On page {p + 1}, in which city is the headquarters of {entity}?"
        else:
            q = f"On page {p + 1}, what is the {attr} of {entity}?"
        out.append({"question": q, "answer": value, "fmt": wanted, "pages": [p + 1]})
    first_int = {}
    for p, f in flat:
        if isinstance(f[3], int):
            first_int.setdefault(p, f)
    if len(first_int) >= 2:
        p1, p2 = sorted(rng.sample(sorted(first_int), 2))
        f1, f2 = first_int[p1], first_int[p2]
        out.append({"question": f"List the {f1[1]} of {f1[0]} on page {p1 + 1} and the {f2[1]} of {f2[0]} on "
                                f"page {p2 + 1}.", "answer": [str(f1[3]), str(f2[3])], "fmt": "list",
                    "pages": [p1 + 1, p2 + 1]})
    if unanswerable:
        out.append({"question": "What is the budget of Initech according to this document?",
                    "answer": "Not answerable", "fmt": "none", "pages": []})
    return out


def _row_question(facts) -> dict:
    """A LongDocURL-style table-row answer: a list of one object, the first number fact as a row."""
    p, (entity, attr, _, value) = next((p, f) for p, page in enumerate(facts) for f in page if isinstance(f[3], int))
    return {"question": f"Give the row (entity and {attr}) for {entity} on page {p + 1}.",
            "answer": [{"Entity": entity, attr.capitalize(): value}], "fmt": "list", "pages": [p + 1]}


def _window(pages: list[int], total: int) -> list[int]:
    """LongDocURL's start_end_idx: the 1-based pages the question was written on, one page around the evidence."""
    return [max(1, min(pages) - 1), min(total, max(pages) + 1)] if pages else [1, total]


def _page_lines(title: str, page: int, facts) -> list[str]:
    return [f"{title} - page {page + 1}"] + [f[2] for f in facts] + [FILLER]


def _draw_page(lines: list[str], size: tuple[int, int]):
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    width = size[0]
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font_size = max(6, width // 20)
    font = ImageFont.load_default(size=font_size)
    chars = max(10, int((width - 8) / max(1.0, font.getlength("n"))))
    y = 4
    for line in lines:
        for piece in textwrap.wrap(line, width=chars):
            draw.text((4, y), piece, fill="black", font=font)
            y += int(font_size * 1.3)
    return image


def _write_pdf(path: Path, title: str, facts, size_pt: tuple[int, int]) -> None:
    import textwrap

    from reportlab.pdfgen import canvas

    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=size_pt, invariant=1)
    width, top = size_pt
    for page, page_facts in enumerate(facts):
        pdf.setFont("Helvetica", 7)
        y = top - 12
        for line in _page_lines(title, page, page_facts):
            for piece in textwrap.wrap(line, width=int(width / 3.6)):
                pdf.drawString(6, y, piece)
                y -= 9
        pdf.showPage()
    pdf.save()


MMLB_FORMAT = {"int": "Int", "float": "Float", "str": "Str", "list": "List", "none": "None"}
LDU_FORMAT = {"int": "Integer", "float": "Float", "str": "String", "list": "List"}


def write_docvqa_samples(out_dir: str | Path, *, seed: int = 0, docs: int = 3, pages: int = 6,
                         page_size: tuple[int, int] = (168, 224)) -> dict[str, Path]:
    """Write the three sample sets under ``out_dir``; returns {dataset: folder}. ``page_size`` is in pixels for
    image pages and in points for PDF pages (72 dpi renders them at the same size)."""
    out = Path(out_dir)
    rng = random.Random(seed)
    made = {}

    root = out / "MMLongBench-Doc"
    samples = []
    for d in range(docs):
        name = f"report-{seed}-{d}.pdf"
        facts = _doc_facts(rng, pages)
        _write_pdf(root / "data" / "documents" / name, f"Annual report {d}", facts, page_size)
        for q in _questions(rng, facts, unanswerable=True):
            answer = (str(q["answer"]) if q["fmt"] != "list" else repr(q["answer"]))
            samples.append({"doc_id": name, "doc_type": "Research report / Introduction", "question": q["question"],
                            "answer": answer, "evidence_pages": str(q["pages"]),
                            "evidence_sources": "['Pure-text (Plain-text)']" if q["pages"] else "[]",
                            "answer_format": MMLB_FORMAT[q["fmt"]]})
    (root / "data" / "samples.json").write_text(json.dumps(samples, indent=4) + "\n")
    made["mmlongbench-doc"] = root

    root = out / "LongDocURL"
    rows = []
    for d in range(docs):
        doc_no = f"40{seed % 10}{d:04d}"
        folder = root / "data" / "pdf_pngs" / "4000-4999" / doc_no[:4]
        facts = _doc_facts(rng, pages)
        folder.mkdir(parents=True, exist_ok=True)
        for p, page_facts in enumerate(facts):
            _draw_page(_page_lines(f"Survey {d}", p, page_facts), page_size).save(
                folder / f"{doc_no}_{p}.png", format="PNG")
        for n, q in enumerate(_questions(rng, facts, unanswerable=False) + [_row_question(facts)]):
            first, last = _window(q["pages"], pages)
            rows.append({"question_id": f"gen_{doc_no}_{first}_{last}_{n}", "doc_no": doc_no, "total_pages": pages,
                         "start_end_idx": [first, last], "question_type": "extract", "question": q["question"],
                         "answer": q["answer"], "detailed_evidences": "", "evidence_pages": q["pages"],
                         "evidence_sources": ["Text"], "answer_format": LDU_FORMAT[q["fmt"]],
                         "task_tag": "Understanding",
                         "images": [f"/data/pdf_pngs/4000-4999/{doc_no[:4]}/{doc_no}_{p}.png"
                                    for p in range(first - 1, last)],
                         "pdf_path": f"/data/ccpdf_zip/4000-4999/{doc_no}.pdf"})
    (root / "data" / "LongDocURL.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    made["longdocurl"] = root

    root = out / "SlideVQA"
    rows = []
    for d in range(docs):
        deck = f"{d + 1}-annual-review-{seed}"  # a deck name with numbers, as many real ones have
        folder = root / "images" / "test" / deck
        folder.mkdir(parents=True, exist_ok=True)
        facts = _doc_facts(rng, pages)
        urls = []
        for p, page_facts in enumerate(facts):
            name = f"{deck}-{p + 1}-1024.jpg"
            _draw_page(_page_lines(f"Deck {d}", p, page_facts), page_size).save(folder / name, format="JPEG",
                                                                                 quality=90)
            urls.append(f"https://image.example.invalid/{deck}/95/{name}")
        for n, q in enumerate(q for q in _questions(rng, facts, unanswerable=False) if q["fmt"] != "list"):
            rows.append({"deck_name": deck, "deck_url": f"https://example.invalid/{deck}", "image_urls": urls,
                         "qa_id": d * 100 + n, "question": q["question"], "answer": str(q["answer"]),
                         "arithmetic_expression": "None", "evidence_pages": q["pages"],
                         "reasoning_type": "single-hop", "answer_type": "Non-span"})
    (root / "annotations" / "qa").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "qa" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    made["slidevqa"] = root
    return made
