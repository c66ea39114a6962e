"""Training figures: metric panels with their running mean, the live callback, the clipped objective."""

from types import SimpleNamespace

import pytest
from matplotlib.figure import Figure

import r3lab.viz.training as training
from r3lab.train.metrics import MetricLog
from r3lab.viz.training import LivePlot, plot_clipped_objective, plot_metrics


def _log(n=6) -> MetricLog:
    log = MetricLog()
    for step in range(1, n + 1):
        log.log(step, reward=float(step), kl=float("nan") if step % 2 else 0.1 * step)
    return log


def test_one_panel_per_metric_raw_curve_and_running_mean():
    fig = plot_metrics(_log(), smooth=3, ncols=3)
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in shown] == ["reward", "kl"]  # "step" is the x axis, not a panel
    raw, mean = shown[0].lines
    assert list(raw.get_ydata()) == [1, 2, 3, 4, 5, 6]
    assert list(mean.get_ydata()) == pytest.approx([1.5, 2, 3, 4, 5])  # the mean of the last 3 values ...
    assert list(mean.get_xdata()) == [2, 3, 4, 5, 6]  # ... from the step whose window is half full
    assert list(shown[1].lines[0].get_xdata()) == [2, 4, 6]  # NaN rows are skipped, not drawn as zero
    assert len(fig.axes) == 2 and len(plot_metrics(_log(), ["reward"], smooth=1).axes[0].lines) == 1


def test_unknown_or_empty_metrics_leave_a_note_and_extra_panels_off():
    fig = plot_metrics(_log(), ["reward", "missing"], ncols=3, title="run")
    assert [ax.get_title() for ax in fig.axes] == ["reward"] and fig._suptitle.get_text() == "run"
    empty = plot_metrics(MetricLog())
    assert empty.axes[0].texts[0].get_text() == "no data yet"
    fig = plot_metrics(_log(), ["reward", "kl"], ncols=3)
    assert len(fig.axes) == 2  # a row of two panels: no third, empty one


def test_live_plot_redraws_every_n_steps_into_one_figure(monkeypatch):
    shown = []
    monkeypatch.setattr(training, "_redraw", shown.append)
    live, log = LivePlot(["reward"], every=2), _log()
    state = SimpleNamespace(log=log)
    for row in log:
        live(state, row)
    assert len(shown) == 3 and all(f is live.fig for f in shown)  # steps 2, 4, 6, always the same figure
    assert list(live.fig.axes[0].lines[0].get_ydata()) == [1, 2, 3, 4, 5, 6]
    shown.clear()
    monkeypatch.setattr(training, "headless", lambda: False)  # watched in a kernel
    state = SimpleNamespace(log=_log(5), config=SimpleNamespace(steps=5))
    for row in state.log:
        LivePlot(["reward"], every=4)(state, row)
    assert len(shown) == 2  # step 4, and step 5: the run's last step is always drawn


def test_live_plot_in_a_headless_run_draws_once_at_the_last_step(monkeypatch):
    shown = []
    monkeypatch.setattr(training, "_redraw", shown.append)
    monkeypatch.setattr(training, "headless", lambda: True)
    live, log = LivePlot(["reward"], every=2), _log()
    state = SimpleNamespace(log=log, config=SimpleNamespace(steps=6))
    for row in log:
        live(state, row)
    assert len(shown) == 1 and list(live.fig.axes[0].lines[0].get_ydata()) == [1, 2, 3, 4, 5, 6]
    monkeypatch.setattr(training, "headless", lambda: False)  # watched: every `every` steps again
    shown.clear()
    for row in log:
        live(state, row)
    assert len(shown) == 3


def test_the_clipped_objective_is_flat_where_the_clip_binds():
    fig = plot_clipped_objective(eps_low=0.2, eps_high=0.28)
    up, down = fig.axes
    r, obj = up.lines[1].get_xdata(), up.lines[1].get_ydata()
    assert max(obj) == pytest.approx(1.28)
    assert obj[list(r).index(min(r, key=lambda v: abs(v - 2.0)))] == pytest.approx(1.28)
    r, obj = down.lines[1].get_xdata(), down.lines[1].get_ydata()
    assert obj[0] == pytest.approx(-0.8)  # A < 0: below 1 - eps_low the objective is clipped flat at -(1 - eps)
    assert up.get_title() == "advantage A = +1" and down.get_title() == "advantage A = -1"


def test_four_curves_fill_a_two_by_two_grid_with_no_empty_panel():
    log = MetricLog()
    for s in range(3):
        log.log(s, loss=1.0 / (s + 1), lr=1e-3, grad_norm=0.5, tokens_per_s=100.0)
    fig = plot_metrics(log, ["loss", "lr", "grad_norm", "tokens_per_s"])
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == len(shown) == 4 and fig.axes[1].get_subplotspec().get_geometry()[:2] == (2, 2)
    assert [len(plot_metrics(log, ["loss"] * n).axes) for n in (3, 5, 6)] == [3, 6, 6]  # 3 in a row; 2 x 3
