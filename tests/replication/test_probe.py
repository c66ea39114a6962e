"""The localisation probe: its metrics on hand-made answers, and a short run end to end."""
import pytest

from r3lab.core.crop_calls import format_crop_call
from r3lab.core.regions import ViewConfig
from r3lab.data.world import region_input_box
from r3lab.replication.probe import ProbeConfig, chance, probe_where, snap_box, where_item, where_metrics

VIEW = ViewConfig().with_factor(14)


def _items(n=12, **kw):
    cfg = ProbeConfig(**kw)
    return [where_item(cfg, 5, i, VIEW) for i in range(n)]


def test_metrics_of_the_right_box_a_wrong_landmark_and_garbage():
    items = _items()
    right = [it["target"] for it in items]
    m = where_metrics(items, right)
    assert m["mean_iou"] == 1.0 and m["centre_on_named"] == m["contains_detail"] == m["valid"] == 100.0
    wrong = []
    for it in items:  # another landmark's box: on a landmark, not the named one
        j = (it["k"] + 1) % len(it["scene"].landmarks)
        wrong.append(format_crop_call(region_input_box(it["scene"].region(j), it["frame"])))
    m = where_metrics(items, wrong)
    assert m["centre_on_named"] == 0.0 and m["centre_on_any"] == 100.0 and m["mean_iou"] < 0.2
    m = where_metrics(items, ["no box here", '{"bbox_2d": [5, 5, 1, 1]}'] * 6)
    assert m["valid"] == 0.0 and m["mean_iou"] == 0.0
    c = chance(items)
    assert 0 < c["random_landmark_centre"] < 100


def test_targets_and_snapping():
    it = _items(1, target="enum")[0]
    assert it["target"].startswith("I see the ") and it["target"].endswith("<|im_end|>")
    assert snap_box((15, 3, 30, 28), 14, 112, 112) == (14, 0, 42, 28)
    with pytest.raises(ValueError, match="target must be one of"):
        _items(1, target="poem")


def test_a_short_probe_trains_and_reports():
    rec = probe_where(ProbeConfig(steps=3, batch_size=2, n_eval=4, warmup=1, tiny={"patch_size": 14}),
                      log=lambda s: None)
    assert [r["step"] for r in rec["rows"]] == [1] and len(rec["evals"]) == 1
    ev = rec["evals"][0]
    assert ev["step"] == 3 and len(ev["texts"]) == 4 and 0 <= ev["mean_iou"] <= 1


def test_cli_evaluates_a_checkpoint(tmp_path, capsys):
    from r3lab.cli import app as cli
    from r3lab.testing import tiny_policy

    tiny_policy().save(tmp_path / "p")
    assert cli.main(["probe", "where", "--policy", str(tmp_path / "p"), "--n-eval", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 held-out" in out and "% valid crop calls" in out and "chance:" in out


def test_read_probe_puts_the_ground_truth_crop_in_the_context_and_scores_answers():
    from r3lab.replication.probe import read_item, read_metrics

    items = [read_item(ProbeConfig(task="read"), 5, i, VIEW) for i in range(6)]
    assert all(it["lead"].endswith(format_crop_call(it["box"])) for it in items)
    assert read_metrics(items, [it["target"] for it in items])["read_acc"] == 100.0
    assert read_metrics(items, ["<|im_end|>"] * 6)["read_acc"] == 0.0
    rec = probe_where(ProbeConfig(task="read", steps=2, batch_size=2, n_eval=3, warmup=1, tiny={"patch_size": 14}),
                      log=lambda s: None)
    assert "read_acc" in rec["evals"][0] and rec["chance"] == {}
    with pytest.raises(ValueError, match="task must be one of"):
        probe_where(ProbeConfig(task="count", steps=1, n_eval=1), log=lambda s: None)
    counts = [read_item(ProbeConfig(task="read", read_family="count"), 5, i, VIEW) for i in range(8)]
    assert {it["answers"][0] for it in counts} <= set("1234") and len({it["answers"][0] for it in counts}) > 1
    assert all(it["scene"].landmarks[it["k"]].detail.kind == "dots" for it in counts)
    with pytest.raises(ValueError, match="read_family"):
        read_item(ProbeConfig(task="read", read_family="glyph"), 5, 0, VIEW)


def test_a_mixed_probe_trains_on_every_kind_of_question_measures_reading_and_saves(tmp_path):
    from r3lab.model.policy import load_policy
    from r3lab.replication.probe import exists_item, mixed_item

    cfg = ProbeConfig(steps=2, batch_size=8, n_eval=3, warmup=1, naming=0.25, exists=0.25, reading=0.25,
                      tiny={"patch_size": 14}, save=str(tmp_path / "probe"))
    kinds = [mixed_item(cfg, 0, j, VIEW) for j in range(40)]
    assert any("lead" in it for it in kinds) and any(it["question"].startswith("Is there") for it in kinds)
    assert any(it["question"].startswith("Where") for it in kinds)
    ex = [exists_item(cfg, 3, i) for i in range(20)]
    assert {it["target"] for it in ex} == {"yes<|im_end|>", "no<|im_end|>"}
    for it in ex:  # "yes" exactly when the asked colour is in the scene
        colour = it["question"].split()[3]
        assert (colour in [lm.colour for lm in it["scene"].landmarks]) == it["target"].startswith("yes")
    rec = probe_where(cfg, log=lambda s: None)
    assert "read_acc" in rec["evals"][-1] and "mean_iou" in rec["evals"][-1]
    assert load_policy(tmp_path / "probe").prompt == rec["policy"].prompt
    with pytest.raises(ValueError, match="sum to at most 1"):
        probe_where(ProbeConfig(naming=0.6, reading=0.6), log=lambda s: None)
