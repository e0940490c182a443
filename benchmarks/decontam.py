"""Decontamination: precision and recall of the default thresholds on generated copies, and speed on a generated
store of thousands of documents.

    python benchmarks/decontam.py accuracy [--eval-docs 30] [--negatives 150] [--workers 2]
    python benchmarks/decontam.py speed [--docs 5000] [--base-docs 60] [--eval-docs 100] [--workers 2]

accuracy: evaluation documents from the embedded corpus; the training store holds one copy of each of every
kind in ``mmprolong.decontam.variants`` (exact, re-saved, reordered, page dropped, half excerpt, scanned without
text), the original PDFs of further documents given to decontaminate as page images only (as SlideVQA ships
them), and near misses: other documents of the same three templates (report, manual, slides) with other content, at
10-30 pages and at 3-6 pages (where a template's cover and contents pages weigh most).
A training document counts as caught when it is matched to the evaluation document it copies; any match of a
near miss is a false positive. Also prints the margins each threshold has (the page-image distances of scanned
pages against their originals and against the nearest page of another document).

speed: a store of 5,000 documents made cheaply: 60 corpus documents of 10-40 pages ingested at 72 dpi within
200,704 pixels, then cut into 5,000 excerpts of 2-8 consecutive pages (real renders and text layers, new
doc_ids), against evaluation documents with a text layer (text path) and against page images too (every
training page image decoded and hashed); plus the per-page costs that set the extrapolation to a million
documents: image decode + hash at the paper's pixel budget, and the Hamming scan and LSH query against 50,000
evaluation pages.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import report

from mmprolong import api
from mmprolong.corpus import generate_document
from mmprolong.decontam import DecontamConfig
from mmprolong.decontam.index import EvalIndex
from mmprolong.decontam.variants import VARIANTS, make_variant, write_page_images
from mmprolong.ingest import IngestConfig

SMALL_PAGES = {"max_pixels": 200_704, "max_dpi": 72.0}


def _write_doc(args: tuple) -> None:
    folder, seed, index, min_pages, max_pages = args
    data, _ = generate_document(index, seed=seed, min_pages=min_pages, max_pages=max_pages)
    path = Path(folder) / f"doc-{seed}-{index:05d}.pdf"
    path.with_suffix(".tmp").write_bytes(data)
    path.with_suffix(".tmp").replace(path)


def make_docs(folder: Path, *, seed: int, docs: int, min_pages: int, max_pages: int, workers: int) -> list[Path]:
    """``docs`` corpus PDFs (no ground truth: not needed here), made on ``workers`` processes; files already
    there (a rerun with --keep) are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(str(folder), seed, i, min_pages, max_pages) for i in range(docs)
            if not (folder / f"doc-{seed}-{i:05d}.pdf").is_file()]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_doc, todo, chunksize=8))
    return [folder / f"doc-{seed}-{i:05d}.pdf" for i in range(docs)]


# --- accuracy ----------------------------------------------------------------------------------------------


def accuracy(root: Path, *, eval_docs: int, image_docs: int, negatives: int, short: int, workers: int,
             out: Path) -> None:
    originals = make_docs(root / "eval-pdfs", seed=101, docs=eval_docs, min_pages=10, max_pages=30, workers=workers)
    as_images = make_docs(root / "image-originals", seed=102, docs=image_docs, min_pages=10, max_pages=30,
                          workers=workers)
    near = make_docs(root / "train", seed=103, docs=negatives, min_pages=10, max_pages=30, workers=workers)
    brief = make_docs(root / "train", seed=104, docs=short, min_pages=3, max_pages=6, workers=workers)
    truth = {}  # training file name -> (category, evaluation document name)
    for i, pdf in enumerate(originals):
        for variant in VARIANTS:  # pdfium's and PIL's PDFs carry dates: a rerun keeps the files it finds
            name = f"{variant}-{pdf.name}"
            if not (root / "train" / name).is_file():
                (root / "train" / name).write_bytes(make_variant(pdf.read_bytes(), variant, seed=i))
            truth[name] = (variant, pdf.name)
    for pdf in as_images:
        shutil.copy(pdf, root / "train" / pdf.name)
        if not (root / "eval-images" / pdf.stem).is_dir():
            write_page_images(pdf.read_bytes(), root / "eval-images" / pdf.stem)
        truth[pdf.name] = ("eval as page images", pdf.stem)
    for pdf in near:
        truth[pdf.name] = ("same-template near miss", None)
    for pdf in brief:
        truth[pdf.name] = ("short near miss (3-6 pages)", None)
    api.ingest(root / "train", root / "store", IngestConfig(**SMALL_PAGES, workers=workers),
               show_progress=False)
    config = DecontamConfig(workers=workers)
    start = time.perf_counter()
    summary = api.decontaminate(root / "store", [root / "eval-pdfs", root / "eval-images"], root / "report", config,
                                show_progress=False)
    seconds = time.perf_counter() - start
    result = json.loads(Path(summary["report"]).read_text())
    rows = score(result, truth)
    margins = image_margins(root, result, truth, config) | {"geometry": geometric_margins(originals[:10], config)}
    report(rows, out, seconds=round(seconds, 1), config=config.to_dict(), margins=margins,
           text_margin=text_margin(result, truth), eval_documents=eval_docs + image_docs, store_documents=len(truth))
    print(json.dumps({"margins": margins, "text": text_margin(result, truth)}, indent=1))


def score(result: dict, truth: dict) -> list[dict]:
    """Per category: documents, caught (matched to the right evaluation document), wrongly matched; then totals."""
    matched = {}
    for m in result["matches"]:
        matched.setdefault(m["source"], set()).add(Path(m["eval_name"]).stem)
    rows = []
    categories = list(VARIANTS) + ["eval as page images", "same-template near miss", "short near miss (3-6 pages)"]
    for category in categories:
        names = [n for n, (c, _) in truth.items() if c == category]
        right = sum(Path(truth[n][1]).stem in matched.get(n, ()) for n in names if truth[n][1])
        wrong = sum(bool(matched.get(n, set()) - {Path(truth[n][1]).stem if truth[n][1] else None}) for n in names)
        kinds = sorted({m["kind"] for m in result["matches"] if m["source"] in names})
        rows.append({"category": category, "documents": len(names), "caught": right if truth[names[0]][1] else "-",
                     "recall": f"{right / len(names):.3f}" if truth[names[0]][1] else "-", "false matches": wrong,
                     "kinds": ", ".join(kinds) or "-"})
    positives = [n for n, (c, e) in truth.items() if e]
    tp = sum(Path(truth[n][1]).stem in matched.get(n, ()) for n in positives)
    flagged = sum(len(v) for v in matched.values())
    rows.append({"category": "all", "documents": len(truth), "caught": tp, "recall": f"{tp / len(positives):.3f}",
                 "false matches": flagged - tp, "kinds": f"precision {tp / max(flagged, 1):.3f}"})
    return rows


def text_margin(result: dict, truth: dict) -> dict:
    """The lowest text share of a caught copy with text, and the highest of a near miss (near misses below half
    the threshold are not reported: then the bound is that half)."""
    copies = [m["text"] for m in result["matches"] if m["text"] is not None and truth[m["source"]][1]]
    near = [m["text"] for m in result["near_misses"] + result["matches"]
            if m["text"] is not None and not truth[m["source"]][1]]
    return {"copies_min": min(copies, default=None), "near_misses_max": max(near, default=None),
            "threshold": result["config"]["text_threshold"]}


def image_margins(root: Path, result: dict, truth: dict, config: DecontamConfig) -> dict:
    """Page-image distances (bits of the hash): each scanned page against its original, and each evaluation page
    against the nearest page of a near-miss document."""
    from mmprolong.decontam.fingerprints import hamming, image_hash, open_image
    from mmprolong.ingest.store import read_store

    index = EvalIndex.load(root / "report" / "eval_index.pkl")
    table = read_store(root / "store", columns=["source", "page_index", "image"]).to_pylist()
    store = {}
    for row in table:
        if truth[row["source"]][0] in ("scanned", "same-template near miss", "short near miss (3-6 pages)"):
            store[(row["source"], row["page_index"])] = image_hash(open_image(row["image"], config.hash_size),
                                                                   config.hash_size)
    by_name = {info.name: d for d, info in enumerate(index.docs)}
    owner = {tuple(o): i for i, o in enumerate(index.image_owner.tolist())}
    scan = []
    for (source, page), h in store.items():
        if truth[source][0] == "scanned" and h is not None:
            row = owner.get((by_name[truth[source][1]], page))
            if row is not None:
                scan.append(int(hamming(h[None], index.image_hashes[row][None])[0, 0]))
    near_rows = np.stack([h for (s, _), h in store.items() if truth[s][0] != "scanned" and h is not None])
    nearest = np.concatenate([hamming(index.image_hashes[i:i + 256], near_rows).min(axis=1)
                              for i in range(0, len(index.image_hashes), 256)])
    quantiles = (0.5, 0.99, 1.0)
    return {"bits": config.hash_size ** 2, "threshold": config.image_distance,
            "scanned_vs_original": {f"q{q}": float(np.quantile(scan, q)) for q in quantiles} | {"pages": len(scan)},
            "eval_vs_nearest_near_miss": {f"q{q}": float(np.quantile(nearest, q)) for q in (0.0, 0.01, 0.05, 0.5)}
            | {"pages": len(nearest), "within_threshold": int((nearest <= config.image_distance).sum())}}


def geometric_margins(pdfs: list[Path], config: DecontamConfig) -> dict:
    """Median bits a page's hash moves when the page is turned by 1 and 2 degrees or cropped by 3% (top-left):
    what a scan with more skew or cut margins does, which the simulated scans above do not."""
    import pypdfium2 as pdfium
    from PIL import Image

    from mmprolong.decontam.fingerprints import hamming, image_hash

    def turned(degrees):
        return lambda im: im.convert("L").rotate(degrees, resample=Image.BILINEAR, fillcolor=255)

    def cropped(im):
        w, h = im.size
        return im.crop((int(0.03 * w), int(0.03 * h), w, h))

    moves = {"turned 1 degree": turned(1), "turned 2 degrees": turned(2), "cropped 3%": cropped}
    distances = {name: [] for name in moves}
    for path in pdfs:
        pdf = pdfium.PdfDocument(str(path))
        for page in pdf:
            image = page.render(scale=1.0).to_pil()
            original = image_hash(image, config.hash_size)
            for name, move in moves.items():
                moved = image_hash(move(image), config.hash_size)
                distances[name].append(int(hamming(original[None], moved[None])[0, 0]))
        pdf.close()
    return {name: float(np.median(d)) for name, d in distances.items()}


# --- speed -------------------------------------------------------------------------------------------------


def speed(root: Path, *, docs: int, base_docs: int, eval_docs: int, workers: int, out: Path) -> None:
    t = time.perf_counter()
    make_docs(root / "base", seed=201, docs=base_docs, min_pages=10, max_pages=40, workers=workers)
    api.ingest(root / "base", root / "base-store", IngestConfig(**SMALL_PAGES, workers=workers),
               show_progress=False)
    pages = derive_store(root / "base-store", root / "store", docs=docs)
    made = time.perf_counter() - t
    evals = make_docs(root / "eval-pdfs", seed=202, docs=eval_docs, min_pages=10, max_pages=30, workers=workers)
    for pdf in evals[: eval_docs // 4]:
        write_page_images(pdf.read_bytes(), root / "eval-images" / pdf.stem)
    rows = []
    for label, sources in (("text layer", [root / "eval-pdfs"]),
                           ("+ page images (all training pages hashed)", [root / "eval-pdfs", root / "eval-images"])):
        start = time.perf_counter()
        summary = api.decontaminate(root / "store", sources, root / f"report-{len(rows)}",
                                    DecontamConfig(workers=workers), show_progress=False)
        seconds = time.perf_counter() - start
        result = json.loads(Path(summary["report"]).read_text())
        index_path = root / f"report-{len(rows)}" / "eval_index.pkl"
        t = time.process_time()
        EvalIndex.load(index_path)
        load_s = time.process_time() - t
        rows.append({"evaluation": label, "eval docs": summary["evaluation_documents"],
                     "eval pages": result["evaluation"]["pages"],
                     "store docs": summary["training_documents"], "store pages": summary["training_pages"],
                     "image-hashed pages": result["training"]["image_pages"], "seconds": round(seconds, 1),
                     "store CPU ms/page": round(1000 * summary["training_cpu_seconds"] / summary["training_pages"], 2),
                     "matches": summary["matches"],
                     "index KB/eval page": round(index_path.stat().st_size / 1024 / result["evaluation"]["pages"], 1),
                     "index load CPU s": round(load_s, 2)})
    costs = per_page_costs(root)
    report(rows, out, workers=workers, store_seconds=round(made, 1), store_pages=pages, base_documents=base_docs,
           per_page_costs=costs)
    print(json.dumps(costs, indent=1))


def derive_store(base: Path, out: Path, *, docs: int, seed: int = 0) -> int:
    """A page store of ``docs`` documents, each a run of 2-8 consecutive pages of a base document (an excerpt,
    as a long report split into parts), written with ingest's writer and schema: the pages, texts and images are
    real renders, the documents cheap to make. Returns the pages written."""
    import dataclasses
    import hashlib
    import random

    from mmprolong.ingest.store import ShardWriter, iter_documents, shard_path, write_json

    rng = random.Random(seed)
    base_docs = [pages for pages in iter_documents(base)]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    writer, written, shard = None, 0, 0
    for d in range(docs):
        if d % 8 == 0:
            if writer:
                writer.commit()
            writer, shard = ShardWriter(shard_path(out, d // 8)), d // 8
        pages = rng.choice(base_docs)
        count = min(len(pages), rng.randint(2, 8))
        start = rng.randrange(0, len(pages) - count + 1)
        doc_id = hashlib.sha256(f"derived/{d}".encode()).hexdigest()[:16]
        for i, page in enumerate(pages[start:start + count]):
            writer.add(dataclasses.replace(page, doc_id=doc_id, source=f"excerpt-{d:05d}.pdf", page_index=i,
                                           page_count=count))
        written += count
    writer.commit()
    write_json(out / "summary.json", {"documents": docs, "pages": written, "shards": shard + 1,
                                      "derived_from": str(base)})
    return written


def per_page_costs(root: Path, eval_pages: int = 50_000) -> dict:
    """CPU milliseconds per training page of each step, for the extrapolation to a million documents (CPU time:
    what a core spends, whatever else shares the machine)."""
    from datasketch import MinHashLSH

    from mmprolong.decontam.fingerprints import MinHasher, hamming, image_hash, open_image, page_print, shingle_hashes
    from mmprolong.decontam.index import distinct_limits
    from mmprolong.decontam.sources import EvalDoc, read_pages
    from mmprolong.ingest.config import IngestConfig as Config
    from mmprolong.ingest.pdf import render_document
    from mmprolong.ingest.store import read_store

    config = DecontamConfig()
    texts = read_store(root / "store", columns=["text"])["text"].to_pylist()[:2000]
    minhasher = MinHasher(config.num_perm)
    clock = time.process_time
    t = clock()
    prints = [shingle_hashes(text, config.shingle_words)[1] for text in texts]
    minhashes = [minhasher(s) for s in prints]
    text_ms = 1000 * (clock() - t) / len(texts)
    lsh = MinHashLSH(threshold=config.lsh_threshold, num_perm=config.num_perm)
    for i in range(eval_pages):  # an index of 50,000 pages: the store's pages again, under new keys
        lsh.insert(i, minhashes[i % len(minhashes)])
    t = clock()
    for m in minhashes:
        lsh.query(m)
    query_ms = 1000 * (clock() - t) / len(minhashes)
    rng = np.random.default_rng(0)
    words = config.hash_size ** 2 // 64
    eval_hashes = rng.integers(0, 2**63, size=(eval_pages, words), dtype=np.uint64)
    batch = rng.integers(0, 2**63, size=(256, words), dtype=np.uint64)
    t = clock()
    for start in range(0, 256, 32):
        hamming(batch[start:start + 32], eval_hashes)
    hamming_ms = 1000 * (clock() - t) / 256
    # Page images at the paper's budget (144 dpi within 1,003,520 pixels), PNG as ingest stores them.
    pdf = sorted((root / "eval-pdfs").glob("*.pdf"))[0]
    images = [r.image for r in render_document(pdf.read_bytes(), pdf.name, Config()) if hasattr(r, "image")]
    t = clock()
    for image in images:
        image_hash(open_image(image, config.hash_size), config.hash_size)
    image_ms = 1000 * (clock() - t) / len(images)
    # The evaluation side: one PDF's pages rendered within render_max_pixels, text + hashes; and the look-alike
    # limits over 5,000 evaluation page hashes (quadratic: x100 for 50,000).
    t = clock()
    _, pages = read_pages(EvalDoc(source="", name=pdf.name, kind="pdf", paths=(str(pdf),)),
                          max_pixels=config.render_max_pixels)
    for page in pages:
        page_print(page.text, page.image, shingle_words=config.shingle_words, hash_size=config.hash_size)
    eval_ms = 1000 * (clock() - t) / len(pages)
    t = clock()
    distinct_limits(eval_hashes[:5000], np.arange(5000) // 40, config.image_distance, config.image_margin)
    limits_s = clock() - t
    return {"text_fingerprint_ms": round(text_ms, 3), "lsh_query_ms_50k_eval_pages": round(query_ms, 3),
            "hamming_ms_50k_eval_pages": round(hamming_ms, 3), "image_decode_hash_ms_1M_pixel_png": round(image_ms, 2),
            "image_pages_timed": len(images), "eval_page_fingerprint_ms": round(eval_ms, 2),
            "eval_limits_s_5k_pages": round(limits_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("accuracy", "speed"))
    parser.add_argument("--eval-docs", type=int, default=None, help="accuracy: 30; speed: 100")
    parser.add_argument("--image-docs", type=int, default=10, help="accuracy: evaluation documents as page images")
    parser.add_argument("--negatives", type=int, default=150, help="accuracy: same-template near misses")
    parser.add_argument("--short", type=int, default=50, help="accuracy: short same-template near misses")
    parser.add_argument("--docs", type=int, default=5000, help="speed: documents in the generated store")
    parser.add_argument("--base-docs", type=int, default=60, help="speed: corpus documents the store is cut from")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if args.what == "accuracy":
            accuracy(root, eval_docs=args.eval_docs or 30, image_docs=args.image_docs, negatives=args.negatives,
                     short=args.short, workers=args.workers, out=Path("benchmarks/results/decontam-accuracy.json"))
        else:
            speed(root, docs=args.docs, base_docs=args.base_docs, eval_docs=args.eval_docs or 100,
                  workers=args.workers, out=Path("benchmarks/results/decontam-speed.json"))


if __name__ == "__main__":
    main()
