"""DecontamConfig: how training documents are matched against evaluation documents, and how the work is spread.

Defaults come from measurements on generated documents (README, "Decontamination"; reproduce with
``python benchmarks/decontam.py``): every copy kind found, no same-template near miss taken, with margin on
both sides of each threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmprolong.config import Config, field
from mmprolong.errors import ConfigError
from mmprolong.tokens import DEFAULT_MIN_PIXELS, check_pixel_budget


@dataclass(kw_only=True)
class DecontamConfig(Config):
    """Settings of ``mmprolong decontaminate`` (page store x evaluation sources -> matches, exclusion list)."""

    shingle_words: int = field(5, help="words per text shingle (lower-cased \\w+ words, across line breaks)")
    num_perm: int = field(128, help="MinHash permutations per page (datasketch); more: finer similarity, slower")
    lsh_threshold: float = field(
        0.5, help="Jaccard similarity of two pages' shingle sets, or of two whole documents', at which MinHash LSH "
                  "offers their documents as a candidate pair (pages: copied pages, excerpts; documents: re-typeset "
                  "copies, whose page breaks moved)")
    text_threshold: float = field(
        0.7, help="text match: shared shingles / shingles of the smaller document, at or above this (exact sets; "
                  "copies, reorders and excerpts score ~1, same-template documents <= 0.5 in our measurements)")
    min_shingles: int = field(50, help="a text match needs the smaller document to have this many shingles")
    min_page_words: int = field(
        20, help="pages with fewer words have no usable text (no LSH entry); a document with text on under half its "
                 "pages is text-less and matched by its page images (scans, slides of pictures)")
    image_pages: Literal["auto", "textless", "all"] = field(
        "auto", help="which training pages get a perceptual hash: textless = the pages of text-less documents "
                     "(text on under half their pages: scans; cheap), all = every page (each image is decoded), "
                     "auto = all when some evaluation document is text-less (page images, scans), else textless")
    hash_size: int = field(
        32, help="perceptual hash of hash_size x hash_size bits (imagehash.phash over a 4*hash_size pixel square); "
                 "a multiple of 8. 32 separates text pages of one template that 16 (256 bits) confuses")
    image_distance: int = field(
        192, help="two page images match at this Hamming distance or less (bits of the hash_size**2)")
    image_margin: float = field(
        0.75, help="a page image also matches only below this share of the distance from the evaluation page to the "
                   "nearest page of another evaluation document (a layout the evaluation set repeats identifies "
                   "nothing)")
    image_coverage: float = field(
        0.5, help="image match: share of either document's hashed pages matched in the other, at or above this")
    min_image_pages: int = field(3, help="an image match needs at least this many pages matched on each side")
    render_max_pixels: int = field(
        401_408, help="evaluation PDFs are rendered within this many pixels a page (at most 144 dpi) for image "
                      "hashes; the hash sees 4*hash_size pixels a side, so more only costs time (pixels)")
    pages_per_task: int = field(
        10_000, help="most training pages per task (whole store shards, the unit of parallelism and resume; fewer "
                     "so every worker gets 4 tasks); each task loads the evaluation index once")
    workers: int = field(1, help="processes (local), or Ray tasks in flight (ray)")
    executor: Literal["local", "ray"] = field("local", help="where tasks run: local processes or a Ray cluster, "
                                                            "as ingest (mmprolong[ray])")

    def validate(self) -> None:
        for name in ("shingle_words", "num_perm", "min_shingles", "min_page_words", "min_image_pages",
                     "pages_per_task", "workers", "render_max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "expected an integer >= 1")
        for name in ("lsh_threshold", "text_threshold", "image_coverage", "image_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError(name, value, "expected a share in (0, 1]")
        if self.hash_size % 8 or not 8 <= self.hash_size <= 32:
            raise ConfigError("hash_size", self.hash_size, "expected 8, 16, 24 or 32 (the hash is packed in 64-bit "
                                                           "words)")
        if isinstance(self.image_distance, bool) or not 0 <= self.image_distance < self.hash_size ** 2 // 2:
            raise ConfigError("image_distance", self.image_distance,
                              f"expected bits in [0, {self.hash_size ** 2 // 2}) (half the hash is chance level)")
        if self.image_pages not in ("auto", "textless", "all"):
            raise ConfigError("image_pages", self.image_pages, "expected 'auto', 'textless' or 'all'")
        if self.executor not in ("local", "ray"):
            raise ConfigError("executor", self.executor, "expected 'local' or 'ray'")
        try:
            check_pixel_budget(DEFAULT_MIN_PIXELS, self.render_max_pixels)
        except ValueError as exc:
            raise ConfigError("render_max_pixels", self.render_max_pixels, str(exc)) from None

    def match_fields(self) -> dict:
        """The fields that decide the result (a resumed run must keep them); workers and executor do not (the
        tasks they imply are recorded beside)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("workers", "executor", "pages_per_task")}
