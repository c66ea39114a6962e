"""A plotly figure drawn by matplotlib: the static image of a figure when no browser can draw it.

Kaleido draws plotly's PNG in Chromium; Colab, Binder and many laptops have none. `plotly_to_mpl` draws the
figure's dict with matplotlib instead, for the traces and layout r3lab's own plotly figures use: scatter (lines,
markers, filled outlines), bar (grouped), heatmap, contour and image traces on any subplot grid, rectangles and
lines as shapes, annotations (subplot titles, labels, arrows), axis ranges, reversed and equal-aspect axes, titles
and a legend. Interactivity (hover texts, buttons) has no static form and is left out; so is anything else plotly
can draw (a trace of another type is named in the figure's corner, never silently dropped).
The traces are drawn by `plotly_traces`, the layout (axes' styles, shapes, annotations, title, legend) by
`plotly_layout`.
"""

from __future__ import annotations

import io

from .mpl_fit import fit_canvas, separate_texts
from .plotly_layout import _annotation, _heading, _legend, _legend_px, _shape, _style
from .plotly_traces import _DEFAULT_COLOURS, _DRAW, DPI, SUPPORTED, _bars


def plotly_to_png(fig_dict: dict, width: int | None = None, height: int | None = None) -> bytes:
    """PNG bytes of the plotly figure `fig_dict` (`fig.to_dict()`), drawn by matplotlib without a browser."""
    import matplotlib.pyplot as plt

    fig = plotly_to_mpl(fig_dict, width, height)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def plotly_to_mpl(fig_dict: dict, width: int | None = None, height: int | None = None):
    """A matplotlib Figure drawing `fig_dict` (a plotly figure's dict) at its pixel size. Returns the Figure."""
    from matplotlib.figure import Figure

    layout = fig_dict.get("layout") or {}
    W, H = width or layout.get("width") or 900, height or layout.get("height") or 480
    fig = Figure(figsize=(W / DPI, H / DPI), dpi=DPI)
    m = {"l": 80, "r": 80, "t": 100, "b": 80, **(layout.get("margin") or {})}
    spare, below = _legend_px(fig_dict, layout)  # plotly widens its margins for a legend; so do we
    bottom = m["b"] + below
    area = (
        m["l"] / W,
        bottom / H,
        max(0.1, 1 - (m["l"] + max(m["r"], spare)) / W),
        max(0.1, 1 - (m["t"] + bottom) / H),
    )
    colours = list((((layout.get("template") or {}).get("layout") or {}).get("colorway")) or _DEFAULT_COLOURS)
    axes, skipped, bars = {}, [], {}
    for i, trace in enumerate(fig_dict.get("data") or []):
        kind = trace.get("type", "scatter")
        if trace.get("visible", True) in (False, "legendonly"):
            continue
        if kind not in SUPPORTED:
            skipped.append(kind)
            continue
        ax = _axes(fig, axes, layout, area, trace.get("xaxis", "x"), trace.get("yaxis", "y"))
        colour = colours[i % len(colours)]
        if kind == "bar":
            bars.setdefault(ax, []).append((trace, colour))
        else:
            _DRAW[kind](ax, trace, colour)
    for ax, traces in bars.items():
        _bars(ax, traces, layout.get("barmode", "group"))
    if not axes:  # a figure of shapes and annotations only still gets its plot area
        _axes(fig, axes, layout, area, "x", "y")
    for (xa, ya), ax in axes.items():
        _style(ax, layout.get(_long(xa)) or {}, layout.get(_long(ya)) or {})
    for shape in layout.get("shapes") or []:
        _shape(fig, axes, area, shape)
    for note in layout.get("annotations") or []:
        _annotation(fig, axes, area, note)
    _heading(
        fig,
        layout.get("title"),
        m["t"] / H,
        (((layout.get("template") or {}).get("layout") or {}).get("title") or {}).get("x", 0.5),
    )
    _legend(fig, axes, area, layout.get("legend") or {}, layout.get("showlegend"))
    if skipped:
        fig.text(0.99, 0.01, "not drawn: " + ", ".join(sorted(set(skipped))), ha="right", fontsize=7, color="grey")
    separate_texts(fig)  # subplot titles wider than their columns
    fit_canvas(fig)  # plotly widens its margins for tick labels, axis titles and legends; so do we
    return fig


def _long(short: str) -> str:  # 'x2' -> 'xaxis2'
    return short[0] + "axis" + short[1:]


def _axes(fig, axes: dict, layout: dict, area, xa: str, ya: str):
    if (xa, ya) not in axes:
        xd = (layout.get(_long(xa)) or {}).get("domain") or [0, 1]
        yd = (layout.get(_long(ya)) or {}).get("domain") or [0, 1]
        left, bottom, w, h = area
        axes[(xa, ya)] = fig.add_axes((left + xd[0] * w, bottom + yd[0] * h, (xd[1] - xd[0]) * w, (yd[1] - yd[0]) * h))
    return axes[(xa, ya)]
