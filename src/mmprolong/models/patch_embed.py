"""The vision tower's patch embedding as the matmul it is.

Every supported family embeds a patch with an ``nn.Conv3d`` whose kernel and stride both equal the patch it is
given (temporal x 14 x 14, or 16 x 16), so each output is one dot product of the flattened patch with each filter:
a linear layer. PyTorch's convolution does not see that: on the quickstart's CPU (oneDNN, float32) it took 2.7 ms
for one page's 480 patches against 0.5 ms for the same product as a matmul, a quarter of the whole tower's time
for a page. ``use_matmul_patch_embedding`` changes the class of those convolutions in place (their parameters,
names and state dict unchanged, so checkpoints load and save as before) to one that computes the product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class PatchConv3d(torch.nn.Conv3d):
    """A Conv3d that, given inputs exactly one kernel in size, computes them as a matmul; any other input goes to
    the convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != self.kernel_size:
            return super().forward(x)
        out = F.linear(x.reshape(x.shape[0], -1), self.weight.reshape(self.out_channels, -1), self.bias)
        return out.view(*out.shape, 1, 1, 1)


def tiles_its_input(conv: torch.nn.Conv3d) -> bool:
    """True for a convolution whose windows never overlap nor skip (stride = kernel, no padding or dilation,
    one group): on an input one kernel in size it is a matmul."""
    return (conv.stride == conv.kernel_size and conv.padding == (0, 0, 0) and conv.dilation == (1, 1, 1)
            and conv.groups == 1 and conv.padding_mode == "zeros")


def use_matmul_patch_embedding(model) -> int:
    """Turn each patch-embedding Conv3d of ``model`` into a ``PatchConv3d``; returns how many were changed."""
    changed = 0
    for module in model.modules():
        if type(module) is torch.nn.Conv3d and tiles_its_input(module):
            module.__class__ = PatchConv3d
            changed += 1
    return changed
