"""The crop dashboard: one plotly figure with a panel per measure, the collapse verdict, one self-contained page."""

import re

import plotly.graph_objects as go

from r3lab.evaluation.behaviour import crop_behaviour
from r3lab.testing.mini_runs import write_training_log
from r3lab.train.metrics import MetricLog
from r3lab.viz.dashboard import crop_dashboard, figure_dashboard, save_dashboard


def test_the_dashboard_draws_every_panel_and_flags_a_collapse(tmp_path):
    log = write_training_log(tmp_path / "run" / "log.jsonl", collapse=True)
    fig = crop_dashboard(tmp_path / "run")
    assert isinstance(fig, go.Figure)
    names = {tr.name for tr in fig.data}
    assert {
        "crop_rate",
        "invalid_crop_rate",
        "crops",
        "crop_iou",
        "all",
        "with a crop",
        "without a crop",
        "reward",
        "reward/accuracy",
        "reward/format",
    } <= names
    assert "crop collapse" in fig.layout.title.text and fig.layout.meta["collapse"]["collapsed"] is True
    page = save_dashboard(fig, tmp_path / "dash.html").read_text()
    assert "crop collapse" in page and "Plotly" in page and "<table>" in page
    assert not re.findall(r"<(?:script|link|img)[^>]*(?:src|href)=", page)  # plotly.js inlined: it opens offline
    healthy = crop_dashboard(MetricLog.load_jsonl(write_training_log(tmp_path / "ok.jsonl", collapse=False)))
    assert "no collapse" in healthy.layout.title.text and healthy.layout.meta["collapse"]["collapsed"] is False
    assert len(crop_behaviour(MetricLog.load_jsonl(log))) == 12


def test_steps_without_a_measure_are_left_out_not_drawn_as_zero():
    rows = [{"step": 1, "crop_rate": 0.5, "accuracy": float("nan")}, {"step": 2, "crop_rate": 0.4}]
    fig = figure_dashboard(rows)
    assert {tr.name for tr in fig.data} == {"crop_rate"}  # no accuracy was measured: no accuracy line
    assert fig.layout.meta["rows"][0]["accuracy"] is None
    assert len(fig.layout.annotations) == 1  # one panel: its title; the six unmeasured ones are named, not drawn
    assert fig.layout.meta["missing"] == [
        "invalid-crop rate",
        "crops per answer",
        "crop IoU with the ground truth",
        "accuracy: all / with a crop / without",
        "reward and its terms",
        "tool necessity",
    ]
    assert "not measured in this run: invalid-crop rate" in fig.layout.title.text


def test_tool_necessity_is_a_panel_where_the_run_measured_it_and_a_note_where_not(tmp_path):
    from r3lab.bench.run import BenchConfig
    from r3lab.evaluation.necessity import bench_necessity
    from r3lab.testing import tiny_policy
    from r3lab.testing.mini_benchmarks import write_benchmark

    rows = [
        {
            "step": s,
            "crop_rate": 0.5,
            "tool_gain": g,
            "tool_harm": 0.1,
            "zooming_gap": -0.2,
            "crop_rate_need": 0.6,
            "crop_rate_no_need": 0.3,
        }
        for s, g in ((10, 0.2), (20, 0.1))
    ]
    fig = figure_dashboard(rows)
    traces = {tr.name: tr for tr in fig.data}
    assert list(traces["tool_gain"].y) == [0.2, 0.1] and list(traces["zooming_gap"].y) == [-0.2, -0.2]
    assert {"crop rate, needs a crop", "crop rate, needs none"} <= set(traces)
    assert "tool necessity" in [a.text for a in fig.layout.annotations]
    # a bench run with necessity: one point; without: named under the title, never a crash
    data = write_benchmark("vstar", tmp_path)
    bench_necessity(
        tiny_policy(), "vstar", BenchConfig(data=str(data), n=2, out=str(tmp_path / "b"), rollout={"max_new_tokens": 6})
    )
    bench = crop_dashboard(tmp_path / "b")
    assert "tool necessity" not in bench.layout.meta["missing"] and "tool_harm" in {tr.name for tr in bench.data}
    assert bench.layout.meta["rows"][0]["crop_rate_need"] == bench.layout.meta["rows"][0]["crop_rate"]
    plain = crop_dashboard(MetricLog.load_jsonl(write_training_log(tmp_path / "ok.jsonl", collapse=False)))
    assert "tool necessity" in plain.layout.meta["missing"] and "not measured in this run" in plain.layout.title.text
    from r3lab.testing.mini_runs import write_deepeyes_eval

    # another system
    other = crop_dashboard(write_deepeyes_eval(tmp_path / "de"), image_root=tmp_path / "de" / "images")
    assert "tool necessity" in other.layout.meta["missing"]
    save_dashboard(bench, tmp_path / "bench.html")
    assert "tool_gain" in (tmp_path / "bench.html").read_text()  # the steps table carries the keys too


def test_r3lab_eval_folders_draw_tool_necessity_per_step_and_per_family(tmp_path):
    import dataclasses
    import json

    from r3lab.evaluation.evaluation import EvalConfig, evaluate
    from r3lab.testing import tiny_policy, toy_samples

    policy = tiny_policy()
    samples = toy_samples(3, policy.view)
    samples[1] = dataclasses.replace(samples[1], family="control")  # a question that needs no crop: two families
    res = evaluate(
        policy,
        samples,
        EvalConfig(rollout={"max_new_tokens": 6, "max_segment_tokens": 6}, necessity=True),
        progress=False,
    )
    late, early = res.save(tmp_path / "step_000020"), res.save(tmp_path / "step_000010")
    saved = json.loads((early / "results.json").read_text())
    saved["rows"]["all"]["tool_gain"] = 0.75  # the earlier checkpoint's number, told apart from the later one's
    (early / "results.json").write_text(json.dumps(saved))
    fig = crop_dashboard([late, early])  # given out of order: placed by the step in each folder's name
    assert "tool necessity" not in fig.layout.meta["missing"]
    assert [r["step"] for r in fig.layout.meta["rows"]] == [10, 20]
    lines = {tr.name: tr for tr in fig.data if tr.type == "scatter"}
    assert list(lines["tool_gain"].y) == [0.75, res["all"]["tool_gain"]]
    assert list(lines["crop rate, needs none"].y) == [res["all"]["crop_rate_no_need"]] * 2
    bars = {tr.name: tr for tr in fig.data if tr.type == "bar"}
    assert set(bars) == {"control", "read_one"}
    assert "tool necessity per family (step 20)" in [a.text for a in fig.layout.annotations]
    for fam, bar in bars.items():
        want = [res[fam][k] for k in ("tool_gain", "tool_harm", "zooming_gap", "crop_rate_need", "crop_rate_no_need")]
        assert [None if y is None else float(y) for y in bar.y] == [None if v != v else v for v in want], fam
    page = save_dashboard(crop_dashboard(late), tmp_path / "one.html").read_text()  # one folder: one point
    assert "tool necessity per family" in page and "acc_gt_box" in page and "read_one" in page
