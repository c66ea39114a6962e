import functools

import pytest
import torch

from r3lab.core.rope import batch_positions, mrope_positions
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import tiny_policy


@functools.cache
def _qwen3():
    return build_tiny(TinyConfig(family="qwen3_vl", patch_size=7))


@functools.cache
def _qwen3_5():
    return build_tiny(TinyConfig(patch_size=7, layers=4), family="qwen3_5")


def _row(policy, layout):
    ids, grids = [], []
    for item in layout:
        if isinstance(item, int):
            ids += [5] * item
        else:
            grids.append(item)
            ids += policy.image_ids(item)
    return ids, grids


LAYOUTS = [
    [7],
    [3, (1, 8, 8), 10],
    [2, (1, 6, 8), 4, (1, 8, 4), 1, (1, 4, 4), 6],
    [(1, 8, 8), (1, 4, 8), 3],
]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "qwen3_5"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_positions_equal_get_rope_index(layout, family):
    policy = {"qwen2_5_vl": tiny_policy, "qwen3_vl": _qwen3, "qwen3_5": _qwen3_5}[family]()
    ids, grids = _row(policy, layout)
    ours, nxt = mrope_positions(ids, grids, policy.image_token_id, policy.merge_size)
    t = torch.tensor([ids])
    mm = (t == policy.image_token_id).int()
    ref, delta = policy.model.model.get_rope_index(t, mm, torch.tensor(grids) if grids else None)
    assert torch.equal(ours, ref[:, 0])
    assert nxt == int(ref.max()) + 1


@pytest.mark.parametrize("layout", LAYOUTS[1:])
def test_chunkwise_positions_equal_whole_sequence(layout):
    """Splitting anywhere outside an image and continuing from next_pos reproduces the whole."""
    policy = tiny_policy()
    ids, grids = _row(policy, layout)
    whole, _ = mrope_positions(ids, grids, policy.image_token_id, policy.merge_size)
    is_img = [i == policy.image_token_id for i in ids]
    for cut in range(1, len(ids)):
        if is_img[cut - 1] and is_img[cut]:
            continue
        n_before = sum(1 for k in range(1, cut + 1) if is_img[k - 1] and (k == cut or not is_img[k]))
        a, nxt = mrope_positions(ids[:cut], grids[:n_before], policy.image_token_id, policy.merge_size)
        b, _ = mrope_positions(ids[cut:], grids[n_before:], policy.image_token_id, policy.merge_size, start=nxt)
        assert torch.equal(torch.cat([a, b], 1), whole), cut


def test_grid_mismatch_is_an_error():
    policy = tiny_policy()
    ids, grids = _row(policy, [2, (1, 8, 8), 2])
    with pytest.raises(ValueError, match="does not match"):
        mrope_positions(ids, [(1, 4, 4)], policy.image_token_id, policy.merge_size)
    with pytest.raises(ValueError, match="more image grids"):
        mrope_positions(ids, grids + grids, policy.image_token_id, policy.merge_size)
    with pytest.raises(ValueError, match="more runs"):
        mrope_positions(ids, [], policy.image_token_id, policy.merge_size)


def test_batch_positions_with_padding_matches_get_rope_index():
    policy = tiny_policy()
    rows = [_row(policy, LAYOUTS[1]), _row(policy, LAYOUTS[2])]
    width = max(len(r[0]) for r in rows)
    pos = batch_positions(
        [r[0] for r in rows], [r[1] for r in rows], policy.image_token_id, policy.merge_size, width, left_pad=True
    )
    ids = torch.full((2, width), 0)
    mask = torch.zeros(2, width, dtype=torch.long)
    for b, (r, _) in enumerate(rows):
        ids[b, width - len(r) :] = torch.tensor(r)
        mask[b, width - len(r) :] = 1
    grids = torch.tensor([g for r in rows for g in r[1]])
    ref, _ = policy.model.model.get_rope_index(ids, (ids == policy.image_token_id).int(), grids, attention_mask=mask)
    assert torch.equal(pos * mask, ref * mask)
