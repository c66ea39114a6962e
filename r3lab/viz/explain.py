"""Figures of crop explanations (`r3lab.explain.record`) and the one-page report `r3lab explain` writes.

`plot_record(record, image)` draws each map method over the main image in grey (the scene is never
recoloured: the map is drawn as contour lines over a greyscale copy), the box the model chose (cyan) and the
named landmark (black, dashed: white would vanish on the light scene); a second row shows the patching effects
level by level and the logit lens' rank of each written box digit per layer. `plot_faithfulness(summary)` compares
the methods with the random baseline. `explain_report(...)` writes one self-contained HTML page (plotly.js inlined).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from ..explain.contract import MAP_METHODS, CropRecord
from ..explain.faithfulness import FIELDS

COLOURS = {
    "attention": "#e67e22",
    "gradient_x_input": "#8e44ad",
    "integrated_gradients": "#c0392b",
    "patching": "#16a085",
    "random": "#7f8c8d",
}


def _grey(image: Image.Image, size) -> np.ndarray:
    g = np.asarray(image.convert("L").resize(tuple(size)), dtype=np.uint8)
    return np.stack([g, g, g], -1)


def _rect(fig, box, colour, dash, row, col):
    fig.add_shape(
        type="rect",
        x0=box[0],
        y0=box[1],
        x1=box[2],
        y1=box[3],
        line=dict(color=colour, width=2, dash=dash),
        row=row,
        col=col,
    )


def plot_record(
    record: CropRecord, image: Image.Image, target: str = "box", methods: Sequence[str] = MAP_METHODS
) -> go.Figure:
    """One crop decision: the maps of `methods` for `target` over the greyscale main image, then the patching
    effects by level and the logit lens. `image` is the trajectory's main image (any size: shown at input size)."""
    avail = [m for m in methods if record.map(m, target) is not None]
    cols = max(2, len(avail))
    half = (cols + 1) // 2  # the second row: two panels, each as wide as half the maps (their titles fit)
    titles = [m.replace("_", " ") for m in avail] + [""] * (cols - len(avail))
    titles += ["patching: effect by level", "logit lens: rank of each box digit"]
    specs = [
        [{}] * cols,
        [{"colspan": half}] + [None] * (half - 1) + [{"colspan": cols - half}] + [None] * (cols - half - 1),
    ]
    fig = make_subplots(
        rows=2,
        cols=cols,
        specs=specs,
        subplot_titles=titles,
        vertical_spacing=0.16,
        horizontal_spacing=0.08,
        row_heights=[0.55, 0.45],
    )
    lens_col = half + 1
    W, H = record.input_size
    bg = _grey(image, (W, H))
    for j, m in enumerate(avail, start=1):
        mp = record.map(m, target).numpy()
        fig.add_trace(go.Image(z=bg, hoverinfo="skip"), row=1, col=j)
        c = record.cell
        xs, ys = (np.arange(mp.shape[1]) + 0.5) * c, (np.arange(mp.shape[0]) + 0.5) * c
        pos = np.clip(mp, 0, None)
        z = pos / pos.max() if pos.max() > 0 else pos
        fig.add_trace(
            go.Contour(
                z=z,
                x=xs,
                y=ys,
                contours=dict(coloring="lines", start=0.25, end=1.0, size=0.25),
                line=dict(width=2),
                colorscale=[[0, COLOURS.get(m, "#c0392b")], [1, COLOURS.get(m, "#c0392b")]],
                showscale=False,
                name=m,
                hovertemplate=f"{m}<br>x %{{x}} y %{{y}}<br>%{{z:.2f}}<extra></extra>",
            ),
            row=1,
            col=j,
        )
        top = np.unravel_index(int(np.argmax(mp)), mp.shape)
        fig.add_trace(
            go.Scatter(
                x=[xs[top[1]]],
                y=[ys[top[0]]],
                mode="markers",
                marker=dict(symbol="x", size=15, color=COLOURS.get(m, "#c0392b")),
                name=f"{m}: hottest cell",
                showlegend=False,
            ),
            row=1,
            col=j,
        )
        if record.box is not None:
            _rect(fig, record.box, "#00bcd4", "solid", 1, j)
        if record.landmark is not None:
            _rect(fig, record.landmark, "black", "dash", 1, j)
        fig.update_xaxes(visible=False, range=[0, W], row=1, col=j)
        fig.update_yaxes(visible=False, range=[H, 0], scaleanchor=f"x{j if j > 1 else ''}", row=1, col=j)
    pl = record.result("patch_layers", None)
    if pl is not None and pl.available:
        for key, d in pl.data.items():
            if not isinstance(d, dict) or "effect" not in d:
                continue
            levels = [str(v) for v in d["levels"]]
            for t, eff in d["effect"].items():
                fig.add_trace(go.Scatter(x=levels, y=eff, mode="lines+markers", name=f"{key} -> {t}"), row=2, col=1)
    fig.update_yaxes(title_text="log-prob drop", row=2, col=1)
    lens = record.result("logit_lens", "box")
    if lens is not None and lens.available:
        ranks = np.array(lens.data["rank"], dtype=float)
        fig.add_trace(
            go.Heatmap(
                z=np.log10(1 + ranks),
                x=[str(i) for i in range(ranks.shape[1])],
                y=[f"{k}:{t!r}" for k, t in enumerate(lens.data["tokens"])],
                colorscale="Greys",
                reversescale=True,
                showscale=False,
                customdata=ranks,
                hovertemplate="layer %{x}<br>%{y}<br>rank %{customdata:.0f}<extra></extra>",
            ),
            row=2,
            col=lens_col,
        )
        fig.update_xaxes(title_text="layer (dark: rank 0, the top prediction)", row=2, col=lens_col)
    fig.update_layout(
        title=f"{record.sample_id} · crop {record.event + 1} · target: {target}"
        + (f" · IoU with the landmark {record.gt_iou:.2f}" if record.gt_iou is not None else ""),
        height=680,
        width=max(760, 260 * cols),
        margin=dict(l=60, r=30, t=70, b=40),
        legend=dict(orientation="h", y=-0.14, x=0, font=dict(size=10)),
    )
    return fig


def plot_faithfulness(summary: dict, intervals: dict | None = None) -> go.Figure:
    """Bars per method (and the random baseline, grey) for the pointing game, deletion AUC (lower is better) and
    insertion AUC (higher is better), from `faithfulness.json`; with `intervals`
    (`r3lab.course.evidence.faithfulness_intervals`), each bar's bootstrap interval as an error bar."""
    methods = summary.get("methods", {})
    if not methods:
        raise ValueError("the faithfulness summary has no methods (no crop was explained)")
    names = list(methods)
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=[
            "pointing game (higher is better)",
            "deletion AUC (lower is better)",
            "insertion AUC (higher is better)",
        ],
    )
    for j, k in enumerate(FIELDS, start=1):
        ys = [methods[n].get(k) for n in names]
        ci = ((intervals or {}).get(k) or {}).get("methods") or {}
        err = None
        if ci and all(n in ci for n in names):
            err = dict(
                type="data",
                symmetric=False,
                color="#555",
                thickness=1.2,
                array=[ci[n][2] - (y or 0) for n, y in zip(names, ys)],
                arrayminus=[(y or 0) - ci[n][1] for n, y in zip(names, ys)],
            )
        fig.add_trace(
            go.Bar(
                x=[n.replace("_", " ") for n in names],
                y=[np.nan if v is None else v for v in ys],
                showlegend=False,
                error_y=err,
                marker_color=[COLOURS.get(n, "#34495e") for n in names],
                text=["n/a" if v is None else f"{v:.3g}" for v in ys],
                textposition="inside" if err else "outside",
            ),
            row=1,
            col=j,
        )
    n = max(v.get("n", 0) for v in methods.values())
    what = f"faithfulness on {n} crops (random: a random map)" + (
        "; bars: 95 % bootstrap intervals" if intervals else ""
    )
    fig.update_layout(title=what, height=380, width=1000, margin=dict(l=30, r=30, t=70, b=60))
    return fig


def explain_report(
    path: str | os.PathLike,
    summary: dict,
    records: Sequence[CropRecord],
    images: dict | None = None,
    max_figures: int = 12,
    title: str = "Why there?",
) -> Path:
    """One self-contained HTML page: the faithfulness figure and table, a table of every crop, and the figure of
    the first `max_figures` crops (`images`: sample id -> main image)."""
    path = Path(path)
    parts = [plot_faithfulness(summary).to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})]
    head = "<tr><th>method</th>" + "".join(f"<th>{k}</th>" for k in (*FIELDS, "n")) + "</tr>"
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{_cell(v.get(k))}</td>" for k in (*FIELDS, "n")) + "</tr>"
        for m, v in summary.get("methods", {}).items()
    )
    parts.append(f"<h2>faithfulness</h2><table>{head}{rows}</table>")
    keys = ["sample", "crop", "ok", "IoU", "needed"] + [f"{m}: pointing" for m in summary.get("methods", {})]
    trs = []
    for r in records:
        vals = [r.sample_id, r.event + 1, r.ok, r.gt_iou, r.needed] + [
            (r.faithfulness.get(m) or {}).get("pointing_game") for m in summary.get("methods", {})
        ]
        trs.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in vals) + "</tr>")
    na = sorted(
        {
            f"{m}/{t}: {res.reason}"
            for r in records
            for m, d in r.methods.items()
            for t, res in d.items()
            if not res.available
        }
    )
    parts.append(
        "<h2>crops</h2><table><tr>"
        + "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        + "</tr>"
        + "".join(trs)
        + "</table>"
    )
    if na:
        parts.append("<h2>not available</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in na) + "</ul>")
    for r in list(records)[:max_figures]:
        im = (images or {}).get(r.sample_id)
        if im is not None:
            parts.append(plot_record(r, im).to_html(full_html=False, include_plotlyjs=False))
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{''.join(parts)}"
        f"<script type='application/json' id='faithfulness'>{_safe(summary)}</script></body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:16px;color:#222} table{border-collapse:collapse;font-size:12px}"
    " td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
)


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))


def _safe(obj) -> str:
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
