"""A sweep's metrics against a swept setting as a matplotlib figure (the notebook's view of sweep.html's plots): each
point's mean with its seed-aware interval, each seed's run as a dot, the chance level dashed."""

from __future__ import annotations

import json
import math
from typing import Sequence

from matplotlib.figure import Figure


def plot_sweep(
    sweep,
    results: Sequence,
    metrics: Sequence[str] | None = None,
    setting: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """One panel per metric (default: the sweep's) against `setting` (default: the grid's first name)."""
    metrics = list(metrics or sweep.metrics())
    setting = setting or next(iter(sweep.spec.grid), None)
    if setting is None:
        raise ValueError("plot_sweep: the sweep has no grid: nothing varies to plot against")
    values = sweep.spec.grid[setting]
    fig = fig or Figure(figsize=(3.6 * len(metrics), 3.2), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    labels = [json.dumps(v) if isinstance(v, (list, dict)) else str(v) for v in values]
    for ax, metric in zip(axes, metrics):
        rs = [r for r in results if r.metric == metric]
        for r in rs:
            x = values.index(r.point[setting])
            est = r.estimate
            if not math.isnan(est.mean):
                err = None if math.isnan(est.lo) else [[est.mean - est.lo], [est.hi - est.mean]]
                ax.errorbar([x], [est.mean], yerr=err, fmt="o", color="C0", capsize=4, zorder=3)
        for run in sweep.runs:
            if run["status"].state == "done":
                v = sweep.run_value(run, metric)
                if not math.isnan(v):
                    ax.plot([values.index(run["point"][setting]) + 0.12], [v], ".", color="0.4", ms=5)
        chance = next((r.chance for r in rs if r.chance is not None), None)
        if chance is not None:
            ax.axhline(chance, ls="--", color="0.3", lw=1)
            ax.text(len(values) - 0.5, chance, " chance", va="bottom", ha="right", fontsize=8)
        ax.set_xticks(range(len(values)), labels)
        ax.set_xlim(-0.5, len(values) - 0.5)
        ax.set_xlabel(setting)
        ax.set_title(metric, fontsize=10)
    axes[0].set_ylabel("mean and 95 % interval; dots: runs")
    return fig
