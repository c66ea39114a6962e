"""Training figures: metric curves (raw and smoothed), a live-updating callback, the held-out curve of an
`EvalEvery` callback, and R-GRPO's clipped objective.

`LivePlot` is the callback notebooks pass to `train(...)`: it redraws the figure in place with
`IPython.display.clear_output(wait=True)` and shows nothing outside a kernel. In a headless run (the
notebook runner) nobody watches, so it draws once, at the run's last step, the figure the saved
notebook keeps.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from matplotlib.figure import Figure

from ..core.env import headless
from ..train.metrics import MetricLog


def plot_metrics(
    log: MetricLog,
    keys: Sequence[str] | None = None,
    title: str | None = None,
    smooth: int = 1,
    fig=None,
    ncols: int = 3,
):
    """Panels of metric curves (raw and, with `smooth` > 1, a running mean over `smooth` steps). The mean is drawn
    from the step where it averages at least half its window: a "mean" of the first one or two noisy batches
    would start the thick line at one batch's value and read as a trend. Returns the Figure."""
    keys = [k for k in (keys or [k for k in log.keys() if k != "step"]) if log.series(k)[0]]
    n = max(1, len(keys))
    # the widest grid up to `ncols` that leaves the fewest panels empty (4 curves: 2 x 2, not 3 + 1 and two blanks)
    ncols = min(range(min(2, n, ncols), min(ncols, n) + 1), key=lambda c: (math.ceil(n / c) * c - n, -c))
    nrows = math.ceil(n / ncols)
    fig = fig or Figure(figsize=(3.6 * ncols, 2.5 * nrows), layout="constrained")
    fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        xs, ys = log.series(key)
        ax.plot(xs, ys, color="C0", alpha=0.35 if smooth > 1 else 1.0, lw=1)
        if smooth > 1 and len(ys) >= 2:
            win = [ys[max(0, i - smooth + 1) : i + 1] for i in range(len(ys))]
            sm = [sum(w) / len(w) for w in win]
            first = min(len(ys) - 1, (smooth + 1) // 2 - 1)  # the first step whose window is half full
            ax.plot(xs[first:], sm[first:], color="C0", lw=2)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(keys) :]:
        ax.axis("off")
    if not keys:
        axes[0].text(0.5, 0.5, "no data yet", ha="center", va="center")
    if title:
        fig.suptitle(title)
    return fig


class LivePlot:
    """A `train(..., callbacks=[LivePlot([...])])` callback that redraws the curves every `every` steps and at the
    run's last step, so the figure left in the notebook shows the whole run (draw no second copy after it).

    The figure is kept on `self.fig`; outside an IPython kernel nothing is displayed.
    """

    def __init__(self, keys: Sequence[str], every: int = 1, smooth: int = 1, title: str | None = None):
        self.keys, self.every, self.smooth, self.title = list(keys), max(1, every), smooth, title
        self.fig = None

    def __call__(self, state, row: dict) -> None:
        steps = getattr(getattr(state, "config", None), "steps", None)
        last = row.get("step", 0) == steps
        if isinstance(steps, int) and headless():  # nobody watches: draw once, at the last step
            if not last:
                return
        elif row.get("step", 0) % self.every and not last:
            return
        self.fig = plot_metrics(state.log, self.keys, title=self.title, smooth=self.smooth, fig=self.fig)
        _redraw(self.fig)


def _redraw(fig) -> None:
    try:
        from IPython import get_ipython  # optional: only notebooks install IPython
        from IPython.display import clear_output, display
    except ImportError:
        return
    if get_ipython() is None:
        return
    clear_output(wait=True)
    display(fig)


FAMILY_COLOURS = {
    "read_one": "#1f77b4",
    "compare_two": "#ff7f0e",
    "count": "#8c564b",
    "control": "#2ca02c",
    "all": "#222222",
}


def plot_eval_curve(
    evals,
    metrics: Sequence[str] = ("accuracy", "reward", "crop_iou"),
    chance: dict | None = None,
    title: str | None = None,
    fig=None,
):
    """Held-out numbers against training steps: one panel per metric, one line per family ("all" in black), each
    family's `chance` level (a dict, e.g. `chance_levels()`) dashed in its colour on the accuracy panel.
    `evals` is an `EvalEvery` or its `MetricLog` (keys "family/metric"). Returns the Figure."""
    log = getattr(evals, "log", evals)
    keys = log.keys()
    families = list(dict.fromkeys(k.split("/")[0] for k in keys if "/" in k))
    if not families:
        raise ValueError("plot_eval_curve: no evaluations logged yet (keys like 'read_one/accuracy')")
    fig = fig or Figure(figsize=(3.6 * len(metrics), 2.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, m in zip(axes, metrics):
        for fam in families:
            xs, ys = log.series(f"{fam}/{m}")
            colour = FAMILY_COLOURS.get(fam, "#17becf")
            if xs:
                ax.plot(xs, ys, "o-", color=colour, lw=2.5 if fam == "all" else 1.5, ms=3, label=fam)
            if m == "accuracy" and fam in (chance or {}):
                ax.axhline(chance[fam], color=colour, ls="--", lw=1, alpha=0.7)
        ax.set_title(f"held-out {m}" + (" (dashed: chance)" if m == "accuracy" and chance else ""), fontsize=9)
        ax.set_xlabel("training step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if m in ("accuracy", "crop_rate", "crop_iou"):
            ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def plot_clipped_objective(eps_low: float = 0.2, eps_high: float = 0.28, fig=None):
    """The per-token objective min(r A, clip(r) A) against the ratio r, for A = +1 and A = -1. Returns the Figure."""
    r = torch.linspace(0.0, 2.0, 401)
    fig = fig or Figure(figsize=(8, 3), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, a in zip(axes, (1.0, -1.0)):
        obj = torch.minimum(r * a, torch.clamp(r, 1 - eps_low, 1 + eps_high) * a)
        ax.plot(r, r * a, ":", color="grey", label="r A (unclipped)")
        ax.plot(r, obj, color="C0", lw=2, label="min(r A, clip(r) A)")
        flat = ((r > 1 + eps_high) & (a > 0)) | ((r < 1 - eps_low) & (a < 0))
        ax.fill_between(
            r, obj.min().item(), obj.max().item(), where=flat, color="C3", alpha=0.12, label="clipped: no gradient"
        )
        ax.axvline(1.0, color="k", lw=0.5)
        ax.set_xlabel("ratio r = p_new / p_rollout")
        ax.set_title(f"advantage A = {a:+.0f}")
    axes[0].legend(fontsize=7)
    return fig
