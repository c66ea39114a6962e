"""Where greedy boxes land for held-out "Where is the X?" questions: the metrics, the engine's rollout, the CLI."""

from dataclasses import replace

import pytest

from r3lab.core.crop_calls import format_crop_call
from r3lab.core.regions import ViewConfig
from r3lab.data.world import WorldConfig, region_input_box
from r3lab.engine.config import RolloutConfig
from r3lab.engine.rollouts import rollout
from r3lab.recipe.ground_check import WhereConfig, chance, evaluate_where, first_box, where_metrics, where_question
from r3lab.testing import tiny_policy

VIEW = ViewConfig().with_factor(14)


def _items(n=12):
    return [where_question(WorldConfig(), 5, i, VIEW) for i in range(n)]


def test_metrics_of_the_right_box_a_wrong_landmark_and_no_box():
    items = _items()
    m = where_metrics(items, [it["box"] for it in items])
    assert m["mean_iou"] == 1.0 and m["centre_on_named"] == m["contains_detail"] == m["valid"] == 100.0
    wrong = [
        region_input_box(it["scene"].region((it["k"] + 1) % len(it["scene"].landmarks)), it["frame"]) for it in items
    ]  # another landmark's box: on a landmark, not the named one
    m = where_metrics(items, wrong)
    assert m["centre_on_named"] == 0.0 and m["centre_on_any"] == 100.0 and m["mean_iou"] < 0.2
    m = where_metrics(items, [None, (5, 5, 1, 1)] * 6)  # no call, an inverted box
    assert m["valid"] == 0.0 and m["mean_iou"] == 0.0
    assert 0 < chance(items)["random_landmark_centre"] < 100
    assert items[0]["sample"].question == f"Where is the {items[0]['scene'].landmarks[items[0]['k']].name}?"


def test_the_engine_rolls_the_questions_out_and_the_grammar_reads_the_first_box():
    policy = tiny_policy()
    items = [where_question(WorldConfig(), 7, i, policy.view) for i in range(4)]
    calls = [format_crop_call(it["box"], policy.prompt.calls, it["frame"]) for it in items]
    scripts = [[" " + c, " more text", " " + calls[0], "<|im_end|>"] for c in calls]  # a second call is ignored
    cfg = RolloutConfig(group_size=1, greedy=True, max_crops=0, max_new_tokens=80, max_segment_tokens=80)
    trajs = rollout(policy, [it["sample"] for it in items], cfg, scripts=scripts, progress=False)
    assert not any(t.crops for t in trajs)  # no crop is executed: only the box is read
    boxes = [first_box(t) for t in trajs]
    assert boxes == [pytest.approx(it["box"]) for it in items]
    assert where_metrics(items, boxes)["centre_on_named"] == 100.0


def test_evaluate_where_measures_an_untrained_policy_against_chance():
    m = evaluate_where(tiny_policy(), WhereConfig(n=4, seed=3))
    assert set(m) >= {"mean_iou", "centre_on_named", "valid", "random_landmark_centre"}
    assert 0.0 <= m["mean_iou"] <= 1.0 and 0.0 <= m["valid"] <= 100.0
    with pytest.raises(ValueError, match=r"WhereConfig\.n = 0"):
        WhereConfig(n=0)
    assert replace(WhereConfig(), world={"mark_size": 5}).world == {"mark_size": 5}


def test_cli_evaluates_a_checkpoint(tmp_path, capsys):
    from r3lab.cli import app as cli

    tiny_policy().save(tmp_path / "p")
    assert cli.main(["probe", "where", "--policy", str(tmp_path / "p"), "--n", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 held-out" in out and "% valid crop calls" in out and "chance:" in out
    with pytest.raises(SystemExit):
        cli.main(["probe", "where", "--n", "4"])  # a checkpoint is required: training a probe is research's
