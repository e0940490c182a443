"""Our vision-token counts must equal what transformers' Qwen2-VL image processor produces."""

import random

import numpy as np
import pytest
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

from mmprolong.errors import DataError
from mmprolong.tokens import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    image_grid_thw,
    image_span_tokens,
    image_tokens,
    render_scale,
    smart_resize,
)

BUDGETS = [
    (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS),
    (256 * 28 * 28, 768 * 28 * 28),
    (4 * 28 * 28, 16384 * 28 * 28),  # the released Qwen2.5-VL checkpoints' max_pixels (12,845,056)
    (28 * 28, 28 * 28),  # a one-token budget
    (1000, 50_000),  # budgets that are not multiples of 28*28
]


def test_defaults_are_the_processors():
    processor = Qwen2VLImageProcessorPil()
    assert (processor.size.shortest_edge, processor.size.longest_edge) == (DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS)
    assert processor.patch_size * processor.merge_size == 28


@pytest.mark.parametrize("min_pixels,max_pixels", BUDGETS)
def test_counts_equal_the_processors_on_real_images(min_pixels, max_pixels):
    rng = random.Random(min_pixels * 7 + max_pixels)
    processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
    for _ in range(12):
        height, width = rng.randint(20, 1800), rng.randint(20, 1800)
        image = Image.fromarray(np.full((height, width, 3), rng.randint(0, 255), dtype=np.uint8))
        grid = processor(images=[image], return_tensors="np")["image_grid_thw"][0]
        expected_tokens = int(grid.prod()) // processor.merge_size**2
        assert image_grid_thw(height, width, min_pixels=min_pixels, max_pixels=max_pixels) == tuple(grid)
        assert image_tokens(height, width, min_pixels=min_pixels, max_pixels=max_pixels) == expected_tokens
        assert image_span_tokens(height, width, min_pixels=min_pixels, max_pixels=max_pixels) == expected_tokens + 2


def test_resize_equals_transformers_on_many_random_sizes():
    rng = random.Random(0)
    for _ in range(20_000):
        height, width = rng.randint(1, 8000), rng.randint(1, 8000)
        if max(height, width) / min(height, width) > 200:
            continue
        min_pixels = rng.choice([784, 3136, rng.randint(784, 400_000)])
        max_pixels = max(min_pixels, rng.choice([1_003_520, 12_845_056, rng.randint(784, 4_000_000)]))
        expected = hf_smart_resize(height, width, factor=28, min_pixels=min_pixels, max_pixels=max_pixels)
        assert smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels) == expected


def test_known_page_counts():
    # US letter at 150 dpi (1275 x 1650 px): STACK-NOTES measured 1,240 and 744 tokens.
    assert image_tokens(1650, 1275, max_pixels=1280 * 28 * 28) == 1240
    assert image_tokens(1650, 1275, max_pixels=768 * 28 * 28) == 744
    # Half-way rounding is Python's (to even), as in transformers: 42/28 = 1.5 -> 2, 70/28 = 2.5 -> 2.
    assert smart_resize(42, 70, min_pixels=28 * 28, max_pixels=10**6) == (56, 56)


def test_bad_sizes_raise_data_errors():
    with pytest.raises(DataError, match="aspect ratio"):
        image_tokens(10, 2500)
    with pytest.raises(DataError, match="positive"):
        image_tokens(0, 100)
    with pytest.raises(ValueError, match="min_pixels"):
        image_tokens(100, 100, min_pixels=5000, max_pixels=4000)


def test_render_scale_fits_the_budget():
    # A US-letter page (612 x 792 pt): 144 dpi is 1224 x 1584 = 1.94 MP, over the default budget.
    scale = render_scale(612, 792, max_dpi=144, max_pixels=DEFAULT_MAX_PIXELS)
    assert round(612 * scale) * round(792 * scale) <= DEFAULT_MAX_PIXELS
    assert scale < 2.0
    # A small page keeps the requested dpi.
    assert render_scale(200, 100, max_dpi=144, max_pixels=DEFAULT_MAX_PIXELS) == 2.0
