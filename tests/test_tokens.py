"""Our vision-token counts must equal what transformers' image processor produces, for every model family."""

import random

import numpy as np
import pytest
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

from mmprolong.errors import DataError
from mmprolong.models import FAMILIES
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


# --- every family: our counts equal what transformers loads from a checkpoint's preprocessor_config.json ------

# As the released checkpoints ship them (Qwen2.5-VL-7B-Instruct, Qwen3-VL-8B-Instruct; Qwen2-VL-7B-Instruct's
# equals Qwen2.5-VL's apart from its processor_class).
RELEASED_PREPROCESSORS = {
    "qwen2_vl": {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                 "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                 "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Qwen2VLImageProcessor",
                 "processor_class": "Qwen2VLProcessor"},
    "qwen2_5_vl": {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                   "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Qwen2VLImageProcessor",
                   "processor_class": "Qwen2_5_VLProcessor"},
    "qwen3_vl": {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
                 "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
                 "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast"},
}


def _released_processor(name, tmp_path):
    import json

    from transformers import AutoImageProcessor

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(RELEASED_PREPROCESSORS[name]))
    return AutoImageProcessor.from_pretrained(str(tmp_path), local_files_only=True)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_familys_counts_equal_transformers_on_20000_random_sizes_and_budgets(name, tmp_path):
    family = FAMILIES[name]
    processor = _released_processor(name, tmp_path)
    assert (processor.patch_size, processor.merge_size) == (family.patch_size, family.merge_size)
    assert family.check_image_processor(processor) is None
    rng = random.Random(name)
    released = (processor.size.shortest_edge, processor.size.longest_edge)
    checked = 0
    while checked < 20_000:
        height, width = rng.randint(1, 8000), rng.randint(1, 8000)
        if max(height, width) / min(height, width) > 200:
            continue
        min_pixels = rng.choice([released[0], family.min_pixels, rng.randint(family.token_px**2, 400_000)])
        max_pixels = max(min_pixels, rng.choice([released[1], family.max_pixels, family.pixels_for_tokens(128),
                                                 rng.randint(family.token_px**2, 4_000_000)]))
        budget = {"min_pixels": min_pixels, "max_pixels": max_pixels}
        expected = processor.get_number_of_image_patches(height, width, budget) // processor.merge_size**2
        assert family.image_tokens(height, width, **budget) == expected, (height, width, budget)
        assert image_tokens(height, width, **budget, patch_size=family.patch_size,
                            merge_size=family.merge_size) == expected
        checked += 1


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_familys_grids_equal_the_processor_on_real_images(name, tmp_path):
    family = FAMILIES[name]
    rng = random.Random(name)
    for min_pixels, max_pixels in ((family.min_pixels, family.max_pixels), (family.token_px**2, 300_000)):
        processor = family.image_processor(min_pixels=min_pixels, max_pixels=max_pixels)
        for _ in range(6):
            height, width = rng.randint(20, 1400), rng.randint(20, 1400)
            image = Image.fromarray(np.full((height, width, 3), rng.randint(0, 255), dtype=np.uint8))
            out = processor(images=[image], return_tensors="pt")
            grid = tuple(out["image_grid_thw"][0].tolist())
            assert image_grid_thw(height, width, min_pixels=min_pixels, max_pixels=max_pixels,
                                  patch_size=family.patch_size, merge_size=family.merge_size) == grid
            assert family.grid_tokens(out["image_grid_thw"]).item() == family.image_tokens(
                height, width, min_pixels=min_pixels, max_pixels=max_pixels)
            assert out["pixel_values"].shape[-1] == 3 * family.temporal_patch_size * family.patch_size**2


def test_family_defaults_are_the_released_processors(tmp_path):
    qwen3 = FAMILIES["qwen3_vl"]
    processor = _released_processor("qwen3_vl", tmp_path)
    assert (processor.size.shortest_edge, processor.size.longest_edge) == (qwen3.min_pixels, qwen3.max_pixels)
    assert tuple(processor.image_mean) == qwen3.image_mean and tuple(processor.image_std) == qwen3.image_std
    assert qwen3.token_px == 32 and FAMILIES["qwen2_5_vl"].token_px == FAMILIES["qwen2_vl"].token_px == 28
    ours = qwen3.image_processor()
    assert (ours.size.shortest_edge, ours.size.longest_edge, ours.patch_size) == (65536, 16777216, 16)
    # A US-letter page at 144 dpi (1224 x 1584 px) is inside Qwen3-VL's default budget: 38 x 50 tokens of 32 px.
    assert qwen3.image_tokens(1584, 1224, min_pixels=qwen3.min_pixels, max_pixels=qwen3.max_pixels) == 38 * 50
