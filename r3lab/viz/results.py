"""Figures of evaluation results: families side by side, models side by side, the replication table."""

from __future__ import annotations

import math
import textwrap
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..core.settings import short
from ..evaluation.evaluation import EvalResult
from ..evaluation.progress import chance_levels
from ..recipe.report import LABELS, families_of
from ..train.rewards import accuracy
from .mpl import plot_trajectory

# one colour per replication row in every figure (the card's and a student's run alike), whatever rows a run has
ROW_COLOURS = {
    "no_crop": "#7f7f7f",
    "sft": "#1f77b4",
    "sft_rgrpo": "#2ca02c",
    "rgrpo_no_region": "#ff7f0e",
    "oracle": "#9467bd",
    "random": "#d62728",
}
_OTHER = ("#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939")


def row_colour(name: str) -> str:
    """The colour of a replication row (`ROW_COLOURS`); another name gets a colour fixed by the name itself."""
    return ROW_COLOURS.get(name) or _OTHER[sum(map(ord, name)) % len(_OTHER)]


def _chance(families: Sequence[str], chance) -> dict:
    """`chance` as given (a dict), none (False), or the default world's level of each family it knows (None)."""
    if chance is False:
        return {}
    if chance is None:
        known = [f for f in families if f in ("read_one", "compare_two", "count", "control")]
        return chance_levels(families=known)
    return dict(chance)


def _chance_lines(ax, xs, chance: dict, families: Sequence[str], half: float, scale: float = 1.0) -> None:
    """A dashed line at each family's chance level across its group of bars, labelled once."""
    labelled = False
    for x, fam in zip(xs, families):
        if fam in chance:
            ax.hlines(
                chance[fam] * scale,
                x - half,
                x + half,
                colors="k",
                linestyles="--",
                lw=1,
                label=None if labelled else "chance",
                gid="chance",
            )
            labelled = True


def plot_results(
    results: dict[str, EvalResult],
    metrics: Sequence[str] = ("accuracy", "crop_rate", "crop_iou"),
    title: str | None = None,
    fig=None,
    chance: dict | bool | None = None,
):
    """Grouped bars per family, one panel per metric, one colour per result, each family's chance level dashed on
    the accuracy panel (`chance`: a dict family -> level, False for none, None for the default world's). Returns
    the Figure."""
    names = list(results)
    families = sorted({f for r in results.values() for f in r.rows if f != "all"}) + ["all"]
    fig = fig or Figure(figsize=(3.4 * len(metrics) + 1, 3.0), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    width = 0.8 / max(1, len(names))
    for ax, m in zip(axes, metrics):
        for k, name in enumerate(names):
            vals = [results[name].rows.get(f, {}).get(m, math.nan) for f in families]
            ax.bar(
                [i + k * width for i in range(len(families))],
                [0 if v != v else v for v in vals],
                width,
                label=name or None,
                color=f"C{k}",
            )
        ax.set_xticks(
            [i + width * (len(names) - 1) / 2 for i in range(len(families))], families, rotation=30, fontsize=8
        )
        ax.set_title(m, fontsize=10)
        if m == "accuracy":
            _chance_lines(
                ax,
                [i + width * (len(names) - 1) / 2 for i in range(len(families))],
                _chance(families, chance),
                families,
                0.45,
            )
        if m in ("accuracy", "crop_rate", "crop_iou", "answered", "invalid_crop_rate"):
            ax.set_ylim(0, 1)
    handles = {}  # the results' names and the chance line, once each, wherever they were drawn
    for ax in axes:
        handles.update({lab: h for h, lab in zip(*ax.get_legend_handles_labels())})
    if handles:
        axes[-1].legend(list(handles.values()), list(handles), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def is_right(t) -> bool:
    """Whether a trajectory's final answer is right (the accuracy reward's rule, the one the titles below show)."""
    return accuracy(None, [t.completion()], [t.answers])[0] == 1.0


def changed_answers(before: Sequence, after: Sequence, skip: Sequence[str] = ("control",)) -> tuple[list, list]:
    """Indices of the questions whose answer turned right (`fixed`) and turned wrong (`broken`) between two runs
    over the same questions in the same order, families in `skip` left out. Returns (fixed, broken)."""
    if len(before) != len(after):
        raise ValueError(
            f"changed_answers: {len(before)} trajectories before and {len(after)} after; "
            "pass the two runs' trajectories of the same questions"
        )
    fixed, broken = [], []
    for i, (b, a) in enumerate(zip(before, after)):
        if b.sample_id != a.sample_id:
            raise ValueError(
                f"changed_answers: question {i} is {short(b.sample_id)} before and {short(a.sample_id)} after; "
                "evaluate both on the same samples in the same order"
            )
        if b.family not in skip and is_right(b) != is_right(a):
            (fixed if is_right(a) else broken).append(i)
    return fixed, broken


def plot_side_by_side(columns: dict[str, Sequence], k: int = 3, width: int = 44, fig=None):
    """k samples (rows) x models (columns): the main image with the crops it asked for, and what it wrote.

    `columns` maps a name (e.g. "before SFT", "after SFT") to trajectories of the same samples, in
    the same order. Returns the Figure.
    """
    names = list(columns)
    k = min(k, *(len(v) for v in columns.values()))
    fig = fig or Figure(figsize=(4.2 * len(names), 4.6 * k), layout="constrained")
    axes = fig.subplots(k, len(names), squeeze=False)
    for c, name in enumerate(names):
        for r in range(k):
            t, ax = columns[name][r], axes[r][c]
            plot_trajectory(t, ax=ax)
            got = t.final_answer()
            ok = is_right(t)
            ax.set_title(
                f"{name}: {'right' if ok else 'wrong'} ({got!r}; truth {t.answers[0]!r})",
                fontsize=8,
                color="green" if ok else "crimson",
            )
            body = t.completion().replace("<|im_end|>", "").replace("\n", "\\n ") or "(nothing)"
            lines = textwrap.wrap(body, width)[:9]
            ax.text(
                0,
                -0.04,
                "\n".join(lines),
                transform=ax.transAxes,
                va="top",
                ha="left",
                fontsize=6.5,
                family="monospace",
            )
    return fig


def plot_table(results: dict, families: Sequence[str] | None = None, fig=None, chance: dict | bool | None = None):
    """The replication table as a figure: accuracy per family and row (left, each family's chance level dashed)
    and each row's crop IoU (right), both with their 95% intervals as error bars (rows that made no crop have no
    IoU bar). Each row keeps its colour (`row_colour`) in every table drawn. Returns the Figure."""
    rows = results["rows"]
    if not rows:
        raise ValueError("plot_table: these results hold no rows (run a recipe, or load_card(), first)")
    fams = families_of(results, families)
    fig = fig or Figure(figsize=(4.4 + 1.6 * len(fams), 4.2), layout="constrained")
    ax, ax_iou = fig.subplots(1, 2, width_ratios=[max(1, len(fams)), 1.4])
    width = 0.8 / max(1, len(rows))

    def bars(values):  # value, lower and upper error of each entry (NaN where missing)
        v, lo, hi = (np.array([np.nan if x is None else x for x in xs], dtype=float) for xs in zip(*values))
        return v, np.stack([v - lo, hi - v])

    for k, (name, r) in enumerate(rows.items()):
        acc, err = bars(
            [
                (r.get(f, {}).get("accuracy"), r.get(f, {}).get("accuracy_lo"), r.get(f, {}).get("accuracy_hi"))
                for f in fams
            ]
        )
        x = np.arange(len(fams)) + (k - (len(rows) - 1) / 2) * width
        ax.bar(x, acc * 100, width, label=LABELS.get(name, name), yerr=err * 100, capsize=2, color=row_colour(name))
        a = r.get("all", {})
        iou, ierr = bars(
            [(a.get("crop_iou"), a.get("crop_iou_lo", a.get("crop_iou")), a.get("crop_iou_hi", a.get("crop_iou")))]
        )
        if not np.isnan(iou[0]):
            ax_iou.bar([k], iou, 0.8, yerr=None if np.isnan(ierr).any() else ierr, capsize=2, color=row_colour(name))
            ax_iou.text(k, iou[0] + 0.02, f"{iou[0]:.2f}", ha="center", fontsize=7)
    _chance_lines(ax, range(len(fams)), _chance(fams, chance), fams, 0.45, scale=100)
    ax.set_xticks(range(len(fams)), fams)
    ax.set_ylabel("accuracy % (95% CI)")
    ax.set_ylim(0, 100)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncol=3, loc="outside lower center")
    ax_iou.set_xticks(range(len(rows)), [LABELS.get(n, n).split(" ")[0] for n in rows], fontsize=8)
    ax_iou.set_ylabel("crop IoU with the true region (95% CI)")
    ax_iou.set_ylim(0, 1.05)
    ax_iou.set_title("where it looked", fontsize=9)
    ax.set_title("what it answered", fontsize=9)
    return fig
