"""The audit as one figure: per family, each setting's accuracy with its 95 % interval for each audited model, and the
chance level a guessing model would score (dashed)."""

from __future__ import annotations

import math
from typing import Sequence

from matplotlib.figure import Figure

from ..audit.audit import SETTINGS

SHOWN = ("accuracy", *(f"acc_{s}" for s in SETTINGS))  # the model's own crops, then each setting
NAMES = ("own crops", "format only", "dummy crop", "result only", "no crop", "majority, no crop")


def plot_audit(audits: dict[str, dict], families: Sequence[str] | None = None) -> Figure:
    """audits: label -> an audited results dict (`rows`: family -> keys). One panel per family, one group of bars
    per setting, one bar per model, whiskers from the interval, chance dashed."""
    first = next(iter(audits.values()))["rows"]
    families = list(families or [f for f in first if f != "all"])
    fig = Figure(figsize=(4.2 * len(families), 3.6))  # not pyplot's: a notebook shows the returned figure once
    axes = fig.subplots(1, len(families), sharey=True, squeeze=False)
    width = 0.8 / max(1, len(audits))
    for ax, fam in zip(axes[0], families):
        for j, (label, res) in enumerate(audits.items()):
            row = res["rows"].get(fam, {})
            vals = [_v(row.get(k)) for k in SHOWN]
            err = [
                [max(0.0, v - _v(row.get(f"{k}_lo"), v)) for k, v in zip(SHOWN, vals)],
                [max(0.0, _v(row.get(f"{k}_hi"), v) - v) for k, v in zip(SHOWN, vals)],
            ]
            xs = [i + (j - (len(audits) - 1) / 2) * width for i in range(len(SHOWN))]
            ax.bar(xs, vals, width, yerr=err, capsize=2, label=label)
        chance = _v(first.get(fam, {}).get("chance"))
        if not math.isnan(chance):
            ax.axhline(chance, ls="--", c="k", lw=1, label="chance")
        ax.set_xticks(range(len(SHOWN)), NAMES, rotation=35, ha="right", fontsize=8)
        ax.set_title(fam)
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("accuracy (95 % interval)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    return fig


def _v(x, default: float = math.nan) -> float:
    return default if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
