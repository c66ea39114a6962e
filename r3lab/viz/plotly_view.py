"""Plotly view of a trajectory: hover over a crop box for its step, toggle the attention heatmap."""

from __future__ import annotations

import html
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from ..core.trajectory import IMAGE, Trajectory
from .steps import COLOURS, crop_boxes, trajectory_steps

if TYPE_CHECKING:
    from ..explain.maps import AttentionMaps


def figure_trajectory(traj: Trajectory, maps: "AttentionMaps | None" = None, width: int = 760, **agg) -> go.Figure:
    """The main image with one hoverable trace per crop box (its step's text), arrows in call order,
    and, with `maps`, an attention heatmap that two buttons switch on and off. Returns the Figure."""
    im = traj.main.image
    if im is None:
        raise ValueError("the trajectory's main image has no pixels (loaded with images='none'?)")
    W, H = im.size
    fig = go.Figure()
    fig.add_trace(go.Image(z=np.asarray(im.convert("RGB")), name="image", hoverinfo="skip"))
    steps = trajectory_steps(traj)
    texts = {s.crop: s.text for s in steps if s.crop is not None and s.kind != IMAGE}
    crops = [c for c in crop_boxes(traj) if c["box"] is not None]
    for c in crops:
        x1, y1, x2, y2 = c["box"]
        col = COLOURS[(c["n"] - 1) % len(COLOURS)]
        hover = _hover(c, texts.get(c["n"], ""))
        fig.add_trace(
            go.Scatter(
                x=[x1, x2, x2, x1, x1],
                y=[y1, y1, y2, y2, y1],
                mode="lines",
                fill="toself",
                fillcolor="rgba(0,0,0,0)",
                line=dict(color=col, width=3, dash="solid" if c["ok"] else "dash"),
                name=f"crop {c['n']}" + ("" if c["ok"] else " (refused)"),
                hoveron="fills+points",
                text=hover,
                hovertemplate="%{text}<extra></extra>",
            )
        )
        fig.add_annotation(
            x=x1,
            y=y1,
            text=f"<b>{c['n']}</b>",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font=dict(color="white", size=13),
            bgcolor=col,
        )
    for a, b in zip(crops, crops[1:]):
        (ax, ay), (bx, by) = _centre(a["box"]), _centre(b["box"])
        fig.add_annotation(
            x=bx,
            y=by,
            ax=ax,
            ay=ay,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            showarrow=True,
            arrowhead=3,
            arrowsize=1.3,
            arrowwidth=2,
            arrowcolor="white",
            text="",
        )
    n_fixed = len(fig.data)
    if maps is not None:
        heat = maps.to_pixels(0, frame="orig", **agg)
        fig.add_trace(
            go.Heatmap(
                z=heat,
                x0=0.5,
                dx=1,
                y0=0.5,
                dy=1,
                colorscale="Inferno",
                opacity=0.5,
                visible=False,
                name="attention",
                showscale=True,
                colorbar=dict(title="attention"),
                hovertemplate="x %{x:.0f}, y %{y:.0f}<br>share %{z:.4f}<extra></extra>",
            )
        )
        on = [True] * (n_fixed + 1)
        off = [True] * n_fixed + [False]
        fig.update_layout(
            updatemenus=[
                dict(
                    type="buttons",
                    direction="right",
                    x=0,
                    y=1.12,
                    xanchor="left",
                    showactive=True,
                    buttons=[
                        dict(label="image", method="restyle", args=[{"visible": off}]),
                        dict(label="attention", method="restyle", args=[{"visible": on}]),
                    ],
                )
            ]
        )
    fig.update_xaxes(visible=False, range=[0, W])
    fig.update_yaxes(visible=False, range=[H, 0], scaleanchor="x")
    fig.update_layout(
        width=width,
        height=int(width * H / W) + 90,
        margin=dict(l=10, r=10, t=70, b=10),
        title=dict(text=html.escape(traj.question or "trajectory"), x=0.5, y=0.98),
        legend=dict(orientation="h", y=-0.02),
    )
    return fig


def _hover(c: dict, text: str) -> str:
    body = "<br>".join(html.escape(line) for line in textwrap.wrap(text.replace("<|im_end|>", ""), 60)[-8:])
    head = f"<b>step: crop {c['n']}</b>" + ("" if c["ok"] else f" (refused: {html.escape(c['note'])})")
    x1, y1, x2, y2 = c["box"]
    return f"{head}<br>box (original px) [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]<br>{body}"


def _centre(b):
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
