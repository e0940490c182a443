"""A training store holding copies of evaluation documents, of every kind, among same-template near misses.

Evaluation: ``eval/`` (3 corpus documents as PDFs) and ``eval-images/`` (a fourth as JPEG page images, as
SlideVQA ships slides). Training (``train/`` -> ``store/``): copies of each PDF, of every kind (exact + scanned,
re-saved + reordered + re-typeset, page dropped + half excerpt), the fourth document's original PDF, and
near misses: 6 other documents of the same three templates and 3 short ones (3-4 pages).
"""

import shutil

import pytest

from mmprolong import api
from mmprolong.decontam.variants import make_variant, write_page_images
from mmprolong.ingest import IngestConfig

SMALL_PAGES = {"max_pixels": 200_704, "max_dpi": 72.0}
COPIES = {"doc-00000.pdf": ("exact", "scanned"), "doc-00001.pdf": ("resaved", "reordered", "retypeset"),
          "doc-00002.pdf": ("page-dropped", "excerpt")}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("decontam")
    api.make_corpus(root / "eval", docs=3, seed=11, min_pages=10, max_pages=14)
    api.make_corpus(root / "image-doc", docs=1, seed=12, min_pages=10, max_pages=14)
    api.make_corpus(root / "near", docs=6, seed=13, min_pages=8, max_pages=14)
    api.make_corpus(root / "short", docs=3, seed=14, min_pages=3, max_pages=4)
    train = root / "train"
    train.mkdir()
    truth = {}  # training file -> (copy kind, evaluation document name) or None for a near miss
    for i, (name, kinds) in enumerate(COPIES.items()):
        data = (root / "eval" / name).read_bytes()
        for kind in kinds:
            (train / f"{kind}-{name}").write_bytes(make_variant(data, kind, seed=i))
            truth[f"{kind}-{name}"] = (kind, name)
    original = root / "image-doc" / "doc-00000.pdf"
    shutil.copy(original, train / "image-original.pdf")
    write_page_images(original.read_bytes(), root / "eval-images" / "deck-a")
    truth["image-original.pdf"] = ("eval as page images", "deck-a")
    for folder, prefix in (("near", "near"), ("short", "short")):
        for pdf in sorted((root / folder).glob("*.pdf")):
            shutil.copy(pdf, train / f"{prefix}-{pdf.name}")
            truth[f"{prefix}-{pdf.name}"] = None
    api.ingest(train, root / "store", IngestConfig(**SMALL_PAGES, workers=2), show_progress=False)
    return root, truth
