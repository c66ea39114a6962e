"""Crop behaviour over training and the collapse verdict, from a training log or from trajectories of any system."""

import math

import pytest

from r3lab.bench.run import BenchConfig, run_bench
from r3lab.evaluation.behaviour import CollapseConfig, crop_behaviour, detect_collapse, load_run, sniff
from r3lab.testing import tiny_policy
from r3lab.testing.mini_benchmarks import write_benchmark
from r3lab.testing.mini_runs import write_agent_loop, write_deepeyes_eval, write_training_log, write_trl_completions
from r3lab.train.metrics import MetricLog


def test_an_rgrpo_log_that_stops_cropping_while_accuracy_holds_is_a_collapse(tmp_path):
    rows = crop_behaviour(load_run(write_training_log(tmp_path / "a" / "log.jsonl", collapse=True).parent))
    assert rows[0]["crops"] == pytest.approx(rows[0]["crop_rate"] * 1.2)  # crops_per_rollout, renamed
    v = detect_collapse(rows)
    assert v["collapsed"] is True and v["metric"] == "crop_rate" and v["late"] == 0.0 and v["early"] > 0.5
    assert "answers without looking" in v["message"]
    log = MetricLog.load_jsonl(write_training_log(tmp_path / "b.jsonl", collapse=False))
    healthy = detect_collapse(crop_behaviour(log))
    assert healthy["collapsed"] is False and healthy["message"].startswith("no collapse")


def test_falling_accuracy_or_no_accuracy_is_not_called_a_collapse():
    rows = [{"step": s, "crop_rate": 0.8 - 0.1 * s, "accuracy": 0.8 - 0.1 * s} for s in range(8)]
    v = detect_collapse(rows)
    assert v["collapsed"] is False and "a failing run" in v["message"]
    no_acc = detect_collapse([{"step": s, "crop_rate": 0.8 - 0.1 * s} for s in range(8)])
    assert no_acc["collapsed"] is None and "not measured" in no_acc["message"]
    assert detect_collapse(rows[:1])["message"].startswith("fewer than two steps")
    rare = [{"step": s, "crop_rate": 0.1 - 0.01 * s, "accuracy": 0.5} for s in range(8)]
    assert detect_collapse(rare)["collapsed"] is False  # it never cropped much: nothing to collapse
    strict = detect_collapse(rows[:4], CollapseConfig(window=1, floor=0.6, tolerance=1.0))
    assert strict["collapsed"] is True and strict["early"] == 0.8 and strict["late"] == pytest.approx(0.5)


def test_a_verl_run_is_grouped_by_training_step(tmp_path):
    policy = tiny_policy()
    path = write_agent_loop(tmp_path, policy, steps=4, per_step=4, collapse=True)
    assert sniff(path) == "verl"
    with pytest.raises(ValueError, match="tokenizer="):
        load_run(path)
    rows = crop_behaviour(load_run(path, tokenizer=policy))
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and [r["n"] for r in rows] == [4] * 4
    assert rows[0]["crop_rate"] == 1.0 and rows[-1]["crop_rate"] == 0.0
    assert all(r["accuracy"] == 0.75 for r in rows)  # three in four right, cropping or not
    assert rows[0]["reward/acc"] == 0.75 and "reward/tool" in rows[0]  # the system's own reward terms
    assert rows[0]["reward"] == pytest.approx(0.85) and "reward/score" not in rows[0]  # its total: reward_score
    assert detect_collapse(rows)["collapsed"] is True


def test_imported_evaluations_and_trl_logs_have_one_row_per_step(tmp_path):
    rows = crop_behaviour(load_run(write_deepeyes_eval(tmp_path / "d"), image_root=tmp_path / "d" / "images"))
    assert len(rows) == 1 and rows[0]["crop_rate"] == pytest.approx(2 / 3) and rows[0]["crop_iou"] > 0.6
    assert rows[0]["accuracy"] == 1.0 and math.isnan(rows[0]["invalid_crop_rate"] * 0) is False
    trl = crop_behaviour(load_run(write_trl_completions(tmp_path / "t", steps=3, per_step=4, collapse=True)))
    assert [r["crop_rate"] for r in trl] == [1.0, 0.5, 0.0] and trl[0]["reward/format"] == 1.0


def test_a_bench_run_is_read_with_the_benchmark_s_own_verdicts(tmp_path):
    data = write_benchmark("vstar", tmp_path)
    run_bench(
        tiny_policy(), "vstar", BenchConfig(data=str(data), out=str(tmp_path / "run"), rollout={"max_new_tokens": 4})
    )
    assert sniff(tmp_path / "run") == "bench"
    trajs = load_run(tmp_path / "run")
    assert all("hit" in t.meta for t in trajs) and len(crop_behaviour(trajs)) == 1


def test_r3lab_eval_trajectories_are_read_too(tmp_path):
    from r3lab.data.vlir import build_samples
    from r3lab.evaluation.evaluation import EvalConfig, evaluate

    policy = tiny_policy()
    res = evaluate(
        policy, build_samples(2, seed=0, view=policy.view, progress=False), EvalConfig(rollout={"max_new_tokens": 4})
    )
    res.save(tmp_path)
    assert sniff(tmp_path) == "eval" and sniff(tmp_path / "trajectories.jsonl") == "r3lab"
    (row,) = crop_behaviour(load_run(tmp_path / "trajectories.jsonl"))
    assert row["n"] == 2 and 0.0 <= row["crop_rate"] <= 1.0
    with pytest.warns(UserWarning, match="no tool-necessity keys"):  # the folder: its results.json, one row
        (summary,) = crop_behaviour(load_run(tmp_path))
    assert summary["crop_rate"] == res["all"]["crop_rate"] and summary["accuracy"] == res["all"]["accuracy"]


def test_collapse_settings_are_checked():
    with pytest.raises(ValueError, match=r"CollapseConfig\.window = 0 is not allowed"):
        CollapseConfig(window=0)
    with pytest.raises(
        ValueError,
        match=r"CollapseConfig\.floor = 2\.0 is not allowed: "
        r"expected a finite number in \[0\.0, 1\.0\]",
    ):
        CollapseConfig(floor=2.0)


def test_unknown_inputs_are_refused_clearly(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"foo": 1}\n')
    with pytest.raises(ValueError, match="match no known format; pass --format"):
        load_run(tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="format must be one of"):
        load_run(tmp_path / "x.jsonl", format="wandb")
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="MetricLog or a non-empty list"):
        crop_behaviour([])


def test_eval_folders_that_cannot_be_read_are_named(tmp_path):
    import json
    import warnings

    from r3lab.evaluation.behaviour import load_evals

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty holds no log.jsonl, items.jsonl, results.json"):
        load_run(tmp_path / "empty")
    good = tmp_path / "step_3"
    good.mkdir()
    (good / "results.json").write_text(json.dumps({"rows": {"all": {"n": 2, "accuracy": 0.5, "tool_gain": 0.5}}}))
    with pytest.raises(
        FileNotFoundError, match=r"empty/results.json does not exist: pass the --out folder of `r3lab eval`"
    ):
        load_evals([good, tmp_path / "empty"])
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "results.json").write_text(json.dumps([{"name": "sft"}]))
    with pytest.raises(ValueError, match=r"recipe/results.json: not an `r3lab eval` results.json"):
        load_run(tmp_path / "recipe")
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "results.json").write_text('{"rows": {"all": ')
    with pytest.raises(ValueError, match=r"cut/results.json: not valid JSON \(line 1"):
        load_evals([tmp_path / "cut"])
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "results.json").write_text(json.dumps({"rows": {"all": {"n": 2, "crop_rate": 0.5}}}))
    with pytest.warns(UserWarning, match=r"plain/results.json: no tool-necessity keys .* --necessity true"):
        (row,) = crop_behaviour(load_run(tmp_path / "plain"))
    assert row == {"step": 0, "n": 2.0, "crop_rate": 0.5}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["step"] for r in crop_behaviour(load_evals([good]))] == [3]
    (good / "results.json").write_text(json.dumps({"rows": {"all": {"n": 1, "tool_gain": 0.0}}, "complete": False}))
    with pytest.warns(UserWarning, match=r"step_3/results.json holds a partial evaluation .* 1 samples"):
        load_evals([good])


def test_a_rate_that_never_fell_is_not_said_to_fall():
    from r3lab.evaluation.behaviour import CollapseConfig, detect_collapse

    rows = [{"step": s, "crop_rate": 0.75, "accuracy": 0.75} for s in range(8)]
    out = detect_collapse(rows, config=CollapseConfig(window=3, floor=0.8))
    assert out["collapsed"] and "fell" not in out["message"], out["message"]
    assert "crop_rate stayed at or below the floor of 0.80: 0.75 -> 0.75 (steps 0-7)" in out["message"]
    falling = [{"step": s, "crop_rate": 0.9 - 0.1 * s, "accuracy": 0.75} for s in range(8)]
    assert "crop_rate fell from 0.80 to 0.30" in detect_collapse(falling, config=CollapseConfig(window=3))["message"]
