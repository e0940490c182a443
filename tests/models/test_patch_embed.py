"""The vision tower's patch embedding computed as a matmul: the tower's output equals the convolution's, for every
family, and the model keeps its parameters and state dict."""

import pytest
import torch

from mmprolong.models import PRESETS
from mmprolong.models.config import ModelConfig
from mmprolong.models.loading import build_preset_model, load_model
from mmprolong.models.patch_embed import PatchConv3d, use_matmul_patch_embedding


@pytest.mark.parametrize("preset", ["tiny-qwen2-vl", "tiny", "tiny-qwen3-vl"])
def test_the_tower_gives_what_the_convolution_gives(tokenizer, preset):
    family = PRESETS[preset]
    conv = build_preset_model(tokenizer, preset, seed=0, dtype="float64").eval()
    matmul = build_preset_model(tokenizer, preset, seed=0, dtype="float64").eval()
    assert use_matmul_patch_embedding(matmul) == 1 and use_matmul_patch_embedding(matmul) == 0  # once, in place
    assert type(matmul.model.visual.patch_embed.proj) is PatchConv3d
    assert type(conv.model.visual.patch_embed.proj) is torch.nn.Conv3d
    state = matmul.state_dict()
    assert state.keys() == conv.state_dict().keys() and all(torch.equal(state[k], v)
                                                            for k, v in conv.state_dict().items())
    grid = torch.tensor([[1, 4, 6], [1, 8, 2]])
    torch.manual_seed(0)
    pixels = torch.randn(int(grid.prod(-1).sum()), 3 * family.temporal_patch_size * family.patch_size**2,
                         dtype=torch.float64)
    with torch.no_grad():
        a = conv.model.get_image_features(pixels, grid).pooler_output
        b = matmul.model.get_image_features(pixels, grid).pooler_output
    for x, y in zip(a, b):
        assert torch.allclose(x, y, rtol=0, atol=1e-12) and not torch.equal(x, torch.zeros_like(x))


def test_loaded_models_embed_patches_by_matmul_and_other_inputs_still_convolve():
    model, _, _ = load_model(ModelConfig(preset="tiny"))
    proj = model.model.visual.patch_embed.proj
    assert type(proj) is PatchConv3d
    x = torch.randn(2, proj.in_channels, 4, 28, 28)  # two kernels high and wide: a real convolution
    assert torch.allclose(proj(x), torch.nn.functional.conv3d(x, proj.weight, proj.bias, proj.stride), atol=1e-6)
