"""Real test PDFs for the ingest tests: reportlab documents with a known string on every page, and
hand-written hostile files. A uniquely named module (not conftest) so worker processes can import it."""

from __future__ import annotations

import ctypes
import zlib
from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from mmprolong.ingest import process_file

SMALL_BUDGET = {"max_pixels": 256 * 28 * 28, "min_pixels": 56 * 56}  # fast renders for tests


def page_marker(name: str, index: int) -> str:
    return f"MARK-{name}-p{index:03d}"


def make_pdf(path: Path, pages: int, *, name: str | None = None, pagesize=letter, encrypt: str | None = None,
             lines: int = 12) -> list[str]:
    """Write a ``pages``-page PDF; returns the marker string printed on each page."""
    name = name or path.stem
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=pagesize, encrypt=encrypt, invariant=1)
    markers = []
    for index in range(pages):
        markers.append(page_marker(name, index))
        pdf.drawString(72, pagesize[1] - 72, markers[-1])
        for line in range(lines):
            pdf.drawString(72, pagesize[1] - 100 - 14 * line, f"line {line} of page {index}: the quick brown fox")
        pdf.showPage()
    pdf.save()
    return markers


def make_corpus(folder: Path, docs: int, pages: int) -> dict[str, list[str]]:
    """``docs`` PDFs of ``pages`` pages each; returns {relative path: page markers}."""
    return {f"doc{i:03d}.pdf": make_pdf(folder / f"doc{i:03d}.pdf", pages) for i in range(docs)}


def raw_pdf(objects: list[bytes]) -> bytes:
    """A well-formed PDF (header, xref, trailer) of the given object bodies; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_image_bomb(path: Path, side_px: int = 40000) -> None:
    """A one-page PDF drawing an image XObject that declares ``side_px`` x ``side_px`` gray pixels."""
    content = b"q 500 0 0 500 50 50 cm /Im0 Do Q"
    data = zlib.compress(b"\x80" * 4096)
    path.write_bytes(raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (side_px, side_px, len(data)) + data + b"\nendstream",
    ]))


def segfaulting_processor(pdf_dir: str, rel: str, config):
    """process_file, except that a file with "crash" in its name segfaults the process, as a pdfium bug would."""
    if "crash" in rel:
        ctypes.string_at(0)
    yield from process_file(pdf_dir, rel, config)
