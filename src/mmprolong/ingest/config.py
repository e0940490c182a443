"""IngestConfig: how PDFs become page-store rows (model family and pixel budget, encoding, limits) and how the work
is spread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmprolong.config import Config, field
from mmprolong.errors import ConfigError
from mmprolong.models import DEFAULT_FAMILY, FAMILIES, ModelFamily, get_family

MiB = 1 << 20
GiB = 1 << 30

# Fields that decide how the work runs, not what it writes: a resumed run may change them.
RUN_ONLY_FIELDS = ("workers", "executor", "max_worker_memory_bytes")


@dataclass(kw_only=True)
class IngestConfig(Config):
    """Settings of the ingest stage (PDF folder -> page store)."""

    family: str = field(DEFAULT_FAMILY.name, help="model family whose vision tokens the store counts (its patch size "
                                                  f"and default budget): {', '.join(FAMILIES)}")
    min_pixels: int | None = field(None, help="fewest pixels of a page image as the model sees it (pixels); none: "
                                              "the family's default")
    max_pixels: int | None = field(None, help="most pixels of a rendered page; pages are rendered straight at this "
                                              "size (pixels); none: the family's default")
    max_dpi: float = field(144.0, help="render resolution, lowered per page to fit max_pixels (dots per inch)")
    image_format: Literal["png", "jpeg"] = field("png", help="encoding of the stored page images")
    jpeg_quality: int = field(90, help="JPEG quality when image_format is jpeg (1-95)")
    workers: int = field(1, help="processes rendering in parallel (local), or Ray tasks in flight (ray)")
    docs_per_shard: int = field(8, help="documents per Parquet shard; a shard is one resumable task")
    max_file_bytes: int = field(512 * MiB, help="larger PDFs are skipped and reported (bytes)")
    max_pages: int = field(2000, help="PDFs with more pages are skipped and reported (pages)")
    max_page_side_pt: float = field(
        14400.0, help="pages with a side above this (or <= 0) are skipped; 14400 pt = 200 in, PDF's own limit (points)"
    )
    max_image_pixels: int = field(
        200_000_000, help="pages drawing an image declared larger than this are skipped (decompression bombs) (pixels)"
    )
    max_worker_memory_bytes: int = field(
        4 * GiB, help="address-space limit of each local worker process (RLIMIT_AS); 0 disables (bytes)"
    )
    executor: Literal["local", "ray"] = field("local", help="where shard tasks run: local processes or a Ray cluster")

    def validate(self) -> None:
        family = get_family(self.family)
        self.min_pixels = family.min_pixels if self.min_pixels is None else self.min_pixels
        self.max_pixels = family.max_pixels if self.max_pixels is None else self.max_pixels
        for name in ("min_pixels", "max_pixels", "jpeg_quality", "workers", "docs_per_shard", "max_file_bytes",
                     "max_pages", "max_image_pixels"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("max_worker_memory_bytes", self.max_worker_memory_bytes, minimum=0)
        for name in ("max_dpi", "max_page_side_pt"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(name, value, "expected a positive number")
        try:
            family.check_pixel_budget(self.min_pixels, self.max_pixels)
        except ValueError as exc:
            field_name = "max_pixels" if self.max_pixels < family.token_px**2 else "min_pixels"
            raise ConfigError(field_name, getattr(self, field_name), str(exc)) from None
        if self.jpeg_quality > 95:
            raise ConfigError("jpeg_quality", self.jpeg_quality, "expected 1-95 (above 95 JPEG grows for nothing)")
        if self.image_format not in ("png", "jpeg"):
            raise ConfigError("image_format", self.image_format, "expected 'png' or 'jpeg'")
        if self.executor not in ("local", "ray"):
            raise ConfigError("executor", self.executor, "expected 'local' or 'ray'")
        if 0 < self.max_worker_memory_bytes < 256 * MiB:
            raise ConfigError("max_worker_memory_bytes", self.max_worker_memory_bytes,
                              "a worker needs at least 256 MiB (268435456); use 0 to disable the limit")

    @property
    def model_family(self) -> ModelFamily:
        return FAMILIES[self.family]

    def output_fields(self) -> dict:
        """The fields that decide the store's bytes: a resume must keep them. The family only when it is not the
        default, so stores made before families existed (all Qwen2.5-VL) keep their fingerprints and resume."""
        skip = RUN_ONLY_FIELDS + (("family",) if self.family == DEFAULT_FAMILY.name else ())
        return {k: v for k, v in self.to_dict().items() if k not in skip}


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, "expected an integer")
    if value < minimum:
        raise ConfigError(name, value, f"expected an integer >= {minimum}")
