"""Every exercise check passes a right answer and says what is wrong with a wrong one."""
import json
from types import SimpleNamespace

import pytest

from r3lab.course import check
from r3lab.course.checks import CHECKS
from r3lab.train import MetricLog


def _verdict(capsys, key, *args, **kwargs):
    ok = check(key, *args, **kwargs)
    return ok, capsys.readouterr().out


def test_an_unknown_exercise_names_the_checks():
    with pytest.raises(KeyError, match="30.1"):
        check("99.9")


def test_a_check_called_with_the_wrong_things_says_what_it_takes(capsys):
    ok, out = _verdict(capsys, "30.4")
    assert not ok and "it takes check('30.4', kl_state, kl_log)" in out


def test_30_1_zero_std_shares(capsys):
    g2 = [1, 1, 0, 1, 0, 0, 1, 0]  # groups: (1,1) (0,1) (0,0) (1,0): two of four tie
    g8 = [1, 0, 1, 1, 0, 1, 1, 1]
    ok, out = _verdict(capsys, "30.1", g2, g8, 0.5, 0.0)
    assert ok and "G=2 50%, G=8 0% (G=2 ties more often)" in out
    ok, out = _verdict(capsys, "30.1", g2, g8, 0.25, 0.0)
    assert not ok and "G=2: 0.250 is not the share of zero-std groups" in out
    ok, out = _verdict(capsys, "30.1", g2[:7], g8, 0.5, 0.0)
    assert not ok and "whole groups of 2" in out


def test_30_2_several_updates(capsys):
    main = MetricLog([{"step": 1, "clip_frac": 0.0, "ratio_mean": 1.0, "frac_zero_std": 0.1}])
    clipped = MetricLog([{"step": 1, "clip_frac": 0.04, "ratio_mean": 1.02, "frac_zero_std": 0.1}])
    assert _verdict(capsys, "30.2", clipped, main)[0]
    ok, out = _verdict(capsys, "30.2", main, main)
    assert not ok and "made one update per batch" in out


def _scripted_group():
    import r3lab
    from r3lab.testing import tiny_policy

    policy = tiny_policy()
    sample = r3lab.build_samples(1, seed=0, families=["read_one"], view=policy.view, progress=False)[0]
    ref = [p.text for p in sample.rationale if p.kind == "model_text"]
    wrong = ref[:-1] + [ref[-1].replace(f"<answer>{sample.answer}</answer>", "<answer>purple</answer>")]
    scripts = [ref, wrong, [f"<think>I can tell.</think><answer>{sample.answer}</answer><|im_end|>"]]
    group = r3lab.rollout(policy, [sample], r3lab.RolloutConfig(group_size=3, max_new_tokens=96), scripts=scripts,
                          progress=False)
    return group, ["crop + right", "crop + wrong", "no crop + right"]


def test_30_3_which_answer_each_preset_prefers(capsys):
    group, labels = _scripted_group()
    assert _verdict(capsys, "30.3", group, labels, code="crop + right", paper="crop + right")[0]
    ok, out = _verdict(capsys, "30.3", group, labels, code="crop + wrong", paper="crop + right")
    assert not ok and "`code` does not score 'crop + wrong' highest" in out
    ok, out = _verdict(capsys, "30.3", group, labels, code="the best", paper="crop + right")
    assert not ok and "is not one of the labels" in out


def test_30_4_kl_to_the_start(capsys):
    log = MetricLog([{"step": 1, "kl": 0.0}, {"step": 2, "kl": 0.0004}, {"step": 3, "kl": 0.001}])
    assert _verdict(capsys, "30.4", SimpleNamespace(ref=object()), log)[0]
    ok, out = _verdict(capsys, "30.4", SimpleNamespace(ref=None), log)
    assert not ok and "set beta=0.05" in out
    flat = MetricLog([{"step": 1, "kl": 0.0}, {"step": 2, "kl": 0.0}])
    ok, out = _verdict(capsys, "30.4", SimpleNamespace(ref=object()), flat)
    assert not ok and "never rose" in out


def test_30_5_two_processes(capsys, tmp_path):
    out = tmp_path / "run"
    (out / "step_000004").mkdir(parents=True)
    (out / "step_000004" / "state.json").write_text("{}")
    (out / "latest").write_text("step_000004")
    (out / "log.jsonl").write_text("\n".join(json.dumps({"step": i}) for i in range(1, 5)) + "\n")
    assert _verdict(capsys, "30.5", out, steps=4)[0]
    ok, said = _verdict(capsys, "30.5", out, steps=8)
    assert not ok and "not step 8" in said
    ok, said = _verdict(capsys, "30.5", tmp_path / "nowhere")
    assert not ok and "does not exist" in said


def test_every_check_is_tested_here():
    import inspect
    import sys

    check("30.1", [0, 0], [0] * 8, 1.0, 1.0)  # registers every module's checks
    tested = set()
    for name, fn in inspect.getmembers(sys.modules[__name__], inspect.isfunction):
        if name.startswith("test_") and name[5:7].isdigit():
            tested.add(name[5:].split("_")[0] + "." + name[5:].split("_")[1])
    assert set(CHECKS) <= tested, f"checks without a right/wrong test: {sorted(set(CHECKS) - tested)}"


def test_20_1_frozen_vision(capsys):
    import copy

    import torch

    from r3lab.testing import tiny_policy

    base = tiny_policy()
    frozen = copy.deepcopy(base)
    with torch.no_grad():
        next(p for n, p in frozen.model.named_parameters() if "visual." not in n).add_(0.1)
    ok, out = _verdict(capsys, "20.1", frozen, base)
    assert ok and "the vision tower and the merger did not" in out
    with torch.no_grad():
        next(p for n, p in frozen.model.named_parameters() if "visual." in n and "merger" not in n).add_(0.1)
    ok, out = _verdict(capsys, "20.1", frozen, base)
    assert not ok and "set freeze_vision=True" in out
    ok, out = _verdict(capsys, "20.1", base, base)
    assert not ok and "did not move" in out


def test_20_2_gradient_accumulation(capsys):
    one = MetricLog([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}, {"step": 3, "loss": 1.2}])
    two = MetricLog([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5001}, {"step": 3, "loss": 1.2}])
    assert _verdict(capsys, "20.2", one, two)[0]
    other = MetricLog([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.4}, {"step": 3, "loss": 1.1}])
    ok, out = _verdict(capsys, "20.2", one, other)
    assert not ok and "change only grad_accum" in out


def test_20_3_resumed(capsys):
    whole = MetricLog([{"step": s, "loss": 2.0 - s / 10} for s in range(1, 5)])
    assert _verdict(capsys, "20.3", whole, MetricLog(whole.rows))[0]
    ok, out = _verdict(capsys, "20.3", whole, MetricLog(whole.rows[2:]))
    assert not ok and "differ from the uninterrupted run's" in out
    drift = MetricLog([{**r, "loss": r["loss"] + 0.01} for r in whole.rows])
    ok, out = _verdict(capsys, "20.3", whole, drift)
    assert not ok and "the losses differ" in out


def test_20_4_control_only(capsys):
    before, after = {"all": {"crop_rate": 0.62}}, {"all": {"crop_rate": 0.04}}
    ok, out = _verdict(capsys, "20.4", before, after, still_crops=False)
    assert ok and "62% -> 4%: it stopped cropping" in out
    ok, out = _verdict(capsys, "20.4", before, after, still_crops=True)
    assert not ok and "look again" in out
