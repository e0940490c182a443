"""Exact cross-modal token accounting, shared by every stage.

Sequence length is the unit of the whole recipe: length buckets in synth, packing in train and
the 64K..512K lengths of eval all count tokens here, so "128K" means the same thing everywhere.

Vision tokens follow Qwen2.5-VL's image processor: the image is resized to multiples of
``FACTOR`` = patch 14 x merge 2 = 28 pixels inside [min_pixels, max_pixels] with its aspect kept
(``smart_resize``), then every 28x28 block becomes one ``<|image_pad|>`` token. In the prompt an
image is ``<|vision_start|>`` + pads + ``<|vision_end|>``.
"""

from __future__ import annotations

import math

from mmprolong.errors import DataError

PATCH_SIZE = 14
MERGE_SIZE = 2
FACTOR = PATCH_SIZE * MERGE_SIZE
# The defaults of transformers' Qwen2VLImageProcessor (size.shortest_edge / size.longest_edge).
# The released Qwen2.5-VL checkpoints ship a larger max_pixels in preprocessor_config.json; a real
# model's values are read from its directory (see ``mmprolong.train.models``).
DEFAULT_MIN_PIXELS = 56 * 56
DEFAULT_MAX_PIXELS = 28 * 28 * 1280
MAX_ASPECT_RATIO = 200

IMAGE_PAD = "<|image_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_WRAPPER_TOKENS = 2  # <|vision_start|> and <|vision_end|> around the pads


def check_pixel_budget(min_pixels: int, max_pixels: int) -> None:
    """Raise ValueError unless 0 < min_pixels <= max_pixels and max_pixels fits one merged patch."""
    if min_pixels <= 0 or max_pixels < FACTOR * FACTOR or min_pixels > max_pixels:
        raise ValueError(
            f"pixel budget min_pixels={min_pixels}, max_pixels={max_pixels}: need "
            f"0 < min_pixels <= max_pixels and max_pixels >= {FACTOR * FACTOR}"
        )


def smart_resize(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """The (height, width) Qwen2.5-VL's processor resizes an image to.

    Same arithmetic as transformers (Python's round-half-to-even, then floor when over budget and
    ceil when under), so counts match the processor bit for bit.
    """
    if height <= 0 or width <= 0:
        raise DataError(f"image size {height}x{width}: both sides must be positive")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise DataError(
            f"image size {height}x{width}: aspect ratio above {MAX_ASPECT_RATIO}, "
            "which Qwen2.5-VL's processor refuses"
        )
    check_pixel_budget(min_pixels, max_pixels)
    h_bar = round(height / FACTOR) * FACTOR
    w_bar = round(width / FACTOR) * FACTOR
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(FACTOR, math.floor(height / beta / FACTOR) * FACTOR)
        w_bar = max(FACTOR, math.floor(width / beta / FACTOR) * FACTOR)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / FACTOR) * FACTOR
        w_bar = math.ceil(width * beta / FACTOR) * FACTOR
    return h_bar, w_bar


def image_grid_thw(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int, int]:
    """The processor's ``image_grid_thw`` row for one still image: (1, rows, cols) of 14-px patches."""
    h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    return 1, h // PATCH_SIZE, w // PATCH_SIZE


def image_tokens(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> int:
    """Number of ``<|image_pad|>`` tokens for one image of ``height`` x ``width`` pixels."""
    h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    return (h // FACTOR) * (w // FACTOR)


def image_span_tokens(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> int:
    """Tokens one image takes in the sequence: its pads plus ``<|vision_start|>``/``<|vision_end|>``."""
    return image_tokens(height, width, min_pixels=min_pixels, max_pixels=max_pixels) + IMAGE_WRAPPER_TOKENS


def render_scale(
    width_pt: float,
    height_pt: float,
    *,
    max_dpi: float,
    max_pixels: int,
) -> float:
    """Render scale (pixels per PDF point) for a page: ``max_dpi``, lowered so the page fits ``max_pixels``.

    Rendering straight at the size the model will see avoids rendering large and downscaling.
    The 0.995 margin keeps the rounded-up pixel size inside the budget.
    """
    if width_pt <= 0 or height_pt <= 0:
        raise DataError(f"page size {width_pt}x{height_pt} pt: both sides must be positive")
    scale = max_dpi / 72.0
    budget_scale = math.sqrt(max_pixels / (width_pt * height_pt)) * 0.995
    return min(scale, budget_scale)
