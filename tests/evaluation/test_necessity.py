"""Tool necessity: the keys every family's row gets, computed from known trajectories and from a real run."""

import math

import pytest
from PIL import Image

from r3lab.core.crop_calls import format_crop_call
from r3lab.engine.config import RolloutConfig
from r3lab.engine.rollouts import rollout
from r3lab.evaluation.evaluation import EvalConfig, evaluate
from r3lab.evaluation.necessity import KEYS, VARIANTS, necessity_rows, necessity_table, needs_crop
from r3lab.testing import tiny_policy, toy_samples


def _refs(policy, samples, wrong=(), crop=True):
    out = []
    for i, s in enumerate(samples):
        t = s.reference(policy.view, policy.prompt).tokenize(policy)
        if i in wrong:
            t.pieces[-1].text = t.pieces[-1].text.replace(f"<answer>{s.answers[0]}</answer>", "<answer>purple</answer>")
        if not crop:
            t.pieces = t.pieces[:3] + t.pieces[-1:]
            t.events = []
        out.append(t)
    return out


def test_rows_from_known_trajectories():
    policy = tiny_policy()
    samples = toy_samples(4, policy.view)
    samples[3].family = "control"
    own = _refs(policy, samples, wrong=(2,))  # right on 0, 1, 3
    abl = {
        "no_crop": _refs(policy, samples, wrong=(0, 1), crop=False),  # right on 2, 3 without crops
        "blank": _refs(policy, samples, wrong=(0, 1, 2, 3)),
        "coarse": _refs(policy, samples, wrong=(0,)),
        "random_box": _refs(policy, samples, wrong=(1,)),
        "gt_box": _refs(policy, samples),
    }
    rows = necessity_rows(samples, own, abl)
    a = rows["all"]
    assert set(KEYS) <= set(a) and set(rows) == {"read_one", "control", "all"}
    assert a["acc_own"] == 0.75 and a["acc_no_crop"] == 0.5 and a["acc_blank"] == 0.0 and a["acc_gt_box"] == 1.0
    assert a["tool_gain"] == 0.5  # samples 0 and 1: wrong without crops, right with
    assert a["tool_harm"] == 0.25  # sample 2: right without, wrong with
    assert a["zooming_gap"] == pytest.approx(0.5)
    assert a["crop_rate_need"] == 1.0 and a["crop_rate_no_need"] == 1.0  # the control sample cropped too
    assert math.isnan(rows["read_one"]["crop_rate_no_need"]) and rows["control"]["crop_rate_need"] != 0.5
    assert needs_crop(samples[0]) and not needs_crop(samples[3])


def test_crop_images_swap_what_a_crop_shows():
    policy = tiny_policy()
    (s,) = toy_samples(1, policy.view)
    grey = Image.new("RGB", (10, 10), (128, 128, 128))
    script = [" look", format_crop_call((10, 10, 120, 90)), " ok"]
    seen = []

    def swap(sample, k, piece, traj):
        seen.append((sample.sample_id, k, piece.info.role))
        return grey

    (t,) = rollout(
        policy,
        [s],
        RolloutConfig(greedy=True, max_new_tokens=40),
        group_size=1,
        scripts=[script],
        crop_images=swap,
        progress=False,
    )
    (crop,) = t.crops
    assert seen == [(s.sample_id, 0, "crop")] and crop.image.size == tuple(crop.info.input_size)
    assert crop.image.getextrema() == ((128, 128),) * 3 and t.events[0].ok


def test_evaluate_with_necessity_adds_the_keys_to_every_row():
    policy = tiny_policy()
    samples = toy_samples(2, policy.view)
    cfg = EvalConfig(rollout={"max_new_tokens": 6, "max_segment_tokens": 6}, necessity=True)
    res = evaluate(policy, samples, cfg, progress=False)
    for fam, row in res.rows.items():
        assert set(KEYS) <= set(row), fam
    assert res["all"]["acc_own"] == res["all"]["accuracy"]
    assert len(VARIANTS) == 5 and "acc_coarse" in res.to_dict()["rows"]["all"]


def test_table_counts_only_the_samples_an_ablation_ran_on():
    # four questions in two categories; the box ablations ran on the two with a target box (None elsewhere)
    acc = {
        "own": [1, 0, 1, 1],
        "no_crop": [0, 1, 1, 0],
        "blank": [0, 0, 0, 0],
        "coarse": [1, 0, 0, 1],
        "random_box": [0, None, 1, None],
        "gt_box": [1, None, 1, None],
    }
    rows = necessity_table(["a", "a", "b", "b"], acc, [True, False, True, False], [True, None, True, False])
    a = rows["all"]
    assert a["acc_own"] == 0.75 and a["acc_random_box"] == 0.5 and a["acc_gt_box"] == 1.0
    assert a["tool_gain"] == 0.5 and a["tool_harm"] == 0.25  # questions 0, 3 gained; 1 was harmed
    assert a["zooming_gap"] == 0.5  # on questions 0 and 2: gt_box (1, 1) against no crop (0, 1)
    assert a["crop_rate_need"] == 1.0 and a["crop_rate_no_need"] == 0.0  # question 1's need is unknown: not counted
    assert math.isnan(rows["a"]["crop_rate_no_need"]) and rows["b"]["zooming_gap"] == 0.0
    only = necessity_table(["a"], {"own": [1]}, [False], [None])["a"]  # no ablation run: "not available"
    assert only["acc_own"] == 1.0 and all(math.isnan(only[k]) for k in KEYS if k != "acc_own")
    with pytest.raises(ValueError, match="one entry per sample"):
        necessity_table(["a", "b"], {"own": [1]}, [True, True], [True, True])
