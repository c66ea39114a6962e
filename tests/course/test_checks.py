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


def test_an_unknown_exercise_names_the_checks(capsys):
    for key in ("99.9", None, 5):
        ok, out = _verdict(capsys, key)
        assert not ok and out.startswith("✗ no check for exercise") and "30.1" in out


def test_a_check_called_with_the_wrong_things_says_what_it_takes(capsys):
    ok, out = _verdict(capsys, "30.4")
    assert not ok and "it takes check('30.4', kl_state, kl_log)" in out


def test_a_hint_quoting_a_huge_argument_stays_a_line(capsys):
    """The fuzzer's find: 47.2's hint names the family it was given, here 70,000 characters."""
    ok, out = _verdict(capsys, "47.2", None, None, None, "A" * 70_000)
    assert not ok and out.startswith("✗ exercise 47.2 not yet: no audited AAA") and "(70,0" in out
    assert len(out) < 2_200


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
    group = r3lab.rollout(
        policy, [sample], r3lab.RolloutConfig(group_size=3, max_new_tokens=96), scripts=scripts, progress=False
    )
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
    for name, _fn in inspect.getmembers(sys.modules[__name__], inspect.isfunction):
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


def _log(rows, grad_accum=1, resumed_at=None, **settings):
    return MetricLog(
        rows, settings={"grad_accum": grad_accum, "seed": 0, "out_dir": "", **settings}, resumed_at=resumed_at
    )


def test_20_2_gradient_accumulation(capsys):
    one = _log([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}, {"step": 3, "loss": 1.2}])
    two = _log([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5001}, {"step": 3, "loss": 1.2}], grad_accum=2)
    assert _verdict(capsys, "20.2", one, two)[0]
    other = _log([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.4}, {"step": 3, "loss": 1.1}], grad_accum=2)
    ok, out = _verdict(capsys, "20.2", one, other)
    assert not ok and "change only grad_accum" in out
    for a, b, said in (
        (one, one, "both logs are of runs with grad_accum = 1"),  # the lesson's log twice
        (one, _log(two.rows, seed=1, grad_accum=2), "differ in seed too"),
        (one.rows, two.rows, "the MetricLog train_sft returned"),
    ):
        ok, out = _verdict(capsys, "20.2", a, b)
        assert not ok and said in out, out


def test_20_3_resumed(capsys):
    whole = _log([{"step": s, "loss": 2.0 - s / 10} for s in range(1, 5)])
    assert _verdict(capsys, "20.3", whole, _log(whole.rows, resumed_at=2))[0]
    ok, out = _verdict(capsys, "20.3", whole, whole)  # the same log twice: nothing was resumed
    assert not ok and "did not resume" in out
    ok, out = _verdict(capsys, "20.3", whole, _log(whole.rows[2:], resumed_at=2))
    assert not ok and "differ from the uninterrupted run's" in out
    drift = _log([{**r, "loss": r["loss"] + 0.01} for r in whole.rows], resumed_at=2)
    ok, out = _verdict(capsys, "20.3", whole, drift)
    assert not ok and "the losses differ" in out


def test_20_2_and_20_3_pass_real_runs_and_fail_the_lessons_log_twice(tmp_path, capsys):
    """What the lesson does, at toy sizes: the training loop records what each log is of."""
    import copy

    from r3lab.testing import tiny_policy, toy_samples
    from r3lab.train.config import SFTConfig
    from r3lab.train.sft import train

    base = tiny_policy(fresh=True)
    data = toy_samples(4, base.view)
    kw = dict(batch_size=4, lr_lm=1e-2, warmup=0, seed=3)
    logs = {a: train(copy.deepcopy(base), data, SFTConfig(steps=2, grad_accum=a, **kw)) for a in (1, 2)}
    assert _verdict(capsys, "20.2", logs[1], logs[2])[0]
    assert not _verdict(capsys, "20.2", logs[1], logs[1])[0]
    whole = train(copy.deepcopy(base), data, SFTConfig(steps=2, out_dir=str(tmp_path / "w"), **kw))
    train(copy.deepcopy(base), data, SFTConfig(steps=1, out_dir=str(tmp_path / "h"), **kw))
    resumed = train(copy.deepcopy(base), data, SFTConfig(steps=2, out_dir=str(tmp_path / "h"), resume=True, **kw))
    assert resumed.resumed_at == 1 and whole.resumed_at is None
    assert _verdict(capsys, "20.3", whole, resumed)[0]
    assert not _verdict(capsys, "20.3", whole, whole)[0]


def test_20_4_control_only(capsys):
    before, after = {"all": {"crop_rate": 0.62}}, {"all": {"crop_rate": 0.04}}
    ok, out = _verdict(capsys, "20.4", before, after, crops_less=True)
    assert ok and "62% -> 4%: it crops less" in out
    ok, out = _verdict(capsys, "20.4", before, after, crops_less=False)
    assert not ok and "look again" in out


def _summary(**pointing):
    return {
        "methods": {
            m: {"pointing_game": v, "deletion_auc": 0.2, "insertion_auc": 0.5, "n": 10} for m, v in pointing.items()
        }
    }


def _records(points):
    """Records whose attention pointing game is `points` (0/1 per crop), other methods fixed."""
    return [
        SimpleNamespace(
            faithfulness={
                "attention": {"pointing_game": p, "deletion_auc": 0.2, "insertion_auc": 0.5},
                "random": {"pointing_game": 0.05, "deletion_auc": 0.25, "insertion_auc": 0.4},
            }
        )
        for p in points
    ]


def test_45_1_interval_by_hand(capsys):
    import numpy as np

    recs = _records([1] * 14 + [0] * 6)
    rng = np.random.default_rng(0)
    vals = np.array([1.0] * 14 + [0.0] * 6)
    boot = vals[rng.integers(0, 20, size=(2000, 20))].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    ok, out = _verdict(capsys, "45.1", recs, (lo, hi), method="attention")
    assert ok and "attention's pointing game 0.70" in out
    ok, out = _verdict(capsys, "45.1", recs, (0.69, 0.71), method="attention")  # the mean, not an interval
    assert not ok and "far from the percentile bootstrap" in out
    ok, out = _verdict(capsys, "45.1", recs, (0.8, 0.9), method="attention")
    assert not ok and "does not hold the mean" in out
    ok, out = _verdict(capsys, "45.1", recs, (lo, hi))  # integrated gradients by default: not in these records
    assert not ok and "no 'integrated_gradients'" in out


def test_45_2_patching_cell_by_cell(capsys):
    blocks, cells = _summary(patching=0.4, random=0.05), _summary(patching=0.6, random=0.05)
    assert _verdict(capsys, "45.2", cells, blocks, rises=True)[0]
    ok, out = _verdict(capsys, "45.2", cells, blocks, rises=False)
    assert not ok and "0.40 -> 0.60" in out
    ok, out = _verdict(capsys, "45.2", blocks, blocks, rises=False)
    assert not ok and "block=1" in out


def test_45_3_the_read_as_target(capsys):
    read = _summary(attention=0.5, integrated_gradients=0.7, patching=0.3, random=0.05)
    assert _verdict(capsys, "45.3", read, "integrated_gradients")[0]
    ok, out = _verdict(capsys, "45.3", read, "attention")
    assert not ok and "another method does so in 70%" in out
    ok, out = _verdict(capsys, "45.3", read, "saliency")
    assert not ok and "not one of the methods" in out


def test_45_4_first_layer_attention(capsys):
    layer0 = _summary(attention=0.1, random=0.05)
    assert _verdict(capsys, "45.4", layer0, above_random=True)[0]
    ok, out = _verdict(capsys, "45.4", layer0, above_random=False)
    assert not ok and "look again" in out


def _fam(acc, iou=0.8, lo=None, hi=None, crop_rate=1.0):
    return {
        "accuracy": acc,
        "crop_iou": iou,
        "crop_iou_lo": iou - 0.01 if lo is None else lo,
        "crop_iou_hi": iou + 0.01 if hi is None else hi,
        "crop_rate": crop_rate,
    }


def test_50_1_iou_without_region(capsys):
    sft = {"all": _fam(0.8, 0.81)}
    same, moved = {"all": _fam(0.9, 0.815)}, {"all": _fam(0.9, 0.86)}
    assert _verdict(capsys, "50.1", sft, same, iou_moved=False)[0]
    assert _verdict(capsys, "50.1", sft, moved, iou_moved=True)[0]
    ok, out = _verdict(capsys, "50.1", sft, same, iou_moved=True)
    assert not ok and "do the intervals overlap" in out


def test_50_2_gain_in_numbers(capsys):
    card = {
        "rows": {
            "sft": {"read_one": _fam(0.80, 0.82)},
            "sft_rgrpo": {"read_one": _fam(0.96, 0.83)},
            "oracle": {"read_one": _fam(0.81, 0.92)},
        }
    }
    assert _verdict(capsys, "50.2", card, read_gain=16, iou_change=0.01, oracle_gap=1)[0]
    ok, out = _verdict(capsys, "50.2", card, read_gain=0.16, iou_change=0.01, oracle_gap=1)
    assert not ok and "read_gain = 0.160 is off (in points" in out


def test_50_3_no_looking_again(capsys):
    with_crops = {"read_one": _fam(0.8), "compare_two": _fam(0.9), "control": _fam(0.95), "all": _fam(0.88)}
    without = {"read_one": _fam(0.2), "compare_two": _fam(0.5), "control": _fam(0.95), "all": _fam(0.5, crop_rate=0.0)}
    ok, out = _verdict(capsys, "50.3", with_crops, without, lost_most="read_one")
    assert ok and "read_one 60" in out
    ok, out = _verdict(capsys, "50.3", with_crops, without, lost_most="control")
    assert not ok and "read_one lost 60" in out
    ok, out = _verdict(capsys, "50.3", with_crops, with_crops, lost_most="read_one")
    assert not ok and "max_crops=0" in out


def test_50_4_a_kl_term_read_over_seeds(capsys, tmp_path):
    from r3lab.testing.mini_sweeps import write_mini_sweep

    clear = write_mini_sweep(tmp_path / "clear", values=[0.0, 0.05], setting="beta", questions=60, effect=0.4)
    ok, out = _verdict(capsys, "50.4", clear, more_than_noise=True)
    assert ok and "more than the seeds' noise" in out and "3 seeds x 20 questions" in out
    none = write_mini_sweep(tmp_path / "none", values=[0.0, 0.05], setting="beta", questions=60, effect=0.0)
    ok, out = _verdict(capsys, "50.4", none, more_than_noise=True)
    assert not ok and "Holm p" in out and "look again" in out.lower()
    assert _verdict(capsys, "50.4", str(none), more_than_noise=False)[0]


def test_50_5_longer_sft(capsys, tmp_path):
    card = {"rows": {"sft": {"read_one": _fam(0.80)}, "oracle": {"read_one": _fam(0.82)}}}
    run = tmp_path / "results.json"
    run.write_text(json.dumps({"rows": {"sft": {"read_one": _fam(0.90)}, "oracle": {"read_one": _fam(0.91)}}}))
    assert _verdict(capsys, "50.5", run, card, taught="reading")[0]
    ok, out = _verdict(capsys, "50.5", run, card, taught="looking")
    assert not ok and "+10.0 points and the oracle row +9.0" in out
    ok, out = _verdict(capsys, "50.5", tmp_path / "none.json", card, taught="reading")
    assert not ok and "does not exist" in out


def _explained():
    from r3lab.explain.record import WhyConfig
    from r3lab.explain.runs import explain_trajectories
    from r3lab.testing import tiny_policy, toy_trajectory

    policy = tiny_policy()
    trajs = [toy_trajectory(policy), toy_trajectory(policy, crop="square")]
    cfg = WhyConfig(steps=2, curve_steps=2, targets=("box", "read"), swaps=("blank", "coarse"))
    return explain_trajectories(policy, trajs, cfg, progress=False).records


@pytest.fixture(scope="module")
def explained():
    return _explained()


def test_40_1_attention_in_box(capsys, explained):
    from r3lab.explain.faithfulness import pointing_game

    share = sum(pointing_game(r.map("attention", "box"), r.box, r.cell) for r in explained) / len(explained)
    assert _verdict(capsys, "40.1", explained, share)[0]
    ok, out = _verdict(capsys, "40.1", explained, share + 0.5)
    assert not ok and "is not the share" in out


def test_40_2_top_cells_shared(capsys, explained):
    r = explained[0]
    tops = [
        set(r.map(m, "box").reshape(-1).argsort(descending=True)[:5].tolist())
        for m in ("integrated_gradients", "patching")
    ]
    assert _verdict(capsys, "40.2", r, len(tops[0] & tops[1]))[0]
    ok, out = _verdict(capsys, "40.2", r, len(tops[0] & tops[1]) + 1)
    assert not ok and "overlap of the two top fives" in out


def test_40_3_family_losing_most(capsys, explained):
    from r3lab.explain.runs import mean_effects

    recs = [SimpleNamespace(**{**vars(r), "family": f}) for r, f in zip(explained, ("read_one", "compare_two"))]
    for r, orig in zip(recs, explained):
        r.result = orig.result
    drops = {r.family: mean_effects([r], "crop:blank", "read")["effect"][0] for r in recs}
    top, low = max(drops, key=drops.get), min(drops, key=drops.get)
    assert _verdict(capsys, "40.3", recs, family=top)[0]
    ok, out = _verdict(capsys, "40.3", recs, family=low)
    assert not ok and f"{top} loses" in out


def test_40_4_coarse_share(capsys, explained):
    from r3lab.explain.runs import mean_effects

    b, c = (mean_effects(explained, f"crop:{k}", "read")["effect"][0] for k in ("blank", "coarse"))
    assert _verdict(capsys, "40.4", explained, c / b)[0]
    ok, out = _verdict(capsys, "40.4", explained, c / b + 0.3)
    assert not ok and "divide its drop" in out


def test_60_1_relative_coordinates(capsys):
    from r3lab.core.regions import Frame

    frame = Frame(672, 448, 112, 84)
    box = (10, 20, 50, 60)
    rel = [round(v) for v in frame.to_relative(box)]
    assert _verdict(capsys, "60.1", box, rel, frame)[0]
    ok, out = _verdict(capsys, "60.1", box, list(box), frame)  # the absolute numbers written as relative
    assert not ok and "scale each x by 1000 / input_w" in out


def test_60_2_refused_share(capsys):
    trajs = [SimpleNamespace(events=[SimpleNamespace(ok=False), SimpleNamespace(ok=True)]) for _ in range(3)]
    assert _verdict(capsys, "60.2", trajs, 0.5)[0]
    ok, out = _verdict(capsys, "60.2", trajs, 1 / 3)
    assert not ok and "is not the refused share of these 6 calls" in out


def test_60_3_iou_and_giou(capsys):
    from r3lab.core.regions import box_giou, box_iou

    truth, quads = (10, 10, 20, 20), [(0, 0, 50, 50), (50, 0, 100, 50), (0, 50, 50, 100), (50, 50, 100, 100)]
    iou = [box_iou(truth, q) for q in quads]
    giou = [(box_giou(truth, q) + 1) / 2 for q in quads]
    assert _verdict(capsys, "60.3", quads, truth, iou, giou)[0]
    ok, out = _verdict(capsys, "60.3", quads, truth, iou, [box_giou(truth, q) for q in quads])
    assert not ok and "(GIoU + 1) / 2" in out
    ok, out = _verdict(capsys, "60.3", {}, {}, {}, {})  # nothing computed: it passed on empty lists before
    assert not ok and "four quadrant boxes" in out


def test_60_4_larger_group(capsys, tmp_path):
    path = tmp_path / "trl.json"
    path.write_text(
        json.dumps(
            {
                "setting": {"group_size": 8, "prompts": 2},
                "r3lab": {"model_tokens": 100},
                "trl": {"model_tokens": 100},
                "tokens_per_s_ratio": 3.1,
            }
        )
    )
    assert _verdict(capsys, "60.4", path, group=8)[0]
    ok, out = _verdict(capsys, "60.4", path, group=4)
    assert not ok and "run it with --group 4" in out


def _rows(rates, acc_crop=0.8):  # a mean over no answers is NaN, as crop_behaviour writes it
    return [
        {
            "step": i,
            "crop_rate": r,
            "crops": r,
            "crop_iou": 0.5 if r else float("nan"),
            "accuracy": 0.75,
            "accuracy_crop": acc_crop if r else float("nan"),
        }
        for i, r in enumerate(rates)
    ]


def test_70_1_metrics_without_pixels(capsys):
    rows = _rows([1.0, 0.5, 0.0])  # NaN without images and NaN with them: the same (not measured)
    assert _verdict(capsys, "70.1", [dict(r) for r in rows], rows)[0]
    other = [dict(r) for r in rows]
    other[1]["crop_iou"] = 0.4
    ok, out = _verdict(capsys, "70.1", other, rows)
    assert not ok and "step 1: crop_iou" in out


def test_70_2_thresholds_flag_healthy(capsys):
    from r3lab.evaluation import CollapseConfig

    healthy = _rows([1.0, 1.0, 0.9, 0.8, 0.7, 0.7])
    assert _verdict(capsys, "70.2", healthy, CollapseConfig(window=1, drop=0.2))[0]
    ok, out = _verdict(capsys, "70.2", healthy, CollapseConfig())
    assert not ok and "is not flagged" in out


def test_70_3_accuracy_with_a_crop_stops(capsys):
    rows = _rows([1.0, 0.5, 0.0, 0.0])
    assert _verdict(capsys, "70.3", rows, 2)[0]
    ok, out = _verdict(capsys, "70.3", rows, 3)
    assert not ok and "not the first" in out


def test_70_4_real_checkpoint(capsys):
    def ex(mass):
        return {"s": [SimpleNamespace(ok=True, attention=SimpleNamespace(mass_in_box=mass))]}

    assert _verdict(capsys, "70.4", ex(0.6), ex(0.3), concentrates_more=True)[0]
    ok, out = _verdict(capsys, "70.4", ex(0.2), ex(0.3), concentrates_more=True)
    assert not ok and "look again" in out


def test_00_1_coarser_grating(capsys):
    default, coarser = {"coarse_probe": 0.27, "chance": 0.2}, {"coarse_probe": 0.9, "chance": 0.2}
    assert _verdict(capsys, "00.1", coarser, default, readable=True)[0]
    ok, out = _verdict(capsys, "00.1", coarser, default, readable=False)
    assert not ok and "90%" in out


def test_00_2_larger_view(capsys, tmp_path):
    import r3lab

    samples = r3lab.build_samples(3, 0, ["read_one"], view=r3lab.ViewConfig(), progress=False)
    folder = r3lab.save_dataset(samples, tmp_path / "ds", progress=False)
    again = r3lab.load_dataset(folder, view=r3lab.ViewConfig(max_pixels=224 * 224))
    ok, out = _verdict(capsys, "00.2", samples[0], again[0])
    assert ok and "in twice the pixels" in out
    for a, b, said in (
        ((0, 0, 1, 1), (0, 0, 2, 2), "not boxes"),  # typed numbers that double: no work done
        (samples[0], samples[0], "load the dataset again with the larger view"),
        (samples[0], again[1], "two samples"),
    ):
        ok, out = _verdict(capsys, "00.2", a, b)
        assert not ok and said in out, out


def test_00_3_which_filter(capsys):
    report = SimpleNamespace(
        removed={"region_validity": ["a-bad"], "coherence": []},
        removed_ids=lambda f: {"region_validity": ["a-bad"], "coherence": []}[f],
    )
    assert _verdict(capsys, "00.3", report, "a-bad", "region_validity")[0]
    ok, out = _verdict(capsys, "00.3", report, "a-bad", "coherence")
    assert not ok and "removed by region_validity" in out


def test_00_4_balanced_answers(capsys):
    samples = [SimpleNamespace(answers=[a]) for a in "aabbccdd"]
    assert _verdict(capsys, "00.4", samples, 0.25)[0]
    ok, out = _verdict(capsys, "00.4", samples, 0.5)
    assert not ok and "is not the most common answer's share" in out


def _rollout_one(script, **cfg):
    import r3lab
    from r3lab.testing import tiny_policy

    policy = tiny_policy()
    sample = r3lab.build_samples(1, seed=0, families=["read_one"], view=policy.view, progress=False)[0]
    (traj,) = r3lab.rollout(
        policy,
        [sample],
        r3lab.RolloutConfig(group_size=1, greedy=True, max_new_tokens=48, **cfg),
        scripts=[script],
        progress=False,
    )
    return policy, sample, traj


def test_10_1_malformed_call(capsys):
    _, _, traj = _rollout_one(['<think>Look. {"bbox_2d": [10, 20, 30]}'])
    assert _verdict(capsys, "10.1", traj, verdict="wrong_arity")[0]
    ok, out = _verdict(capsys, "10.1", traj, verdict="ok")
    assert not ok and "is not 'ok'" in out


def test_10_2_no_crops_allowed(capsys):
    _, sample, refused = _rollout_one(None, max_crops=0)
    if not refused.events:  # an untrained model writes no call: script the reference one
        first = sample.rationale[0].text
        _, _, refused = _rollout_one([first], max_crops=0)
    assert _verdict(capsys, "10.2", refused)[0]
    _, _, cut = _rollout_one([sample.rationale[0].text])
    ok, out = _verdict(capsys, "10.2", cut)
    assert not ok and "set max_crops=0" in out


def test_10_3_position_after_crop(capsys):
    policy, sample, traj = _rollout_one(None)
    _, _, traj = _rollout_one([sample.rationale[0].text])
    e = traj.events[0]
    span = [i for i, j in enumerate(traj.piece_index()) if j == e.image_piece]
    ids, pos = traj.input_ids(), traj.positions(policy)
    image = [i for i in span if int(ids[i]) == policy.image_token_id]
    _, h, w = traj.pieces[e.image_piece].info.grid_thw
    merged = max(h, w) // 2  # r3-tiny's merge size
    assert _verdict(capsys, "10.3", traj, policy, int(pos[0, image[0]]) + merged)[0]
    ok, out = _verdict(capsys, "10.3", traj, policy, int(pos[0, span[0]]) + merged)  # from the marker: one off
    assert not ok and "after its vision-start marker" in out


def test_10_4_greedy_group(capsys):
    same = [SimpleNamespace(model_text=lambda: "a"), SimpleNamespace(model_text=lambda: "a")]
    assert _verdict(capsys, "10.4", same)[0]
    ok, out = _verdict(capsys, "10.4", same + [SimpleNamespace(model_text=lambda: "b")])
    assert not ok and "set temperature=0.0" in out


def test_10_5_reprefill_grows(capsys):
    curve = [
        {"px": 448, "crops": 1, "reuse_s": 1.0, "reprefill_s": 1.2},
        {"px": 448, "crops": 3, "reuse_s": 1.5, "reprefill_s": 3.0},
    ]
    assert _verdict(capsys, "10.5", curve)[0]
    ok, out = _verdict(capsys, "10.5", list(reversed([{**r, "crops": 4 - r["crops"]} for r in curve])))
    assert not ok and "the ratio went" in out


def _audit_rows(k=5, majority=0.1, pass_at_k=0.3, c=0.2, **more):
    """A live audit's read_one row as `run_audit` writes it (chance levels included)."""
    row = {
        "chance": c,
        "accuracy": 0.9,
        "acc_majority_no_crop": majority,
        "acc_majority_no_crop_chance": c,
        "pass_at_k_no_crop": pass_at_k,
        "pass_at_k_no_crop_chance": 1 - (1 - c) ** k,
        "acc_format_only_chance": c,
        "acc_dummy_crop": 0.0,
    }
    return {"read_one": {**row, **more}}


def test_47_1_majority_against_pass_at_k(capsys):
    res = SimpleNamespace(rows=_audit_rows())
    ok, out = _verdict(capsys, "47.1", res, 1 - 0.8**5, above_chance=False)
    assert ok and "pass@k 0.30 against its chance 0.67" in out
    ok, out = _verdict(capsys, "47.1", res, 0.2 * 5, above_chance=False)  # five tries are not five times the chance
    assert not ok and "is not pass@5's chance level" in out
    ok, out = _verdict(capsys, "47.1", res, 1 - 0.8**5, above_chance=True)
    assert not ok and "look again" in out
    ok, out = _verdict(capsys, "47.1", _audit_rows(k=3), 1 - 0.8**3, above_chance=False)  # the lesson's k
    assert not ok and "raise k to 5" in out


def _question(right, answer, family="read_one"):
    return {"family": family, "settings": {"format_only": {"answer": answer, "correct": right}}}


def test_47_2_right_without_pixels(capsys):
    qs = [
        _question(True, "vertical"),
        _question(True, "vertical"),
        _question(False, "no"),
        _question(False, None),
        _question(False, "vertical"),
        _question(True, "yes", family="compare_two"),
    ]
    res = SimpleNamespace(rows=_audit_rows(), questions=qs)  # 5 read_one questions: a guess gets 1.0 right
    ok, out = _verdict(capsys, "47.2", res, 2, more_than_chance=True)
    assert ok and "2 of 5 right, a guess 1.0; its most frequent answer 'vertical' (3 of 5)" in out
    ok, out = _verdict(capsys, "47.2", res, 3, more_than_chance=True)  # compare_two's right answer counted
    assert not ok and "3 is not the number of read_one questions answered right" in out
    ok, out = _verdict(capsys, "47.2", res, 2, more_than_chance=False)
    assert not ok and "2 of 5 right against 1.0 by guessing" in out
    ok, out = _verdict(capsys, "47.2", SimpleNamespace(rows=_audit_rows(), questions=[]), 0, more_than_chance=False)
    assert not ok and "no audited read_one question" in out


def test_47_3_grey_against_dummy(capsys):
    res = SimpleNamespace(rows=_audit_rows(acc_blank=0.25))
    ok, out = _verdict(capsys, "47.3", res, 25)
    assert ok and "a grey crop 25%, dummy slots 0% (+25 points" in out
    ok, out = _verdict(capsys, "47.3", res, 0.25)  # a share, not points
    assert not ok and "in points" in out
    ok, out = _verdict(capsys, "47.3", SimpleNamespace(rows=_audit_rows()), 0)
    assert not ok and "necessity=True" in out


def test_47_4_log_against_model(capsys, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            {"policy": None, "rows": {"all": {"accuracy": 1.0, "crop_rate": 0.75, "crop_iou": 0.7, "tokens": None}}}
        )
    )
    ok, out = _verdict(capsys, "47.4", path, ["accuracy", "crop_iou"], ["acc_format_only", "attn_in_region"])
    assert ok and "from the log: accuracy 1.00, crop_iou 0.70" in out
    ok, out = _verdict(capsys, "47.4", path, ["accuracy", "acc_format_only"], ["acc_dummy_crop", "tool_only"])
    assert not ok and "'acc_format_only' is not measured in the log's audit" in out
    ok, out = _verdict(capsys, "47.4", path, ["accuracy", "tokens"], ["acc_dummy_crop", "tool_only"])  # not measured
    assert not ok and "'tokens' is not measured in the log's audit" in out
    ok, out = _verdict(capsys, "47.4", path, ["accuracy", "crop_iou"], ["acc_dummy_crop", "speed"])
    assert not ok and "'speed' is not an audit key" in out
    ok, out = _verdict(capsys, "47.4", path, ["accuracy", "crop_iou"], ["crop_rate", "tool_only"])
    assert not ok and "'crop_rate' is in the log's audit" in out
    ok, out = _verdict(capsys, "47.4", tmp_path / "none.json", ["accuracy"], ["tool_only"])
    assert not ok and "does not exist" in out
