"""The crop dashboard: one plotly figure with a panel per measure, the collapse verdict, one self-contained page."""
import re

import plotly.graph_objects as go

from r3lab.testing.mini_runs import write_training_log
from r3lab.replication.behaviour import crop_behaviour
from r3lab.train.metrics import MetricLog
from r3lab.viz.dashboard import crop_dashboard, figure_dashboard, save_dashboard


def test_the_dashboard_draws_every_panel_and_flags_a_collapse(tmp_path):
    log = write_training_log(tmp_path / "run" / "log.jsonl", collapse=True)
    fig = crop_dashboard(tmp_path / "run")
    assert isinstance(fig, go.Figure)
    names = {tr.name for tr in fig.data}
    assert {"crop_rate", "invalid_crop_rate", "crops", "crop_iou", "all", "with a crop", "without a crop", "reward",
            "reward/accuracy", "reward/format"} <= names
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
    assert len(fig.layout.annotations) == 1  # one panel: its title; the five unmeasured ones are named, not drawn
    assert fig.layout.meta["missing"] == ["invalid-crop rate", "crops per answer", "crop IoU with the ground truth",
                                          "accuracy: all / with a crop / without", "reward and its terms"]
    assert "not measured in this run: invalid-crop rate" in fig.layout.title.text
