import dataclasses
import json
import math

import pytest
from matplotlib.figure import Figure

from r3lab.cli.app import main as cli_main
from r3lab.data.vlir import build_samples
from r3lab.evaluation.evaluation import EvalConfig, detail_shares, evaluate, summarize
from r3lab.testing import tiny_policy, toy_samples
from r3lab.viz.results import changed_answers, plot_results, plot_side_by_side


def test_summarize_per_family_on_known_trajectories():
    policy = tiny_policy()
    samples = toy_samples(4, policy.view)
    trajs = [s.reference(policy.view, policy.prompt).tokenize(policy) for s in samples]
    trajs[1].pieces[-1].text = trajs[1].pieces[-1].text.replace("<answer>green</answer>", "<answer>red</answer>")
    trajs[3].family = "control"
    rows = summarize(trajs)
    assert rows["all"]["n"] == 4 and rows["read_one"]["n"] == 3 and rows["control"]["n"] == 1
    assert rows["all"]["accuracy"] == 0.75 and rows["read_one"]["accuracy"] == pytest.approx(2 / 3)
    assert rows["all"]["crop_rate"] == 1.0 and rows["all"]["crops"] == 1.0 and rows["all"]["invalid_crop_rate"] == 0
    assert 0.3 < rows["all"]["crop_iou"] <= 1.0  # the reference crop covers the ground-truth region
    iou = [rows["all"]["crop_iou_lo"], rows["all"]["crop_iou"], rows["all"]["crop_iou_hi"]]
    assert iou == sorted(iou) and iou[0] < iou[2]  # a bootstrap interval of the mean IoU (its crops differ)
    assert rows["all"]["answered"] == 1.0 and rows["all"]["tokens"] > 10


def test_changed_answers_lists_the_questions_that_turned_right_or_wrong():
    policy = tiny_policy()
    samples = toy_samples(4, policy.view)
    before = [s.reference(policy.view, policy.prompt).tokenize(policy) for s in samples]
    after = [s.reference(policy.view, policy.prompt).tokenize(policy) for s in samples]
    for t in (before[1], after[2], before[3]):  # 1 turns right, 2 turns wrong, 3 turns right but is a control
        t.pieces[-1].text = t.pieces[-1].text.replace(f"<answer>{t.answers[0]}</answer>", "<answer>purple</answer>")
    before[3].family = after[3].family = "control"
    assert [t.pieces[-1].text.count("<answer>purple</answer>") for t in before] == [0, 1, 0, 1]
    assert changed_answers(before, after) == ([1], [2])
    assert changed_answers(before, after, skip=()) == ([1, 3], [2])
    with pytest.raises(ValueError, match="same questions"):
        changed_answers(before, after[:3])
    with pytest.raises(ValueError, match="same samples in the same order"):
        changed_answers(before, after[::-1])


def test_evaluate_runs_rollouts_and_reports(tmp_path):
    policy = tiny_policy()
    samples = toy_samples(3, policy.view)
    res = evaluate(
        policy,
        samples,
        EvalConfig(rollout={"max_new_tokens": 6, "max_segment_tokens": 6, "max_crops": 0}),
        progress=False,
    )
    assert len(res.trajectories) == 3 and res["all"]["n"] == 3
    assert res["all"]["crop_rate"] == 0.0 and 0 <= res.accuracy <= 1
    assert math.isnan(res["all"]["crop_iou_lo"]) and math.isnan(res["all"]["crop_iou_hi"])  # no crop, no interval
    assert all(t.meta["temperature"] == 0.0 for t in res.trajectories)  # greedy by default
    assert "| read_one |" in res.table()
    assert isinstance(plot_results({"a": res, "b": res}), Figure) and isinstance(plot_results({"": res}), Figure)
    fig = plot_side_by_side({"before": res.trajectories, "after": res.trajectories}, k=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    out = res.save(tmp_path)
    assert json.loads((out / "results.json").read_text())["rows"]["all"]["n"] == 3
    assert len((out / "trajectories.jsonl").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="no samples"):
        evaluate(policy, [], EvalConfig())


def test_cli_end_to_end_sft_rgrpo_eval(tmp_path, capsys):
    data, sft_out, rl_out, ev = tmp_path / "data", tmp_path / "sft", tmp_path / "rl", tmp_path / "ev"
    assert cli_main(["data", "build", "--out", str(data), "--n", "8", "--seed", "1"]) == 0
    assert (
        cli_main(["train", "sft", "--data", str(data), "--steps", "1", "--batch-size", "2", "--out-dir", str(sft_out)])
        == 0
    )
    assert (sft_out / "latest").is_file()
    ckpt = sft_out / (sft_out / "latest").read_text().strip()
    assert (
        cli_main(
            [
                "train",
                "rgrpo",
                "--policy",
                str(ckpt),
                "--data",
                str(data),
                "--steps",
                "1",
                "--batch-size",
                "4",
                "--group-size",
                "2",
                "--max-new-tokens",
                "6",
                "--out-dir",
                str(rl_out),
            ]
        )
        == 0
    )
    log = [json.loads(x) for x in (rl_out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and not math.isnan(log[0]["reward"])
    assert (
        cli_main(
            [
                "eval",
                "--policy",
                str(rl_out / "step_000001"),
                "--data",
                str(data),
                "--n",
                "4",
                "--max-new-tokens",
                "6",
                "--out",
                str(ev),
                "--box-errors",
            ]
        )
        == 0
    )
    assert json.loads((ev / "results.json").read_text())["rows"]["all"]["n"] == 4
    out = capsys.readouterr().out
    assert "| all |" in out and ("no crops with a ground-truth region" in out or "abs_err" in out)
    with pytest.raises(FileNotFoundError, match="r3lab data build"):
        cli_main(["eval", "--data", str(tmp_path / "nope")])


def test_eval_settings_come_from_the_checkpoint_then_the_caller():
    from types import SimpleNamespace

    pol = SimpleNamespace(
        meta={"evaluation": {"max_crops": 2, "max_new_tokens": 128, "max_segment_tokens": 64, "unknown_later_key": 1}}
    )
    cfg = EvalConfig.for_policy(pol, rollout={"max_new_tokens": 32})  # r3lab.json's flat keys: the earlier format
    assert (cfg.rollout.max_crops, cfg.rollout.max_new_tokens, cfg.rollout.max_segment_tokens) == (2, 32, 64)
    assert cfg.rollout.temperature == 0.0  # evaluation's own default where the checkpoint says nothing
    nested = SimpleNamespace(
        meta={
            "evaluation": {
                "rollout": {"max_crops": 1, "max_segment_tokens": 30},
                "reward": {"region_weight": 1.0, "region": "giou"},
            }
        }
    )
    cfg = EvalConfig.for_policy(nested, reward=None)
    assert (cfg.rollout.max_crops, cfg.rollout.max_segment_tokens, cfg.reward.region) == (1, 30, "giou")
    assert EvalConfig.for_policy(SimpleNamespace(meta={})) == EvalConfig()
    with pytest.raises(ValueError, match="no field"):
        EvalConfig.for_policy(pol, max_crop=3)


@pytest.mark.parametrize(
    "flag,value,field,span",
    [
        ("--max-new-tokens", "0", "rollout.max_new_tokens", r"\[1, 1048576\]"),
        ("--n", "-3", "n", r"\[0, 10000000\]"),
        ("--temperature", "nan", "rollout.temperature", r"\[0\.0, 100\.0\]"),
        ("--temperature", "-1", "rollout.temperature", r"\[0\.0"),
        ("--batch-rows", "1000000", "batch_rows", r"\[1, 4096\]"),
        ("--reward-region-weight", "inf", "reward.region_weight", r"\[0\.0"),
    ],
)
def test_eval_settings_out_of_range_fail_before_any_work(tmp_path, flag, value, field, span, monkeypatch):
    import r3lab.cli.evaluate as cli_eval

    monkeypatch.setattr(cli_eval, "load_start_policy", lambda *a: pytest.fail("the policy was loaded first"))
    with pytest.raises(ValueError, match=rf"^EvalConfig\.{field} = .* is not allowed: expected .* in {span}"):
        cli_main(["eval", "--data", str(tmp_path), flag, value])
    with pytest.raises(ValueError, match="unknown reward preset|preset"):
        EvalConfig(reward={"preset": "accuracy_and_vibes"})


def test_the_share_of_crops_holding_the_detail():
    policy = tiny_policy()
    samples = build_samples(4, 0, ["read_one"], view=policy.view, progress=False)
    trajs = [s.reference(policy.view, policy.prompt).tokenize(policy) for s in samples]
    assert all(s.details for s in samples) and detail_shares(trajs, samples) == {"all": 1.0, "read_one": 1.0}
    moved = [dataclasses.replace(s, details=[(0, 0, 2, 2)]) if i < 3 else s for i, s in enumerate(samples)]
    assert detail_shares(trajs, moved)["all"] == 0.25  # three crops miss their (moved) detail
    trajs[0].family = "control"
    no_crop = [t for t in trajs if t.family == "control"]
    for t in no_crop:
        t.pieces = [p for p in t.pieces if p not in t.crops]
    assert math.isnan(detail_shares(no_crop, samples)["all"])  # no crop: nothing to share
