"""Benchmark PDFs as eval pages: sizes read from the PDF's page geometry without rendering, pixels rendered
only for the pages items use, into a cache shared by every run.

Reading a document costs one pass over its bytes (the SHA-256) and pdfium's page-size table; no page is
drawn. A page's image size is known exactly before it is rendered, because ingest's renderer draws at
``fit_scale`` and pdfium makes a bitmap of ``ceil(side * scale)`` pixels per side; so items can be built, and
their token counts fixed, first, and ``render`` then draws just the pages those items hold.

Cache layout (``folder`` is EvalConfig.render_cache_dir)::

    folder/pdf/<sha256 of the PDF>/<dpi>dpi-<min_pixels>-<max_pixels>/<page index:05d>.png

The key is the file's content and the render settings, never its path or the run: a renamed copy, another
OUT folder or another question set reuses the pages; a changed pixel budget renders anew.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mmprolong.errors import DataError
from mmprolong.eval.items import ItemImage
from mmprolong.models.base import ModelFamily


@dataclass(frozen=True)
class _Page:
    pdf: Path
    index: int  # 0-based
    size: tuple[int, int]  # (width, height) px the renderer will give
    path: Path  # where the pixels go in the cache


class PdfPages:
    """Page images of PDFs at one render setting, rendered on demand into ``folder``."""

    def __init__(self, folder: str | Path, *, family: ModelFamily, max_dpi: float, min_pixels: int, max_pixels: int):
        from mmprolong.ingest.config import IngestConfig

        self.folder = Path(folder)
        self.family = family
        self.config = IngestConfig(family=family.name, min_pixels=min_pixels, max_pixels=max_pixels, max_dpi=max_dpi)
        self.settings = f"{max_dpi:g}dpi-{min_pixels}-{max_pixels}"
        self._pending: dict[str, _Page] = {}  # cache path -> where its pixels come from

    def document(self, pdf: Path) -> list[ItemImage]:
        """Every page of ``pdf`` as an ItemImage whose file lies in the cache (drawn by ``render``); DataError
        when the PDF cannot be used."""
        import hashlib

        import pypdfium2 as pdfium
        from pypdfium2 import raw

        from mmprolong.ingest.pdf import DOC_ID_HEX, fit_scale, read_pdf_bytes

        data = read_pdf_bytes(pdf, self.config)
        if isinstance(data, str):
            raise DataError(f"PDF {pdf}: {data}")
        digest = hashlib.sha256(data).hexdigest()
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise DataError(f"PDF {pdf}: pdfium cannot open it: {exc}") from None
        size = raw.FS_SIZEF()
        pages = []
        try:
            if not 0 < len(document) <= self.config.max_pages:
                raise DataError(f"PDF {pdf}: {len(document)} pages (1 to max_pages={self.config.max_pages})")
            folder = self.folder / "pdf" / digest / self.settings
            for index in range(len(document)):
                # The same width/height pdfium's page objects report, read without loading the page.
                if not raw.FPDF_GetPageSizeByIndexF(document, index, size):
                    raise DataError(f"PDF {pdf}: page {index + 1} has no size")
                width_pt, height_pt = size.width, size.height
                if not (0 < width_pt <= self.config.max_page_side_pt and 0 < height_pt <= self.config.max_page_side_pt):
                    raise DataError(f"PDF {pdf}: page {index + 1} is {width_pt:g}x{height_pt:g} pt")
                scale = fit_scale(width_pt, height_pt, self.config)
                width, height = math.ceil(width_pt * scale), math.ceil(height_pt * scale)
                path = folder / f"{index:05d}.png"
                pages.append(ItemImage(
                    kind="file", path=str(path.resolve()), width=width, height=height,
                    vision_tokens=self.family.image_tokens(height, width, min_pixels=self.config.min_pixels,
                                                           max_pixels=self.config.max_pixels),
                    content_key=f"pdf:{digest[:DOC_ID_HEX]}/{index}@{self.config.max_dpi:g}"))
                self._pending[pages[-1].path] = _Page(pdf, index, (width, height), path.resolve())
        finally:
            document.close()
        return pages

    def render(self, images: Iterable[ItemImage]) -> dict[str, str]:
        """Draw every image of ``images`` that is a page of ``document`` and not yet in the cache. Returns
        {path: reason} for the pages that could not be drawn (the items holding them cannot be asked)."""
        wanted: dict[Path, list[_Page]] = {}
        for image in images:
            page = self._pending.get(image.path)
            if page is not None and not Path(image.path).is_file():
                wanted.setdefault(page.pdf, []).append(page)
        failed: dict[str, str] = {}
        for pdf, pages in wanted.items():
            unique = {p.index: p for p in pages}
            failed |= self._render_document(pdf, [unique[i] for i in sorted(unique)])
        return failed

    def _render_document(self, pdf: Path, pages: list[_Page]) -> dict[str, str]:
        import pypdfium2 as pdfium

        from mmprolong.ingest.pdf import read_pdf_bytes, render_page

        data = read_pdf_bytes(pdf, self.config)
        if isinstance(data, str):  # changed or removed since it was read
            return {str(p.path): f"PDF {pdf}: {data}" for p in pages}
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            return {str(p.path): f"PDF {pdf}: pdfium cannot open it: {exc}" for p in pages}
        failed = {}
        try:
            for page in pages:
                try:
                    record = render_page(document, page.index, doc_id="", rel=pdf.name, page_count=len(document),
                                         config=self.config)
                except (DataError, pdfium.PdfiumError, ValueError, MemoryError, OSError) as exc:
                    failed[str(page.path)] = f"PDF {pdf} page {page.index + 1}: {type(exc).__name__}: {exc}"
                    continue
                if (record.width, record.height) != page.size:  # geometry and renderer disagree: never guess
                    failed[str(page.path)] = (f"PDF {pdf} page {page.index + 1} rendered at {record.width}x"
                                              f"{record.height} px, its geometry gave {page.size[0]}x{page.size[1]}")
                    continue
                try:
                    page.path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = page.path.with_name(f".{page.path.name}.{os.getpid()}.tmp")
                    tmp.write_bytes(record.image)
                    os.replace(tmp, page.path)
                except OSError as exc:
                    failed[str(page.path)] = (f"cannot write the render cache {self.folder} ({exc.strerror or exc}): "
                                              "set render_cache_dir to a writable folder")
        finally:
            document.close()
        return failed
