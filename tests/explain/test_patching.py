"""Activation patching level by level, the patching map, and the logit lens."""

import pytest
import torch

from r3lab.core.batch import collate
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.explain.crops import answer_logprobs, counterfactual_trajectory
from r3lab.explain.lens import logit_lens
from r3lab.explain.patching import cell_blocks, painted, patch_layers, patch_map
from r3lab.explain.stream import Stream, target_positions
from r3lab.testing import toy_trajectory


@pytest.fixture(scope="module")
def setup(policy):
    traj = toy_trajectory(policy)
    return traj, Stream.of(policy, traj)


def _crop_mask(policy, traj, s):
    ev = traj.events[0]
    a = sum(len(p.ids) for p in traj.pieces[: ev.image_piece])
    m = torch.zeros(s.length, dtype=torch.bool)
    m[[a + i for i, t in enumerate(traj.pieces[ev.image_piece].ids) if t == policy.image_token_id]] = True
    return m


def test_patching_levels(policy, setup):
    traj, s = setup
    cf = counterfactual_trajectory(policy, traj, 0, "blank")
    pos = {
        "answer": target_positions(policy, traj, traj.events[0], "answer"),
        "read": target_positions(policy, traj, traj.events[0], "read"),
    }
    out = patch_layers(s, Stream.of(policy, cf), _crop_mask(policy, traj, s), pos, chunk=2)
    n = s.parts.n_layers
    assert out["levels"] == ["input", *range(n)] and out["patched_tokens"] == len(traj.crops[0].ids) - 2
    # at the input, patching every crop token is the counterfactual trajectory itself
    assert out["clean"]["answer"] == pytest.approx(answer_logprobs(policy, [traj])[0], abs=1e-4)
    assert out["patched"]["answer"][0] == pytest.approx(answer_logprobs(policy, [cf])[0], abs=1e-4)
    # after the last layer nothing downstream reads the crop's tokens any more
    assert out["effect"]["answer"][-1] == pytest.approx(0.0, abs=1e-5)
    assert out["effect"]["read"][-1] == pytest.approx(0.0, abs=1e-5)
    assert any(abs(v) > 1e-4 for v in out["effect"]["read"][:-1])
    with pytest.raises(ValueError, match="empty"):
        patch_layers(s, s, torch.zeros(s.length, dtype=torch.bool), pos)


def test_patching_map_is_the_drop_when_a_cell_is_blanked(policy, setup):
    traj, s = setup
    blank = Stream.of(policy, painted(traj, None))
    pos = target_positions(policy, traj, traj.events[0], "box")
    m = patch_map(s, blank, pos, block=1, chunk=5)
    assert m.shape == s.grid
    cell = torch.zeros(1, len(s.main_pos), dtype=torch.bool)
    cell[0, 3] = True
    e, ds = s.swapped(blank, s.main_mask(cell))
    with torch.no_grad():
        drop = float(s.score(s.embeds, pos)[0] - s.score(e, pos, ds)[0])
    assert float(m.reshape(-1)[3]) == pytest.approx(drop, abs=1e-4)
    blocks = cell_blocks(s.grid, 2)
    assert blocks.sum(0).eq(1).all()  # a partition of the cells
    with pytest.raises(ValueError, match="block"):
        cell_blocks(s.grid, 0)


def test_logit_lens_last_layer_is_the_model(policy, setup):
    traj, s = setup
    pos = target_positions(policy, traj, traj.events[0], "box")
    lens = logit_lens(s, pos)
    assert len(lens["rank"]) == len(pos) and all(len(r) == s.parts.n_layers for r in lens["rank"])
    batch = collate([traj], policy)
    mask = torch.zeros_like(batch["loss_mask"])
    mask[0, pos] = True
    with torch.no_grad():
        lp = token_logprobs(TokenScorer(policy.model), batch, mask=mask)[0, pos]
    assert [r[-1] for r in lens["prob"]] == pytest.approx(lp.exp().tolist(), rel=1e-3)
    for ranks, settled in zip(lens["rank"], lens["settled"]):
        if settled is not None:
            assert all(r == 0 for r in ranks[settled:]) and (settled == 0 or ranks[settled - 1] > 0)
        else:
            assert ranks[-1] > 0
    with pytest.raises(ValueError, match="no box-coordinate"):
        logit_lens(s, [])


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen3_5"])
def test_reusing_the_prefix_changes_no_number(family):
    from r3lab.model.tiny import TinyConfig, build_tiny

    policy = build_tiny(TinyConfig(layers=2, seed=4), family=family)
    traj = toy_trajectory(policy)
    s = Stream.of(policy, traj)
    cf = Stream.of(policy, counterfactual_trajectory(policy, traj, 0, "coarse"))
    ev = traj.events[0]
    tg = {"read": target_positions(policy, traj, ev, "read"), "answer": target_positions(policy, traj, ev, "answer")}
    fast = patch_layers(s, cf, _crop_mask(policy, traj, s), tg, chunk=2, reuse=True)
    slow = patch_layers(s, cf, _crop_mask(policy, traj, s), tg, chunk=3, reuse=False)
    assert slow["reused_prefix"] == 0 and (fast["reused_prefix"] > 0) == (family != "qwen3_5")
    for t in tg:
        assert fast["patched"][t] == pytest.approx(slow["patched"][t], abs=1e-3)
        assert fast["clean"][t] == pytest.approx(slow["clean"][t], abs=1e-3)
