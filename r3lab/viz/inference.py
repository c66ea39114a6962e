"""Figures of interleaved inference: the 3-D positions around a crop, a group's token layout, what
re-prefilling costs against keeping the KV cache."""

from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..core.policy_like import PolicyLike
from ..core.settings import short
from ..core.trajectory import ENV, IMAGE, MODEL, Trajectory

KIND_COLOURS = {"model_text": "tab:blue", "env_text": "tab:green", "image": "tab:orange"}


def plot_positions(traj: Trajectory, policy: PolicyLike, piece: int, fig: Figure | None = None) -> Figure:
    """M-RoPE position ids (time, row, column) of every token, and zoomed in around image piece `piece` (shaded)."""
    pos = traj.positions(policy)
    idx = traj.piece_index()
    span = [i for i, j in enumerate(idx) if j == piece]
    if not span:
        raise ValueError(f"piece {short(piece)} has no tokens in this trajectory")
    fig = fig or Figure(figsize=(12, 3.2))
    for ax, lo, hi in zip(fig.subplots(1, 2, width_ratios=[2, 1]), [0, span[0] - 4], [len(idx), span[-1] + 6]):
        for r, name in enumerate(["time", "row", "column"]):
            ax.plot(range(lo, hi), pos[r, lo:hi], ".-", lw=1, ms=3, label=name)
        ax.axvspan(span[0], span[-1], color="tab:orange", alpha=0.15)
        ax.set(xlabel="token index", ylabel="position id")
    ax.set_title("around the crop (shaded)")
    ax.legend(loc="upper left")
    return fig


def plot_group(trajectories: Sequence[Trajectory], fig: Figure | None = None) -> Figure:
    """One bar per row of a group: its pieces after the prompt, coloured by kind (model text, crop, note)."""
    fig = fig or Figure(figsize=(11, 0.45 * len(trajectories) + 1))
    ax = fig.subplots()
    for r, t in enumerate(trajectories):
        first = next((i for i, p in enumerate(t.pieces) if p.kind == MODEL), len(t.pieces))
        x = sum(len(p.ids) for p in t.pieces[:first])  # start after the prompt
        for p in t.pieces[first:]:
            ax.barh(r, len(p.ids), left=x, color=KIND_COLOURS[p.kind], edgecolor="white")
            x += len(p.ids)
    # the legend names only the kinds drawn (a note appears only after a refused call)
    shown = [
        k
        for k in (MODEL, IMAGE, ENV)
        if any(
            p.kind == k
            for t in trajectories
            for p in t.pieces[next((i for i, q in enumerate(t.pieces) if q.kind == MODEL), len(t.pieces)) :]
        )
    ]
    words = {MODEL: "model text", IMAGE: "crop", ENV: "note"}
    ax.set(xlabel="token index (bars start where the prompt ends)", ylabel="row")
    ax.legend(handles=[Patch(color=KIND_COLOURS[k], label=words[k]) for k in shown], loc="lower right", fontsize=8)
    ax.set_yticks(range(len(trajectories)))
    ax.invert_yaxis()
    return fig


def plot_cost_curve(curve: Sequence[dict], fig: Figure | None = None) -> Figure:
    """Seconds per trajectory against crops, re-prefilled and with KV reuse, per view size
    (rows of `r3lab.engine.costs.reprefill_curve` or of benchmarks/results/rollout.json)."""
    fig = fig or Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    for px in sorted({r["px"] for r in curve}):
        rows = [r for r in curve if r["px"] == px]
        n = [r["crops"] for r in rows]
        colour = f"C{sorted({r['px'] for r in curve}).index(px)}"  # one colour per view size, the mode by line style
        ax.plot(n, [r["reprefill_s"] for r in rows], "o--", color=colour, label=f"re-prefill (official loop), {px} px")
        ax.plot(n, [r["reuse_s"] for r in rows], "o-", color=colour, label=f"KV reuse (r3lab), {px} px")
    ax.set(xlabel="crops in the trajectory", ylabel="seconds per trajectory", title="cost of one trajectory")
    ax.set_xticks(sorted({r["crops"] for r in curve}))  # whole crops only
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig
