"""Ingest throughput vs the bare minimum, on the same files in one run.

    python benchmarks/ingest.py [PDF_DIR] [--workers N] [--out JSON]

The bare loop is what any page store must do per page: open the PDF, render at the same scale, extract the
text, encode the image the same way (one process, no store). Against it: ``ingest`` with workers=1 (our
overhead: hashing, limit checks, Parquet, processes, resumability) and workers=N (scaling). Without PDF_DIR
the embedded corpus is generated into a temp folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from common import report as write_report

from mmprolong.corpus import make_corpus
from mmprolong.ingest import IngestConfig, discover_pdfs, ingest
from mmprolong.ingest.pdf import encode_image, fit_scale, normalise_newlines


def bare_loop(pdf_dir: Path, files: list[str], config: IngestConfig) -> int:
    """Open, render at the same scale, extract text, encode: the minimum. Returns pages done."""
    import pypdfium2 as pdfium

    pages = 0
    for rel in files:
        pdf = pdfium.PdfDocument(str(pdf_dir / rel))
        for page in pdf:
            bitmap = page.render(scale=fit_scale(*page.get_size(), config), rev_byteorder=True)
            encode_image(bitmap.to_pil(), config)
            textpage = page.get_textpage()
            normalise_newlines(textpage.get_text_bounded())
            pages += 1
        pdf.close()
    return pages


def timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    pages = fn()
    return time.perf_counter() - start, pages


def generate_corpus(folder: Path, docs: int, pages: int) -> None:
    make_corpus(folder, docs=docs, seed=0, min_pages=pages, max_pages=pages, show_progress=False)


def run(pdf_dir: Path, workers: int, repeats: int, config: IngestConfig) -> dict:
    files = [rel for rel, _ in discover_pdfs(pdf_dir)]
    bare_loop(pdf_dir, files[:1], config)  # warm caches and imports
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        runs = iter(range(10**6))

        def ours(n: int, folder: Path = pdf_dir):
            out = Path(scratch) / f"run{next(runs)}"
            return lambda: ingest(folder, out, IngestConfig(**{**config.to_dict(), "workers": n}),
                                  show_progress=False).pages

        variants = (("bare pypdfium2 loop", 1, lambda: bare_loop(pdf_dir, files, config)),
                    ("ingest workers=1", 1, None), (f"ingest workers={workers}", workers, None))
        for name, cores, fn in variants:
            seconds, pages = min(timed(fn or ours(cores)) for _ in range(repeats))  # best of `repeats`
            results[name] = {"seconds": round(seconds, 3), "pages": pages, "cores": cores,
                             "pages_per_second": round(pages / seconds, 2),
                             "pages_per_second_per_core": round(pages / seconds / cores, 2)}
        # Fixed cost of a run (worker start, imports, manifest, summary): ingest of a one-page document.
        one_page = Path(scratch) / "one-page"
        one_page.mkdir()
        (one_page / "a.pdf").write_bytes(_first_page(pdf_dir / files[0]))
        startup_s = min(timed(ours(1, one_page))[0] for _ in range(repeats))
    bare_s = results["bare pypdfium2 loop"]["seconds"]
    for name, row in results.items():
        fixed_s = 0.0 if name.startswith("bare") else startup_s
        row["overhead_pct"] = round(100 * (row["seconds"] * row["cores"] / bare_s - 1), 1)
        row["steady_overhead_pct"] = round(100 * ((row["seconds"] - fixed_s) * row["cores"] / bare_s - 1), 1)
    return {"pdf_dir": str(pdf_dir), "files": len(files), "workers": workers, "repeats": repeats,
            "startup_seconds": round(startup_s, 3), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "config": config.to_dict(), "results": results}


def _first_page(path: Path) -> bytes:
    import io

    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(str(path))
    single = pdfium.PdfDocument.new()
    single.import_pages(source, [0])
    buffer = io.BytesIO()
    single.save(buffer)
    return buffer.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf_dir", type=Path, nargs="?", help="folder of PDFs (default: generate a corpus)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for the parallel run")
    parser.add_argument("--docs", type=int, default=6, help="documents to generate without PDF_DIR")
    parser.add_argument("--pages", type=int, default=40, help="pages per generated document")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant; the best is kept")
    parser.add_argument("--image-format", default="png", choices=["png", "jpeg"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ingest.json"), help="JSON results")
    args = parser.parse_args(argv)
    config = IngestConfig(image_format=args.image_format, docs_per_shard=1)
    with tempfile.TemporaryDirectory() as corpus_dir:
        pdf_dir = args.pdf_dir
        if pdf_dir is None:
            pdf_dir = Path(corpus_dir)
            generate_corpus(pdf_dir, args.docs, args.pages)
        report = run(pdf_dir, args.workers, args.repeats, config)
    rows = [{"variant": name, **{k: row[k] for k in ("pages", "seconds", "pages_per_second",
                                                     "pages_per_second_per_core", "overhead_pct",
                                                     "steady_overhead_pct")}}
            for name, row in report.pop("results").items()]
    write_report(rows, args.out, **report)
    print(f"overhead: per core, vs the bare loop; steady: less the fixed start-up of a run "
          f"({report['startup_seconds']:.2f} s, measured on a one-page PDF)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
