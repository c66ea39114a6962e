"""AttentionMaps: grid layout, grid <-> pixel geometry in every frame, aggregations and the sink."""

import pytest
import torch

from r3lab.core.regions import ViewConfig
from r3lab.core.rope import mrope_positions
from r3lab.explain.capture import attention_maps
from r3lab.explain.maps import AttentionMaps
from r3lab.testing import tiny_policy, toy_trajectory

# `policy` (3 layers, GQA) and `trajs` (two toy trajectories with crops) come from tests/conftest.py


def test_grid_layout_matches_the_models_own_positions(policy, trajs):
    """Token k of an image sits at merged cell (k // cols, k % cols): the M-RoPE (row, col) offsets agree."""
    maps = attention_maps(policy, trajs[1], layers=[0])
    pos, _ = mrope_positions(trajs[1].input_ids(), trajs[1].grids(), policy.image_token_id, policy.merge_size)
    for i, (a, b) in enumerate(maps.spans):
        _, gh, gw = maps.merged_shape(i)
        tok = maps.image_pos[a:b]
        rows, cols = pos[1, tok] - pos[1, tok[0]], pos[2, tok] - pos[2, tok[0]]
        k = torch.arange(b - a)
        assert torch.equal(rows, k // gw) and torch.equal(cols, k % gw)


def _one_hot(maps: AttentionMaps, j: int) -> AttentionMaps:
    w = torch.zeros_like(maps.weights)
    w[..., j] = 1.0
    return AttentionMaps(
        w,
        torch.zeros_like(maps.sink),
        maps.query_pos,
        maps.image_pos,
        maps.spans,
        maps.grids,
        maps.merge,
        maps.patch,
        maps.layers,
        maps.heads,
        infos=maps.infos,
        images=maps.images,
        trajectory=maps.trajectory,
    )


@pytest.mark.parametrize("size", [(448, 336), (300, 500), (620, 200)])
def test_grid_pixel_round_trip_non_square_and_crops(size):
    policy = tiny_policy(view=ViewConfig(max_pixels=224 * 224))
    traj = toy_trajectory(policy, size=size)
    maps = attention_maps(policy, traj, layers=[-1])
    main, crop = traj.main.info, traj.crops[0].info
    for i in range(len(maps.spans)):
        _, gh, gw = maps.merged_shape(i)
        a = maps.spans[i][0]
        for j in (0, gh * gw // 2 + 1, gh * gw - 1):
            hot = _one_hot(maps, a + j)
            g = hot.grid(i, sink="keep")
            assert g.shape == (gh, gw) and divmod(int(g.argmax()), gw) == divmod(j, gw)
            # pixels of the image itself: exactly the cell's square
            px = hot.to_pixels(i, sink="keep")
            ys, xs = (px > 0).nonzero()
            box = hot.cell_boxes(i, "image")[j]
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(int(v) for v in box)
            # original frame of the main image: the cell's original-pixel box, and back to the same cell
            px = hot.to_pixels(i, frame="orig", sink="keep")
            assert px.shape == (main.orig_size[1], main.orig_size[0])
            ys, xs = (px > 0).nonzero()
            ob = hot.cell_boxes(i, "orig")[j]
            assert abs(xs.min() - ob[0]) <= 1 and abs(ys.min() - ob[1]) <= 1
            assert abs(xs.max() + 1 - ob[2]) <= 1 and abs(ys.max() + 1 - ob[3]) <= 1
            assert hot.mass(tuple(hot.cell_boxes(i, "input")[j].tolist()), image=i, sink="keep") == pytest.approx(1.0)
    # a crop's cells tile exactly the original box it was cut from, and sit inside its input-frame box
    cells = maps.cell_boxes(1, "orig")
    x1, y1, x2, y2 = crop.box_orig
    assert cells[:, 0].min() == pytest.approx(x1) and cells[:, 2].max() == pytest.approx(x2 + 1)
    assert cells[:, 1].min() == pytest.approx(y1) and cells[:, 3].max() == pytest.approx(y2 + 1)
    inp = maps.cell_boxes(1, "input")
    bx = crop.box_input
    sx, sy = main.input_size[0] / main.orig_size[0], main.input_size[1] / main.orig_size[1]
    assert inp[:, 0].min() >= bx[0] - sx and inp[:, 2].max() <= bx[2] + 2 * sx
    assert inp[:, 1].min() >= by if (by := bx[1] - sy) else True
    assert maps.mass((0, 0, *main.input_size), image=0) == pytest.approx(1.0)


def test_aggregations_and_sink(policy, trajs):
    maps = attention_maps(policy, trajs[0], layers=[1], queries="text", rollout=True)
    keep = maps.token_scores(sink="keep")
    renorm = maps.token_scores(sink="renorm")
    assert (renorm >= keep - 1e-7).all()
    img = maps.token_scores(sink="image")
    for a, b in maps.spans:
        assert img[a:b].sum() == pytest.approx(1.0, abs=1e-5)
    assert (maps.token_scores(heads="max", sink="keep") >= maps.token_scores(heads="mean", sink="keep") - 1e-7).all()
    torch.testing.assert_close(maps.token_scores(heads=[2], sink="keep"), maps.weights[0, 2].mean(0))
    # one layer of rollout: e_q (0.5 A + 0.5 I) puts half of each row's attention on the image tokens
    roll = maps.token_scores(layers="rollout", sink="keep")
    torch.testing.assert_close(roll, 0.5 * maps.weights[0].mean(0).mean(0), atol=1e-6, rtol=1e-5)
    q = maps.query_pos[-3:]
    torch.testing.assert_close(maps.token_scores(queries=q, sink="keep"), maps.weights[0, :, -3:].mean(0).mean(0))
    with pytest.raises(ValueError, match="not captured"):
        maps.token_scores(layers=[0])
    with pytest.raises(ValueError, match="sink"):
        maps.token_scores(sink="zero")
    with pytest.raises(ValueError, match="rollout=True"):
        attention_maps(policy, trajs[0], layers=[1]).token_scores(layers="rollout")
