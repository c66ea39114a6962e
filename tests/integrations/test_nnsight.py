"""A policy and a Trajectory handed to nnsight: the same activations as r3lab's, and an intervention written in
nnsight gives the number r3lab's own patching gives."""

import pytest
import torch

from r3lab.explain.crops import counterfactual_trajectory
from r3lab.explain.patching import layer_outputs, patch_layers
from r3lab.explain.stream import Stream
from r3lab.integrations import nnsight_bridge
from r3lab.integrations.nnsight_bridge import positions, trace_inputs, wrap
from r3lab.testing import toy_trajectory

pytest.importorskip("nnsight", reason="nnsight is the `nnsight` extra: pip install 'r3lab[nnsight]'")


def test_a_crop_patched_in_nnsight_equals_r3labs_patching(policy):
    traj = toy_trajectory(policy)
    where = positions(policy, traj)
    ids = traj.input_ids()
    assert len(where["main"]) and len(where["crop/0"]) and where["answer"]
    assert policy.decode([ids[p] for p in where["box/0"]]) == "".join(str(int(v)) for v in traj.events[0].call.box)
    cf = counterfactual_trajectory(policy, traj, 0, "blank")
    s, c = Stream.of(policy, traj), Stream.of(policy, cf)
    crop = torch.tensor(where["crop/0"])
    mask = torch.zeros(s.length, dtype=torch.bool)
    mask[crop] = True
    ours = patch_layers(s, c, mask, {"answer": where["answer"]}, reuse=False)
    blank_l0 = layer_outputs(c, c.embeds)[0][0, crop]

    lm = wrap(policy)
    with lm.trace(**trace_inputs(policy, traj)):
        clean_l1 = lm.model.language_model.layers[1].output.save()
    with lm.trace(**trace_inputs(policy, traj)):
        lm.model.language_model.layers[0].output[0, crop] = blank_l0
        logits = lm.output.logits.save()
    assert torch.allclose(clean_l1, layer_outputs(s, s.embeds)[1], atol=1e-4)
    lp = torch.log_softmax(logits[0].float(), -1)
    ids = torch.tensor(traj.input_ids())
    got = sum(float(lp[p - 1, ids[p]]) for p in where["answer"])
    assert got == pytest.approx(ours["patched"]["answer"][1], abs=1e-3)  # level 1 = after layer 0


def test_missing_nnsight_and_bad_input_are_named(policy, monkeypatch):
    with pytest.raises(TypeError, match="Trajectory"):
        trace_inputs(policy, {"pieces": []})
    monkeypatch.setattr(
        nnsight_bridge, "nnsight_missing", lambda: "nnsight is not installed: pip install 'r3lab[nnsight]'"
    )
    with pytest.raises(ImportError, match=r"r3lab\[nnsight\]"):
        wrap(policy)
