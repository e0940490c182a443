"""Copies of a PDF as contamination takes them, for tests and the benchmark (nothing downloaded).

Each variant has other bytes than the original (so no exact hash finds it) except ``exact``:

- ``exact``: the same bytes under another name;
- ``resaved``: every page copied into a new file by pdfium (another writer: new objects, new cross-reference);
- ``retypeset``: the text set again on A5 pages in another font (new line and page breaks, no figures), as
  when a report is exported again from its source;
- ``reordered``: the pages in a seeded shuffled order;
- ``page-dropped``: one page (seeded, never the first) left out;
- ``excerpt``: a run of half the pages, as when a report is split into parts;
- ``scanned``: every page printed and scanned: rendered at 100 dpi in grey, turned by up to 0.7 degrees, with
  scanner noise, saved as JPEG in an image-only PDF: no text layer at all.

``write_page_images`` writes a document as page images instead (the layout of SlideVQA-like sources).
"""

from __future__ import annotations

import io
import random
from pathlib import Path

VARIANTS = ("exact", "resaved", "retypeset", "reordered", "page-dropped", "excerpt", "scanned")
SCAN_DPI = 100
SCAN_MAX_DEGREES = 0.7
SCAN_NOISE_STD = 6.0  # grey levels
SCAN_JPEG_QUALITY = 70


def make_variant(data: bytes, variant: str, *, seed: int) -> bytes:
    """The ``variant`` copy of the PDF ``data``; the same seed gives the same bytes."""
    import pypdfium2 as pdfium

    if variant == "exact":
        return data
    if variant == "scanned":
        return _scan(data, seed)
    if variant == "retypeset":
        return _retypeset(data)
    src = pdfium.PdfDocument(data)
    try:
        order = list(range(len(src)))
        rng = random.Random(seed)
        if variant == "reordered":
            while order == sorted(order) and len(order) > 1:
                rng.shuffle(order)
        elif variant == "page-dropped":
            order.pop(rng.randrange(1, len(order)) if len(order) > 1 else 0)
        elif variant == "excerpt":
            half = max(1, len(order) // 2)
            start = rng.randrange(0, len(order) - half + 1)
            order = order[start:start + half]
        elif variant != "resaved":
            raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
        out = pdfium.PdfDocument.new()
        out.import_pages(src, order)
        buffer = io.BytesIO()
        out.save(buffer)
        out.close()
        return buffer.getvalue()
    finally:
        src.close()


def _retypeset(data: bytes) -> bytes:
    import pypdfium2 as pdfium
    from reportlab.lib.pagesizes import A5
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen.canvas import Canvas

    pdf = pdfium.PdfDocument(data)
    try:
        text = "\n".join(page.get_textpage().get_text_bounded() for page in pdf)
    finally:
        pdf.close()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A5, invariant=1)
    width, height = A5
    y = height - 40
    for paragraph in text.replace("\r", "").split("\n"):
        for line in simpleSplit(paragraph, "Courier", 8, width - 60) or [""]:
            if y < 40:
                canvas.showPage()
                y = height - 40
            canvas.setFont("Courier", 8)
            canvas.drawString(30, y, line)
            y -= 10
    canvas.save()
    return buffer.getvalue()


def _scan(data: bytes, seed: int) -> bytes:
    import numpy as np
    import pypdfium2 as pdfium
    from PIL import Image

    rng = np.random.default_rng(seed)
    pdf = pdfium.PdfDocument(data)
    try:
        pages = []
        for page in pdf:
            grey = page.render(scale=SCAN_DPI / 72).to_pil().convert("L")
            grey = grey.rotate(float(rng.uniform(-SCAN_MAX_DEGREES, SCAN_MAX_DEGREES)), resample=Image.BILINEAR,
                               fillcolor=255)
            noisy = np.asarray(grey, dtype=np.float32) + rng.normal(0, SCAN_NOISE_STD, (grey.height, grey.width))
            pages.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)))
    finally:
        pdf.close()
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=SCAN_DPI,
                  quality=SCAN_JPEG_QUALITY)
    return buffer.getvalue()


def write_page_images(data: bytes, folder: Path, *, dpi: float = 96, fmt: str = "jpeg") -> list[Path]:
    """The PDF's pages as ``slide-<n>.<fmt>`` files in ``folder`` (n from 1); returns their paths."""
    import pypdfium2 as pdfium

    folder.mkdir(parents=True, exist_ok=True)
    pdf = pdfium.PdfDocument(data)
    paths = []
    try:
        for n, page in enumerate(pdf, start=1):
            path = folder / f"slide-{n}.{'jpg' if fmt == 'jpeg' else fmt}"
            page.render(scale=dpi / 72).to_pil().convert("RGB").save(path, format=fmt.upper(), quality=85)
            paths.append(path)
    finally:
        pdf.close()
    return paths
