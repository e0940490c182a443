"""Exact cross-modal token accounting, shared by every stage.

Sequence length is the unit of the whole recipe: length buckets in synth, packing in train and
the 64K..512K lengths of eval all count tokens here, so "128K" means the same thing everywhere.

Every supported family (``mmprolong.models``) counts vision tokens with the same arithmetic as its image
processor, transformers' ``Qwen2VLImageProcessor``: the image is resized to multiples of one token's side,
``patch_size`` x ``merge_size`` pixels, inside [min_pixels, max_pixels] with its aspect kept
(``smart_resize``), then every token-sized block becomes one image pad token. The keyword defaults are
Qwen2-VL's and Qwen2.5-VL's (14-px patches merged 2x2: 28 px a token, and the processor class's budget);
Qwen3-VL passes its own (16-px patches: 32 px a token). In the prompt an image is its pads between one start
and one end token (``IMAGE_WRAPPER_TOKENS``).
"""

from __future__ import annotations

import math

from mmprolong.errors import DataError

# transformers' Qwen2VLImageProcessor defaults: patch size, merge size and pixel budget (size.shortest_edge /
# size.longest_edge), the Qwen2-VL and Qwen2.5-VL families' defaults. A real model's values are read from its
# preprocessor_config.json (``mmprolong.models``).
PATCH_SIZE = 14
MERGE_SIZE = 2
DEFAULT_MIN_PIXELS = 56 * 56
DEFAULT_MAX_PIXELS = 1280 * (PATCH_SIZE * MERGE_SIZE) ** 2
MAX_ASPECT_RATIO = 200
IMAGE_WRAPPER_TOKENS = 2  # the vision start and end tokens around an image's pads


def check_pixel_budget(min_pixels: int, max_pixels: int, *, token_px: int = PATCH_SIZE * MERGE_SIZE) -> None:
    """Raise ValueError unless 0 < min_pixels <= max_pixels and max_pixels fits one token of ``token_px`` pixels
    a side."""
    if min_pixels <= 0 or max_pixels < token_px * token_px or min_pixels > max_pixels:
        raise ValueError(
            f"pixel budget min_pixels={min_pixels}, max_pixels={max_pixels}: need "
            f"0 < min_pixels <= max_pixels and max_pixels >= {token_px * token_px} (one {token_px}x{token_px} token)"
        )


def smart_resize(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    patch_size: int = PATCH_SIZE,
    merge_size: int = MERGE_SIZE,
) -> tuple[int, int]:
    """The (height, width) the image processor resizes an image to: multiples of ``patch_size * merge_size``.

    Same arithmetic as transformers (Python's round-half-to-even, then floor when over budget and
    ceil when under), so counts match the processor bit for bit.
    """
    if height <= 0 or width <= 0:
        raise DataError(f"image size {height}x{width}: both sides must be positive")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise DataError(
            f"image size {height}x{width}: aspect ratio above {MAX_ASPECT_RATIO}, "
            "which the Qwen-VL image processor refuses"
        )
    factor = patch_size * merge_size
    check_pixel_budget(min_pixels, max_pixels, token_px=factor)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def image_grid_thw(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    patch_size: int = PATCH_SIZE,
    merge_size: int = MERGE_SIZE,
) -> tuple[int, int, int]:
    """The processor's ``image_grid_thw`` row for one still image: (1, rows, cols) of patches."""
    h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch_size,
                        merge_size=merge_size)
    return 1, h // patch_size, w // patch_size


def image_tokens(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    patch_size: int = PATCH_SIZE,
    merge_size: int = MERGE_SIZE,
) -> int:
    """Number of image pad tokens for one image of ``height`` x ``width`` pixels."""
    h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch_size,
                        merge_size=merge_size)
    factor = patch_size * merge_size
    return (h // factor) * (w // factor)


def image_span_tokens(
    height: int,
    width: int,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    patch_size: int = PATCH_SIZE,
    merge_size: int = MERGE_SIZE,
) -> int:
    """Tokens one image takes in the sequence: its pads plus the vision start and end tokens."""
    pads = image_tokens(height, width, min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch_size,
                        merge_size=merge_size)
    return pads + IMAGE_WRAPPER_TOKENS


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
