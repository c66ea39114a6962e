"""The figure of one benchmark run: accuracy with and without a crop, crop behaviour, and where the crops landed."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from ..bench.run import BenchResult


def plot_bench(result: BenchResult, fig=None) -> Figure:
    """Three panels: accuracy per category (all / with a crop / without), crop rate and invalid-crop rate per
    category, and the histogram of crop IoU with the target boxes (crops per answer where there are none)."""
    cats = [c for c in result.rows if c != "all"] + ["all"]
    fig = fig or Figure(figsize=(12, 3.4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    _bars(ax1, result, cats, ("accuracy", "accuracy_crop", "accuracy_no_crop"), ("all", "with a crop", "without"))
    for i, c in enumerate(cats):  # guessing among the options shown: a bar at 0 is then plainly below it
        level = chance(result, c)
        if level is not None:
            ax1.hlines(level, i - 0.1, i + 0.7, colors="k", linestyles="--", lw=1, label="chance" if i == 0 else None)
    ax1.legend(fontsize=7)
    ax1.set_title("accuracy", fontsize=10)
    _bars(ax2, result, cats, ("crop_rate", "invalid_crop_rate"), ("crop rate", "invalid-crop rate"))
    ax2.set_title("crop behaviour", fontsize=10)
    ious = [it["crop_iou"] for it in result.items if it.get("crop_iou") is not None]
    if ious:
        ax3.hist(ious, bins=[i / 10 for i in range(11)], color="C2")
        ax3.set_xlabel("crop IoU with the target boxes")
        ax3.set_title(f"crop IoU: mean {sum(ious) / len(ious):.2f} over {len(ious)} answers with a crop", fontsize=10)
    else:
        crops = [it["crops"] for it in result.items]
        ax3.hist(crops, bins=range(0, max(crops, default=0) + 2), color="C2", align="left", rwidth=0.8)
        ax3.set_xticks(range(0, max(crops, default=0) + 1))  # whole crops only
        ax3.set_xlabel("crops per answer")
        ax3.set_title("crops per answer (no target boxes)", fontsize=10)
    ax3.set_ylabel("answers")
    head = ", ".join(f"{k} {v:.3f}" for k, v in result.headline.items() if not _nan(v))
    fig.suptitle(f"{result.name} ({len(result.items)} questions): {head}", fontsize=11)
    return fig


def chance(result: BenchResult, category: str = "all") -> float | None:
    """Accuracy of a uniform guess among each question's options, averaged over `category`'s items (None
    where items record no options, e.g. open answers)."""
    odds = [
        1 / len(opts)
        for it in result.items
        if category in ("all", it.get("category"))
        if (opts := (it.get("provenance") or {}).get("options"))
    ]
    return sum(odds) / len(odds) if odds else None


def _bars(ax, result, cats, keys, labels):
    width = 0.8 / len(keys)
    for k, (key, label) in enumerate(zip(keys, labels)):
        vals = [result.rows[c].get(key) for c in cats]
        bars = ax.bar(
            [i + k * width for i in range(len(cats))],
            [0 if _nan(v) else v for v in vals],
            width,
            label=label,
            color=f"C{k}",
        )
        # a value of 0 is a bar of no height: the label says it was measured (and "–" that it was not)
        ax.bar_label(bars, labels=["–" if _nan(v) else f"{v:.2f}" for v in vals], fontsize=6, padding=1)
    ax.set_xticks([i + width * (len(keys) - 1) / 2 for i in range(len(cats))], cats, rotation=20, fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
