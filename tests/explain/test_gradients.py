"""Integrated gradients and gradient x input onto the main image's cells, through captum."""

import pytest
import torch

from r3lab.explain import gradients
from r3lab.explain.gradients import attribute
from r3lab.explain.patching import painted
from r3lab.explain.stream import Stream, target_positions
from r3lab.testing import toy_trajectory

pytest.importorskip("captum", reason="captum is the `explain` extra: pip install 'r3lab[explain]'")


@pytest.fixture(scope="module")
def setup(policy):
    traj = toy_trajectory(policy)
    return Stream.of(policy, traj), target_positions(policy, traj, traj.events[0], "box")


def test_integrated_gradients_are_complete(setup, policy):
    s, pos = setup
    traj = s.traj
    # from a blank image's embeddings, as `explain` integrates (zeros are far off the embeddings' scale: RMSNorm
    # makes that path so curved that 128 steps still miss the total by 2%)
    base = Stream.of(policy, painted(traj, None)).main_embeds()
    ig = attribute(s, pos, "integrated_gradients", baseline=base, steps=16, chunk=8)
    with torch.no_grad():
        gap = float(s.score(s.embeds, pos)[0] - s.score(s.with_main(base[None]), pos)[0])
    assert ig.shape == s.grid
    assert float(ig.sum()) == pytest.approx(gap, rel=1e-3, abs=1e-3)  # completeness: sum = f(x) - f(baseline)


def test_gradient_x_input_is_the_gradient_times_the_embeddings(setup, policy):
    s, pos = setup
    gxi = attribute(s, pos, "gradient_x_input")
    x = s.main_embeds()[None].clone().requires_grad_(True)
    for p in policy.model.parameters():
        p.requires_grad_(False)
    try:
        s.score(s.with_main(x), pos).sum().backward()
    finally:
        for p in policy.model.parameters():
            p.requires_grad_(True)
    assert torch.allclose(gxi.reshape(-1), (x.grad * x.detach())[0].sum(-1), atol=1e-5)
    # parameters keep requires_grad and receive no gradient from an attribution
    assert all(p.requires_grad for p in policy.model.parameters())
    assert all(p.grad is None for p in policy.model.parameters())


def test_bad_arguments_and_missing_captum(setup, monkeypatch):
    s, pos = setup
    with pytest.raises(ValueError, match="choose from"):
        attribute(s, pos, "saliency")
    with pytest.raises(ValueError, match="no target tokens"):
        attribute(s, [], "gradient_x_input")
    monkeypatch.setattr(gradients, "captum_missing", lambda: "captum is not installed: pip install 'r3lab[explain]'")
    with pytest.raises(ImportError, match=r"r3lab\[explain\]"):
        attribute(s, pos, "gradient_x_input")


def test_recompute_gives_the_same_attributions_and_leaves_the_model_as_it_was(setup, policy, monkeypatch):
    s, pos = setup
    base = Stream.of(policy, painted(s.traj, None)).main_embeds()
    plain = attribute(s, pos, "integrated_gradients", baseline=base, steps=4, chunk=2)
    calls, real = [], torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = attribute(s, pos, "integrated_gradients", baseline=base, steps=4, chunk=2, recompute=True)
    assert torch.allclose(plain, again, atol=1e-5)
    assert len(calls) == 2 * policy.model.config.text_config.num_hidden_layers  # every layer, in both passes
    layers = [m for m in policy.model.modules() if hasattr(m, "gradient_checkpointing")]
    assert layers and not any(m.gradient_checkpointing or m.training for m in layers)
