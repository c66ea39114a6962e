"""MetricLog (rows, series, JSONL) and the batch metrics R-GRPO logs and evaluation reports."""

import math

import pytest
import torch

from r3lab.core.trajectory import MODEL, Piece, Trajectory
from r3lab.evaluation.evaluation import summarize
from r3lab.testing import tiny_policy, toy_image, toy_trajectory
from r3lab.train.metrics import MetricLog, rollout_metrics, rollout_values
from r3lab.train.rewards import preset, region_iou, reward_columns, score
from r3lab.train.rgrpo import step_metrics


def test_the_log_keeps_rows_in_order_and_reads_series():
    log = MetricLog()
    log.log(1, loss=2.0, lr=torch.tensor(0.5))
    log.log(2, loss=float("nan"), reward=1)
    log.log(3, loss=1.0)
    assert len(log) == 3 and log.last == {"step": 3, "loss": 1.0} and log.keys() == ["step", "loss", "lr", "reward"]
    assert log.rows[0]["lr"] == 0.5 and log.rows[1]["loss"] is None  # tensors become floats, NaN "not measured"
    assert log.series("loss") == ([1, 3], [2.0, 1.0]) and log.mean("loss") == 1.5 and log.mean("loss", last=1) == 1.0
    assert math.isnan(log.mean("missing"))


def test_the_log_round_trips_through_jsonl_and_names_a_bad_line(tmp_path):
    log = MetricLog([{"step": 1, "loss": 0.5}, {"step": 2, "kl": None}])
    path = log.save_jsonl(tmp_path / "log.jsonl")
    assert MetricLog.load_jsonl(path).rows == log.rows
    path.write_text(path.read_text() + "{oops\n")
    with pytest.raises(ValueError, match=r"log.jsonl:3 is not a JSON object"):
        MetricLog.load_jsonl(path)


def _no_crop(policy, answer="red"):
    """The toy question answered without looking again (it has a ground-truth region, but no crop)."""
    t = Trajectory.start(
        toy_image(),
        "What colour is the disc?",
        policy.view,
        policy.prompt,
        answers=["red"],
        gt_boxes=[(44, 33, 156, 151)],
        family="read_one",
        sample_id="toy-none",
    )
    t.pieces.append(Piece(MODEL, f"<think>It is {answer}.</think><answer>{answer}</answer><|im_end|>", tag="answer"))
    return t.tokenize(policy)


@pytest.fixture(scope="module")
def batch():
    policy = tiny_policy()
    trajs = [
        toy_trajectory(policy, answer="red"),
        toy_trajectory(policy, answer="blue", crop="square"),
        _no_crop(policy),
        _no_crop(policy, "blue"),
    ]
    return trajs, score(trajs, preset("code", region_weight=1.0))


def test_crop_iou_averages_only_over_the_trajectories_that_cropped(batch):
    trajs, scores = batch
    cols = reward_columns(trajs)
    ious = region_iou(None, [""] * 4, cols["gt_boxes"], cols["crop_boxes"])
    assert ious[0] > 0.5 and ious[2] == ious[3] == 0.0  # no crop scores 0 as a reward...
    want = (ious[0] + ious[1]) / 2  # ...but a trajectory without a crop has no box to measure
    values = rollout_values(trajs, scores)
    assert [v["crop_iou"] is None for v in values] == [False, False, True, True]
    assert rollout_metrics(values)["crop_iou"] == pytest.approx(want)
    assert summarize(trajs, preset("code", region_weight=1.0))["all"]["crop_iou"] == pytest.approx(want)  # evaluation
    zero = torch.zeros(2, dtype=torch.bool)
    assert step_metrics(trajs, scores, zero, group_size=2)["crop_iou"] == pytest.approx(want)  # R-GRPO's log
    assert math.isnan(rollout_metrics(values[2:])["crop_iou"])  # nothing cropped: not measured, not 0


def test_the_other_batch_metrics_count_what_they_say(batch):
    trajs, scores = batch
    m = rollout_metrics(rollout_values(trajs, scores))
    # the toy trajectories answer their own truth; one no-crop row does not
    assert m["n"] == 4 and m["accuracy"] == 0.75
    assert m["crop_rate"] == 0.5 and m["crops"] == 0.5 and m["answered"] == 1.0
    assert m["invalid_crop_rate"] == 0.0 and m["reward"] == pytest.approx(sum(scores.total) / 4)
    assert m["tokens"] == pytest.approx(sum(len(p.ids) for t in trajs for p in t.pieces if p.kind == MODEL) / 4)
    row = step_metrics(trajs, scores, torch.zeros(2, dtype=torch.bool), group_size=2)
    assert (row["accuracy"], row["crops_per_rollout"], row["frac_answered"]) == (0.75, 0.5, 1.0)
    assert "accuracy" not in rollout_metrics(rollout_values(trajs, score(trajs, preset("code")[1:2])))


def test_accuracy_is_split_by_whether_the_trajectory_cropped(batch):
    trajs, scores = batch  # both cropping trajectories are right; of the two that did not crop, one is
    m = rollout_metrics(rollout_values(trajs, scores))
    assert (m["accuracy_crop"], m["accuracy_no_crop"]) == (1.0, 0.5)
    row = step_metrics(trajs, scores, torch.zeros(2, dtype=torch.bool), group_size=2)
    assert (row["crop_rate"], row["accuracy_crop"], row["accuracy_no_crop"]) == (0.5, 1.0, 0.5)  # R-GRPO's log
    assert math.isnan(rollout_metrics(rollout_values(trajs[2:], scores))["accuracy_crop"])  # none cropped


def test_refused_calls_count_per_call():
    policy = tiny_policy()
    t = toy_trajectory(policy)
    bad = t.copy()
    bad.events = bad.events + [bad.events[0].__class__(bad.events[0].call, 3)]  # a second, refused call
    scores = score([t, bad], "code")
    assert rollout_metrics(rollout_values([t, bad], scores))["invalid_crop_rate"] == pytest.approx(1 / 3)
