import copy

import pytest
import torch

from r3lab.model.patch_linear import PatchConv3d, linear_patch_embeds
from r3lab.model.tiny import TinyConfig, build_tiny


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "qwen3_5"])
def test_the_patch_embedding_is_linear_and_matches_the_convolution(family, tmp_path):
    policy = build_tiny(TinyConfig(family=family, patch_size=7))
    patch = policy.model.model.visual.patch_embed
    assert type(patch.proj) is PatchConv3d  # every Policy gets it
    stock = copy.deepcopy(patch)
    stock.proj.__class__ = torch.nn.Conv3d
    cfg = policy.model.config.vision_config
    n, side = 37, cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size**2
    x = torch.randn(n, side, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, ref = patch(x), stock(x2)
    assert out.shape == ref.shape == (n, cfg.hidden_size)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    out.backward(g), ref.backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(patch.proj.weight.grad, stock.proj.weight.grad, rtol=1e-4, atol=1e-4)
    if patch.proj.bias is not None:  # Qwen2.5-VL's has none
        torch.testing.assert_close(patch.proj.bias.grad, stock.proj.bias.grad, rtol=1e-4, atol=1e-4)
    # the checkpoint does not change: same names, and it loads back into the stock classes
    policy.save(tmp_path / "m")
    from r3lab.model import load_policy

    back = load_policy(tmp_path / "m")
    assert type(back.model.model.visual.patch_embed.proj) is PatchConv3d
    torch.testing.assert_close(back.model.model.visual.patch_embed(x.detach()), out.detach())


def test_other_shapes_and_convolutions_are_left_to_the_convolution():
    conv = torch.nn.Conv3d(3, 8, kernel_size=(2, 4, 4), stride=(2, 4, 4))
    other = torch.nn.Conv3d(3, 8, kernel_size=3, padding=1)  # overlapping: not patch-wise
    net = torch.nn.Sequential(conv, other)
    assert linear_patch_embeds(net) == 1
    assert type(conv) is PatchConv3d and type(other) is torch.nn.Conv3d
    x = torch.randn(2, 3, 4, 8, 8)  # several patches each: the convolution itself
    torch.testing.assert_close(conv(x), torch.nn.functional.conv3d(x, conv.weight, conv.bias, stride=(2, 4, 4)))
    assert linear_patch_embeds(net) == 0  # already done
