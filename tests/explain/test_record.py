"""One CropRecord per crop event with every method, and the bad inputs: no crop, unknown method, a family that
lacks a method, no ground truth."""

import json

import pytest

from r3lab.core.trajectory import Trajectory
from r3lab.explain.record import METHODS, CropRecord, WhyConfig, explain
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_trajectory

FAST = dict(steps=4, chunk=16, curve_steps=2)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "qwen3_5"])
def test_every_method_on_every_qwen_family(family):
    policy = build_tiny(TinyConfig(layers=2, seed=2), family=family)
    traj, other = toy_trajectory(policy), toy_trajectory(policy, crop="square")
    (rec,) = explain(policy, traj, other=other, targets=("box", "answer"), **FAST)
    assert set(rec.methods) == set(METHODS)
    for m in ("attention", "gradient_x_input", "integrated_gradients", "patching"):
        for t in ("box", "answer"):
            r = rec.result(m, t)
            assert r.available, r.reason
            assert tuple(rec.map(m, t).shape) == rec.grid
    pl = rec.result("patch_layers", None).data
    assert {"crop:blank", "crop:coarse", "crop:other", "region:blank"} <= set(pl)
    assert len(pl["region:blank"]["effect"]["box"]) == 3  # input + 2 layers
    assert rec.result("logit_lens", "box").data["tokens"]
    assert set(rec.faithfulness) == {"attention", "gradient_x_input", "integrated_gradients", "patching", "random"}
    assert rec.landmark is not None and rec.gt_iou > 0.9
    back = CropRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back.map("patching", "box").tolist() == rec.map("patching", "box").tolist() and back.box == rec.box


def test_bad_input_is_named_or_recorded(policy):
    traj = toy_trajectory(policy)
    with pytest.raises(ValueError, match="unknown explanation method.*saliency"):
        WhyConfig(methods=("attention", "saliency"))
    with pytest.raises(ValueError, match="unknown target"):
        WhyConfig(targets=("why",))
    with pytest.raises(ValueError, match="steps"):
        WhyConfig(steps=0)
    assert WhyConfig(methods="attention, logit_lens").methods == ("attention", "logit_lens")
    # no crop: nothing to explain
    bare = Trajectory(traj.pieces[:3], question=traj.question, answers=traj.answers).tokenize(policy)
    assert explain(policy, bare) == []
    # no ground truth: the pointing game is not available, the curves still are
    blind = traj.copy()
    blind.gt_boxes = []
    (rec,) = explain(policy, blind, methods=("attention", "patching"), targets=("box",), swaps=(), **FAST)
    assert rec.landmark is None and rec.faithfulness["patching"]["pointing_game"] is None
    assert rec.faithfulness["random"]["deletion_auc"] is not None and any("pointing" in n for n in rec.notes)
    # "other" swap without another trajectory: recorded, not raised
    (rec,) = explain(policy, traj, methods=("patch_layers",), swaps=("other",), faithfulness=False)
    assert any("other" in n for n in rec.result("patch_layers", None).data["notes"])


def test_attention_on_linear_layers_and_smolvlm_are_not_available():
    hybrid = build_tiny(TinyConfig(layers=2, seed=2), family="qwen3_5")  # layer 0 is Gated DeltaNet
    (rec,) = explain(hybrid, toy_trajectory(hybrid), methods=("attention",), attention_layers=(0,), targets=("box",),
                     faithfulness=False)
    r = rec.result("attention", "box")
    assert not r.available and "linear-attention" in r.reason
    smol = build_tiny(TinyConfig(layers=1, seed=0), family="smolvlm")
    (rec,) = explain(smol, toy_trajectory(smol), methods=("patching", "logit_lens"), targets=("box",))
    assert not rec.result("patching", "box").available and "SmolVLM" in rec.result("logit_lens", "box").reason


def test_bfloat16_runs_every_method():
    import torch

    policy = build_tiny(TinyConfig(layers=2, seed=5))
    policy.model.to(torch.bfloat16)  # the GPU dtype; on CPU it checks that no step mixes dtypes
    (rec,) = explain(policy, toy_trajectory(policy), other=toy_trajectory(policy, crop="square"), targets=("box",),
                     **FAST)
    bad = [(m, r.reason) for m, d in rec.methods.items() for r in d.values() if not r.available]
    assert not bad and all(v["deletion_auc"] >= 0 for v in rec.faithfulness.values())
