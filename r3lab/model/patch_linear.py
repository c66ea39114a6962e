"""The vision tower's patch embedding as the matrix product it is.

Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Qwen3.5 embed each patch with a `Conv3d` whose kernel equals its stride
and the patch it is given: one output per patch, i.e. a linear map of the flattened patch. On CPU the
convolution's backward is several times slower than the same product done by `F.linear` (on r3-tiny it
was a sixth of a training step; `benchmarks/train_step.py`). `linear_patch_embeds` swaps the class of those
convolutions in place: the parameters, their names, hooks and the saved checkpoints stay the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class PatchConv3d(torch.nn.Conv3d):
    """A `Conv3d` whose kernel equals its stride: inputs the kernel's size go through `F.linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or tuple(x.shape[2:]) != tuple(self.kernel_size):  # not one patch each: the convolution
            return super().forward(x)
        n = x.shape[0]
        w = self.weight.reshape(self.out_channels, -1)
        return F.linear(x.reshape(n, -1), w, self.bias).view(n, self.out_channels, 1, 1, 1)


def _is_patchwise(m: torch.nn.Module) -> bool:
    return (
        type(m) is torch.nn.Conv3d
        and tuple(m.kernel_size) == tuple(m.stride)
        and m.groups == 1
        and tuple(m.padding) == (0, 0, 0)
        and tuple(m.dilation) == (1, 1, 1)
        and m.padding_mode == "zeros"
    )


def linear_patch_embeds(model: torch.nn.Module) -> int:
    """Make every patch-wise `Conv3d` of `model` a `PatchConv3d` (in place); returns how many were changed."""
    found = [m for m in model.modules() if _is_patchwise(m)]
    for m in found:
        m.__class__ = PatchConv3d
    return len(found)
