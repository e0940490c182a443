"""PDF reader and page renderer: one file -> its PageRecords, and a SkipReport for whatever cannot be used.

Every check that can be made before pdfium parses anything is made first (size, header, trailer), then the
document is opened from memory, and each page is checked (size, declared image sizes), rendered straight at
the scale that fits the pixel budget, encoded, and its text layer extracted. Bad input never raises: it becomes
a SkipReport naming what is wrong.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.ingest.config import IngestConfig
from mmprolong.records import PageRecord
from mmprolong.tokens import render_scale

HEADER_WINDOW_BYTES = 1024  # a PDF's "%PDF-" must start in the first 1024 bytes (PDF 1.7 annex H)
TRAILER_WINDOW_BYTES = 1024  # and its last "%%EOF" must end in the last 1024: otherwise the file is cut short
PNG_COMPRESS_LEVEL = 1  # fast, fixed: the same pixels give the same bytes; level 6 is 1.5x slower for ~10% more
DOC_ID_HEX = 16


@dataclass(frozen=True, slots=True)
class SkipReport:
    """A file, or one page of it, left out of the store: a line of ``errors.jsonl``."""

    path: str  # relative to the ingested folder, posix
    reason: str
    page: int | None = None  # 0-based page index; None when the whole file is skipped

    def to_json(self) -> dict:
        data = {"path": self.path, "reason": self.reason}
        if self.page is not None:
            data["page"] = self.page
        return data


def doc_id_of(data: bytes) -> str:
    """First 16 hex digits of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:DOC_ID_HEX]


def process_file(pdf_dir: str, rel: str, config: IngestConfig) -> Iterator[PageRecord | SkipReport]:
    """All pages of ``pdf_dir/rel`` as PageRecords, in order, with a SkipReport for each file or page left out."""
    data = read_pdf_bytes(Path(pdf_dir) / rel, config)
    if isinstance(data, str):
        yield SkipReport(rel, data)
        return
    yield from render_document(data, rel, config)


def read_pdf_bytes(path: Path, config: IngestConfig) -> bytes | str:
    """The file's bytes, or the reason it is not worth giving to pdfium."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file (0 bytes)"
        if size > config.max_file_bytes:
            return f"file is {size} bytes, over max_file_bytes={config.max_file_bytes}"
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    if b"%PDF-" not in data[:HEADER_WINDOW_BYTES]:
        return f"not a PDF: no %PDF- header in the first {HEADER_WINDOW_BYTES} bytes"
    if b"%%EOF" not in data[-TRAILER_WINDOW_BYTES:]:
        return f"truncated: no %%EOF marker in the last {TRAILER_WINDOW_BYTES} bytes (file cut short?)"
    return data


def render_document(data: bytes, rel: str, config: IngestConfig) -> Iterator[PageRecord | SkipReport]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        yield SkipReport(rel, _open_failure(str(exc)))
        return
    try:
        page_count = len(pdf)
        if page_count == 0:
            yield SkipReport(rel, "the PDF has no pages")
            return
        if page_count > config.max_pages:
            yield SkipReport(rel, f"{page_count} pages, over max_pages={config.max_pages}")
            return
        doc_id = doc_id_of(data)
        for index in range(page_count):
            try:
                yield render_page(pdf, index, doc_id=doc_id, rel=rel, page_count=page_count, config=config)
            except (DataError, pdfium.PdfiumError, ValueError, MemoryError, OSError) as exc:
                yield SkipReport(rel, _page_failure(exc), page=index)
    finally:
        pdf.close()


def render_page(pdf, index: int, *, doc_id: str, rel: str, page_count: int, config: IngestConfig) -> PageRecord:
    """One page as a PageRecord; DataError when the page breaks a limit."""
    page = pdf[index]
    try:
        width_pt, height_pt = page.get_size()
        if not (0 < width_pt <= config.max_page_side_pt and 0 < height_pt <= config.max_page_side_pt):
            raise DataError(f"page size {width_pt:g}x{height_pt:g} pt outside (0, max_page_side_pt="
                            f"{config.max_page_side_pt:g}]")
        check_image_sizes(page, config.max_image_pixels)
        scale = fit_scale(width_pt, height_pt, config)
        bitmap = page.render(scale=scale, rev_byteorder=True)
        try:
            image = bitmap.to_pil()
            width, height = image.size
            tokens = config.model_family.image_tokens(height, width, min_pixels=config.min_pixels,
                                                      max_pixels=config.max_pixels)
            encoded = encode_image(image, config)
        finally:
            bitmap.close()
        textpage = page.get_textpage()
        try:
            text = normalise_newlines(textpage.get_text_bounded())
        finally:
            textpage.close()
    finally:
        page.close()
    return PageRecord(doc_id=doc_id, source=rel, page_index=index, page_count=page_count, width=width,
                      height=height, vision_tokens=tokens, text=text, image=encoded, image_format=config.image_format)


def fit_scale(width_pt: float, height_pt: float, config: IngestConfig) -> float:
    """``render_scale``, nudged down in the rare case pdfium's rounding up of each side overshoots max_pixels."""
    scale = render_scale(width_pt, height_pt, max_dpi=config.max_dpi, max_pixels=config.max_pixels)
    while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > config.max_pixels:
        scale *= 0.99
    return scale


def check_image_sizes(page, max_image_pixels: int) -> None:
    """DataError if the page (or a form XObject in it) draws an image declared over ``max_image_pixels``.

    pdfium decodes images downsampled to the render size, but the declared size is what a hostile file
    inflates, so it is checked before rendering. Walks pdfium's object list with raw calls: ~1 us per object.
    """
    from pypdfium2 import raw

    width, height = ctypes.c_uint(), ctypes.c_uint()

    def walk(count, get, parent, depth):
        for i in range(count(parent)):
            obj = get(parent, i)
            kind = raw.FPDFPageObj_GetType(obj)
            if kind == raw.FPDF_PAGEOBJ_IMAGE:
                if raw.FPDFImageObj_GetImagePixelSize(obj, width, height):
                    if width.value * height.value > max_image_pixels:
                        raise DataError(f"embedded image of {width.value}x{height.value} px "
                                        f"({width.value * height.value} px) over max_image_pixels={max_image_pixels}")
            elif kind == raw.FPDF_PAGEOBJ_FORM and depth < 15:
                walk(raw.FPDFFormObj_CountObjects, raw.FPDFFormObj_GetObject, obj, depth + 1)

    walk(raw.FPDFPage_CountObjects, raw.FPDFPage_GetObject, page, 0)


def encode_image(image, config: IngestConfig) -> bytes:
    """PNG (fixed fast compress level) or JPEG bytes; the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    if config.image_format == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(buffer, format="JPEG", quality=config.jpeg_quality)
    return buffer.getvalue()


def normalise_newlines(text: str) -> str:
    """pdfium ends lines with CRLF; the store uses "\\n" only."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _open_failure(message: str) -> str:
    if "password" in message.lower():
        return "encrypted: the PDF needs a password"
    return f"pdfium cannot open it (damaged or not a PDF): {message}"


def _page_failure(exc: BaseException) -> str:
    if isinstance(exc, DataError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory rendering the page (see max_worker_memory_bytes)"
    return f"render or text extraction failed: {type(exc).__name__}: {exc}"
