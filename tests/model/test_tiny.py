import pytest
import torch

from r3lab.model.tiny import TinyConfig, build_tiny


def test_build_tiny_is_deterministic_per_seed():
    a = build_tiny(TinyConfig(seed=3))
    b = build_tiny(TinyConfig(seed=3))
    c = build_tiny(TinyConfig(seed=4))
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    assert type(a.model).__name__ == "Qwen2_5_VLForConditionalGeneration"


def test_sincos_position_grid_makes_row_and_column_linear():
    p = build_tiny(TinyConfig(family="qwen3_vl", patch_size=7, pos_init="sincos"))
    w = p.model.model.visual.pos_embed.weight.detach().double()
    side = int(w.shape[0] ** 0.5)
    rows = torch.arange(side).repeat_interleave(side).double()
    cols = torch.arange(side).repeat(side).double()
    x = torch.cat([w, torch.ones(len(w), 1, dtype=w.dtype)], 1)
    for target in (rows, cols):  # a least-squares linear read-out recovers each coordinate
        coef = torch.linalg.lstsq(x, target.unsqueeze(1), driver="gelsd").solution
        assert (x @ coef).squeeze(1).sub(target).abs().max() < 0.05
    with pytest.raises(ValueError, match="needs family='qwen3_vl'"):
        build_tiny(TinyConfig(pos_init="sincos"))
    with pytest.raises(ValueError, match="pos_init = 'learned' is not allowed"):  # when the config is made
        build_tiny(TinyConfig(family="qwen3_vl", pos_init="learned"))
