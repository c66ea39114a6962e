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
    for bad, said in [
        ({"window": "x"}, r"WhyConfig.window = 'x' is not allowed: expected an integer in \[0, 65536\]"),
        ({"steps": 10**9}, r"steps = 1000000000 .* forward and backward pass"),
        ({"iou": float("nan")}, "WhyConfig.iou = nan"),
        ({"recompute": "yes"}, "expected true or false"),
    ]:
        with pytest.raises(ValueError, match=said):
            WhyConfig(**bad)
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
    (rec,) = explain(
        hybrid,
        toy_trajectory(hybrid),
        methods=("attention",),
        attention_layers=(0,),
        targets=("box",),
        faithfulness=False,
    )
    r = rec.result("attention", "box")
    assert not r.available and "linear-attention" in r.reason
    smol = build_tiny(TinyConfig(layers=1, seed=0), family="smolvlm")
    (rec,) = explain(smol, toy_trajectory(smol), methods=("patching", "logit_lens"), targets=("box",))
    assert not rec.result("patching", "box").available and "SmolVLM" in rec.result("logit_lens", "box").reason


def test_bfloat16_runs_every_method():
    import torch

    policy = build_tiny(TinyConfig(layers=2, seed=5))
    policy.model.to(torch.bfloat16)  # the GPU dtype; on CPU it checks that no step mixes dtypes
    (rec,) = explain(
        policy, toy_trajectory(policy), other=toy_trajectory(policy, crop="square"), targets=("box",), **FAST
    )
    bad = [(m, r.reason) for m, d in rec.methods.items() for r in d.values() if not r.available]
    assert not bad and all(v["deletion_auc"] >= 0 for v in rec.faithfulness.values())


METHOD = '''
"""A map that is the written box itself: 1 on the main image's cells inside it (a baseline a real method must beat)."""
from r3lab.explain import faithfulness
from r3lab.explain.contract import MethodResult


def run(name, call):
    box, stream = call.event.call.box, call.stream
    xy = faithfulness.cell_centres(stream.grid, stream.cell)
    inside = (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[3])
    return [MethodResult(name, t, map=inside.float().reshape(stream.grid).tolist()) for t in call.config.targets]
'''


def test_a_new_method_is_one_module_and_one_registration(policy, tmp_path, monkeypatch):
    from r3lab.explain.contract import METHODS, Method, map_methods
    from r3lab.explain.crops import crop_table

    (tmp_path / "box_prior.py").write_text(METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(METHODS, "box_prior", Method("box_prior", map=True))  # the one registration
    assert "box_prior" in map_methods()
    (rec,) = explain(
        policy, toy_trajectory(policy), WhyConfig(methods=("attention", "box_prior"), targets=("box",), **FAST)
    )
    r = rec.result("box_prior", "box")
    assert r.available and tuple(rec.map("box_prior", "box").shape) == rec.grid and rec.map("box_prior").sum() > 0
    assert rec.faithfulness["box_prior"]["pointing_game"] == 1.0  # the box is on the landmark: it points there
    assert "box prior" in crop_table([rec]).splitlines()[0]  # the table's column follows


def test_an_unregistered_method_is_an_error_never_another_method_s_result(policy):
    from r3lab.explain.contract import Call
    from r3lab.explain.record import run_method

    traj = toy_trajectory(policy)
    call = Call(policy, traj, None, None, traj.events[0], 0, {}, WhyConfig())
    with pytest.raises(ValueError, match=r"no per-call explanation method 'saliency'.*contract\.METHODS"):
        run_method("saliency", call)
    [na] = run_method("logit_lens", call, "no residual stream here")  # registered, but nothing to run it on
    assert not na.available and na.reason == "no residual stream here" and na.target == "box"


def test_a_record_written_before_its_parts_were_nested_reads_into_them(policy):
    (rec,) = explain(policy, toy_trajectory(policy), WhyConfig.quick())
    d = rec.to_dict()
    a, imp = d.pop("attention"), d.pop("importance")
    old = {
        **d,
        **{k: a[k] for k in ("mass_in_box", "concentration", "top_regions", "gt_mass", "top_in_gt")},
        "mass_outside": 1 - a["mass_in_box"],
        "attention_box": a["vs_box"],
        "logp": imp["logp"],
        "logp_variants": {("wrong" if k == "other" else k): v for k, v in imp["swapped"].items()},
        "importance": {("wrong" if k == "other" else k): v for k, v in imp["effect"].items()},
    }
    back, now = (CropRecord.from_dict(json.loads(json.dumps(d))) for d in (old, rec.to_dict()))
    assert back.attention == now.attention and back.importance == now.importance and back.attention is not None
