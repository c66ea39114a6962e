"""Matplotlib views of a trajectory: numbered crop boxes, their order, thumbnails, text, attention.

Every function returns its Figure and never calls `plt.show()` (a figure that is only shown cannot
be saved). The steps shown come from `r3lab.viz.steps`, as in every other view.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..core.settings import short
from ..core.trajectory import ENV, IMAGE, Trajectory
from .steps import COLOURS, crop_boxes, trajectory_steps

if TYPE_CHECKING:
    from ..explain.maps import AttentionMaps


def _figure(fig=None, size=(12, 7)) -> Figure:
    if fig is not None:
        fig.clear()
        return fig
    return Figure(figsize=size, layout="constrained")


def draw_boxes(ax, traj: Trajectory, upto: int | None = None, current: int | None = None, arrows: bool = True):
    """Numbered crop boxes (dashed when refused) and arrows in call order on an axis showing the original image."""
    crops = [c for c in crop_boxes(traj) if c["box"] is not None and (upto is None or c["n"] <= upto)]
    centres = []
    for c in crops:
        x1, y1, x2, y2 = c["box"]
        col = COLOURS[(c["n"] - 1) % len(COLOURS)]
        lw = 3.5 if c["n"] == current else 2.0
        ax.add_patch(
            Rectangle(
                (x1, y1), x2 - x1, y2 - y1, fill=False, ec=col, lw=lw, ls="-" if c["ok"] else "--", gid=f"crop-{c['n']}"
            )
        )
        ax.text(
            x1 + 2,
            y1 + 2,
            str(c["n"]),
            color="white",
            fontsize=11,
            weight="bold",
            va="top",
            ha="left",
            bbox=dict(boxstyle="round,pad=0.15", fc=col, ec="none"),
        )
        centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
    if arrows:
        for a, b in zip(centres, centres[1:]):
            ax.annotate(
                "", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="white", lw=2.2, shrinkA=6, shrinkB=6)
            )
    return crops


def plot_trajectory(
    traj: Trajectory,
    maps: "AttentionMaps | None" = None,
    ax=None,
    fig=None,
    text: bool = True,
    thumbs: bool = True,
    width: int = 110,
    max_lines: int = 40,
    **agg,
) -> Figure:
    """The main image with numbered crop boxes and arrows in order, crop thumbnails and each step's text.

    `ax=`: draw only the annotated main image into that axis. `maps=`: overlay the aggregated
    attention on the main image (aggregation keywords as in AttentionMaps, e.g. queries=, layers=).
    """
    if traj.main.image is None:
        raise ValueError("the trajectory's main image has no pixels (loaded with images='none'?)")
    if ax is not None:
        _main_panel(ax, traj, maps, agg)
        return ax.figure
    crops = [c for c in crop_boxes(traj) if c["ok"]]
    lines = _step_lines(traj, width, max_lines) if text else []
    text_h = 0.16 * len(lines) + 0.3  # inches: the text panel as tall as its lines, no blank band below
    fig = _figure(fig, (12, 4.5 + text_h if text else 4.5))
    ncol = max(2, len(crops)) if thumbs else 1
    gs = fig.add_gridspec(
        2 if text else 1, 1 + ncol, width_ratios=[2.2] + [1] * ncol, height_ratios=[4.5, text_h] if text else [1]
    )
    _main_panel(fig.add_subplot(gs[0, 0]), traj, maps, agg)
    if thumbs:
        for k, c in enumerate(crops[:ncol]):
            a = fig.add_subplot(gs[0, 1 + k])
            a.imshow(np.asarray(traj.pieces[c["image_piece"]].image))
            a.set_title(f"crop {c['n']}", color=COLOURS[(c["n"] - 1) % len(COLOURS)], fontsize=10)
            a.set_xticks([])
            a.set_yticks([])
        if not crops:
            a = fig.add_subplot(gs[0, 1:])
            a.text(0.5, 0.5, "no crop was made", ha="center", va="center")
            a.axis("off")
    if text:
        a = fig.add_subplot(gs[1, :])
        a.axis("off")
        a.text(
            0,
            1,
            "\n".join(lines),
            va="top",
            ha="left",
            family="monospace",
            fontsize=8.5,
            transform=a.transAxes,
            gid="step-text",
        )
    return fig


def _step_lines(traj: Trajectory, width: int, max_lines: int) -> list[str]:
    """The trajectory's steps as wrapped lines: Q, then numbered text, crops and (env) notes."""
    lines = []
    for s in trajectory_steps(traj):
        label = "Q" if s.index == 0 else f"{s.index}"
        body = f"[crop {s.crop}]" if s.kind == IMAGE else s.text.replace("<|im_end|>", "").strip()
        if s.kind == ENV and s.index > 0:
            body = f"(env) {body}"
        lines += textwrap.wrap(f"{label}: {body}", width) or [f"{label}:"]
    return lines[: max_lines - 1] + ["..."] if len(lines) > max_lines else lines


def _main_panel(ax, traj, maps, agg):
    im = traj.main.image
    ax.imshow(np.asarray(im))
    if maps is not None:
        heat = maps.to_pixels(0, frame="orig", **agg)
        ax.imshow(heat, cmap="inferno", alpha=0.45, extent=(0, im.width, im.height, 0), gid="attention")
    draw_boxes(ax, traj)
    ax.set_title(_short(traj.question, 70) or "trajectory", fontsize=10)
    ax.set_xlim(0, im.width)
    ax.set_ylim(im.height, 0)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_attention(
    maps: "AttentionMaps",
    image: int = 0,
    ax=None,
    frame: str = "image",
    alpha: float = 0.55,
    cmap: str = "inferno",
    colorbar: bool = True,
    title: str | None = None,
    **agg,
) -> Figure:
    """An image with its aggregated attention on top (frame "image": that image's input pixels;
    "orig": the main image's original frame, a crop's map sitting in its box)."""
    if frame == "orig":
        bg = maps.trajectory.main.image if maps.trajectory is not None else None
    else:
        bg = maps.images[image] if maps.images is not None else None
    heat = maps.to_pixels(image, frame=frame, **agg)
    if ax is None:
        fig = Figure(figsize=(5, 4.5), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    h, w = heat.shape
    if bg is not None:
        ax.imshow(np.asarray(bg.resize((w, h))))
    mappable = ax.imshow(heat, cmap=cmap, alpha=alpha if bg is not None else 1.0, extent=(0, w, h, 0), gid="attention")
    if colorbar:
        fig.colorbar(mappable, ax=ax, shrink=0.8, label="attention share")
    role = maps.infos[image].role if maps.infos else f"image {image}"
    ax.set_title(
        title or f"{role} {image}: layers {agg.get('layers', 'mean')}, heads {agg.get('heads', 'mean')}", fontsize=9
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_step(
    traj: Trajectory, step: int, maps: "AttentionMaps | None" = None, fig=None, width: int = 70, **agg
) -> Figure:
    """One frame of the step player: boxes so far (current one thick), the zoomed crop, the text so far,
    and, with `maps`, the attention of this step's tokens on the main image."""
    steps = trajectory_steps(traj)
    if not 0 <= step < len(steps):
        raise ValueError(f"step {short(step)} out of range: the trajectory has {len(steps)} steps")
    s = steps[step]
    crops_so_far = max([t.crop for t in steps[: step + 1] if t.crop is not None], default=0)
    fig = _figure(fig, (11, 4.6))
    gs = fig.add_gridspec(1, 3, width_ratios=[1.4, 1, 1.6])
    ax = fig.add_subplot(gs[0, 0])
    im = traj.main.image
    ax.imshow(np.asarray(im))
    if maps is not None:
        q = _step_queries(traj, maps, s.piece)
        if q is not None:
            ax.imshow(
                maps.to_pixels(0, frame="orig", queries=q, **agg),
                cmap="inferno",
                alpha=0.45,
                extent=(0, im.width, im.height, 0),
                gid="attention",
            )
    draw_boxes(ax, traj, upto=crops_so_far, current=s.crop)
    ax.set_xlim(0, im.width)
    ax.set_ylim(im.height, 0)
    ax.set_axis_off()
    ax.set_title(f"step {step}/{len(steps) - 1}", fontsize=10)
    ax2 = fig.add_subplot(gs[0, 1])
    ax2.set_axis_off()
    shown = next((t for t in reversed(steps[: step + 1]) if t.kind == IMAGE), None)
    if shown is not None:
        ax2.imshow(np.asarray(traj.pieces[shown.piece].image))
        ax2.set_title(f"zoomed crop {shown.crop}", fontsize=10)
    else:
        ax2.text(0.5, 0.5, "no crop yet", ha="center", va="center")
    ax3 = fig.add_subplot(gs[0, 2])
    ax3.set_axis_off()
    so_far = "".join(f"[crop {t.crop}]" if t.kind == IMAGE else t.text for t in steps[1 : step + 1])
    so_far = so_far.replace("<|im_end|>", "")
    lines = textwrap.wrap("Q: " + (traj.question or ""), width) + textwrap.wrap(so_far, width)
    ax3.text(
        0,
        1,
        "\n".join(lines[-24:]),
        va="top",
        ha="left",
        family="monospace",
        fontsize=8,
        transform=ax3.transAxes,
        gid="step-text",
    )
    return fig


def _step_queries(traj, maps, piece: int):
    """Token positions of one piece that the capture kept (None when there are none)."""
    start = sum(len(p.ids) for p in traj.pieces[:piece])
    n = len(traj.pieces[piece].ids or [])

    pos = maps.query_pos[(maps.query_pos >= start) & (maps.query_pos < start + n)]
    return pos if len(pos) else None


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
