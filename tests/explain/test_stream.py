"""The residual stream run again with edits: the same log-probs as a teacher-forced forward, on every Qwen family."""

import pytest
import torch

from r3lab.explain.crops import answer_logprobs, counterfactual_trajectory
from r3lab.explain.stream import Stream, target_positions
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_trajectory

FAMILIES = ("qwen2_5_vl", "qwen3_vl", "qwen3_5")


@pytest.fixture(scope="module", params=FAMILIES)
def fam(request):
    policy = build_tiny(TinyConfig(layers=2, seed=3), family=request.param)
    return policy, toy_trajectory(policy)


def test_stream_scores_equal_the_teacher_forced_forward(fam):
    policy, traj = fam
    s = Stream.of(policy, traj)
    pos = target_positions(policy, traj, traj.events[0], "answer")
    with torch.no_grad():
        got = float(s.score(s.embeds, pos)[0])
    assert got == pytest.approx(answer_logprobs(policy, [traj])[0], abs=1e-4)
    # k identical rows give k identical scores; a main image of n cells lies on its merged grid
    with torch.no_grad():
        rows = s.score(s.with_main(s.main_embeds()[None].repeat(3, 1, 1)), pos)
    assert torch.allclose(rows, rows[0].expand(3), atol=1e-5) and len(s.main_pos) == s.grid[0] * s.grid[1]


def test_targets_name_the_written_digits_the_read_and_the_answer(fam):
    policy, traj = fam
    ev = traj.events[0]
    ids = traj.input_ids()
    box = policy.decode([ids[p] for p in target_positions(policy, traj, ev, "box")])
    x1, y1, x2, y2 = (int(v) for v in ev.call.box)
    assert box == f"{x1}{y1}{x2}{y2}"
    assert policy.decode([ids[p] for p in target_positions(policy, traj, ev, "answer")]) == "red"
    assert policy.decode([ids[p] for p in target_positions(policy, traj, ev, "read")]).startswith(" The disc is red.")
    with pytest.raises(ValueError, match="choose from"):
        target_positions(policy, traj, ev, "nope")


def test_a_full_swap_is_the_counterfactual_itself(fam):
    policy, traj = fam
    s = Stream.of(policy, traj)
    cf = counterfactual_trajectory(policy, traj, 0, "blank")
    c = Stream.of(policy, cf)
    pos = target_positions(policy, traj, traj.events[0], "answer")
    everything = torch.ones(1, s.length, dtype=torch.bool)
    with torch.no_grad():
        e, ds = s.swapped(c, everything)
        swapped = float(s.score(e, pos, ds)[0])
        e0, ds0 = s.swapped(c, ~everything)
        kept = float(s.score(e0, pos, ds0)[0])
    assert swapped == pytest.approx(answer_logprobs(policy, [cf])[0], abs=1e-4)
    assert kept == pytest.approx(answer_logprobs(policy, [traj])[0], abs=1e-4)
    assert swapped != pytest.approx(kept, abs=1e-4)


def test_smolvlm_is_refused_with_the_reason():
    policy = build_tiny(TinyConfig(layers=1, seed=0), family="smolvlm")
    with pytest.raises(NotImplementedError, match="SmolVLM"):
        Stream.of(policy, toy_trajectory(policy))
