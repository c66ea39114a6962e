"""A plotly figure drawn by matplotlib: the static image of a figure when no browser can draw it.

Kaleido draws plotly's PNG in Chromium; Colab, Binder and many laptops have none. `plotly_to_mpl` draws the
figure's dict with matplotlib instead, for the traces and layout r3lab's own plotly figures use: scatter (lines,
markers, filled outlines), bar (grouped), heatmap, contour and image traces on any subplot grid, rectangles and
lines as shapes, annotations (subplot titles, labels, arrows), axis ranges, reversed and equal-aspect axes, titles
and a legend. Interactivity (hover texts, buttons) has no static form and is left out; so is anything else plotly
can draw (a trace of another type is named in the figure's corner, never silently dropped).
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import numpy as np

from .mpl_fit import fit_canvas, separate_texts, wrap_label

DPI = 100
_DASH = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-.", "longdash": "--", "longdashdot": "-."}
_MARKER = {
    "circle": "o",
    "square": "s",
    "diamond": "D",
    "x": "x",
    "cross": "P",
    "triangle-up": "^",
    "triangle-down": "v",
    "star": "*",
    "line-ns": "|",
    "line-ew": "_",
}
_TAGS = re.compile(r"<[^>]+>")
_DEFAULT_COLOURS = ("#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880")
SUPPORTED = ("scatter", "scattergl", "bar", "heatmap", "contour", "image")


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


def _array(v) -> np.ndarray | None:
    """A plotly data array as numpy: lists, numpy arrays and plotly's typed arrays ({"dtype", "bdata", "shape"})."""
    if v is None:
        return None
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v.get("dtype", "f8")))
        shape = v.get("shape")
        if isinstance(shape, str):
            shape = [int(s) for s in shape.split(",")]
        return a.reshape(shape) if shape else a
    a = np.asarray(v, dtype=object)
    try:
        return a.astype(float)
    except (TypeError, ValueError):
        return a


def colour(c, default=None):
    """A plotly colour ('#hex', 'rgb(...)', 'rgba(...)', a CSS name) as matplotlib takes it."""
    if c is None:
        return default
    if isinstance(c, str) and c.startswith("rgb"):
        nums = [float(x) for x in re.findall(r"[\d.]+", c)]
        rgb = tuple(x / 255 for x in nums[:3])
        return rgb + (nums[3],) if len(nums) > 3 else rgb
    return c


def _cmap(scale, reverse: bool = False):
    import matplotlib
    from matplotlib.colors import LinearSegmentedColormap

    if isinstance(scale, str) or not scale:
        cmap = matplotlib.colormaps.get(str(scale or "viridis").lower(), matplotlib.colormaps["viridis"])
    else:
        cmap = LinearSegmentedColormap.from_list("plotly", [(float(v), colour(c)) for v, c in scale])
    return cmap.reversed() if reverse else cmap


def _scatter(ax, t: dict, default: str) -> None:
    x, y = _array(t.get("x")), _array(t.get("y"))
    if y is None:
        return
    x = np.arange(len(y)) if x is None else x
    mode = t.get("mode") or ("lines+markers" if len(y) < 20 else "lines")
    line, marker = t.get("line") or {}, t.get("marker") or {}
    col = colour(line.get("color") or marker.get("color"), default)
    label = t.get("name") if t.get("showlegend", True) is not False else None
    if t.get("fill") == "toself":
        fill = colour(t.get("fillcolor"), "none")
        if fill != "none" and not (isinstance(fill, tuple) and len(fill) == 4 and fill[3] == 0):
            ax.fill(x, y, color=fill, linewidth=0)
    if "lines" in mode:
        ax.plot(
            x,
            y,
            color=col,
            linewidth=line.get("width", 2) * 0.75,
            linestyle=_DASH.get(line.get("dash"), "-"),
            label=label,
            marker=_MARKER.get(marker.get("symbol"), "o") if "markers" in mode else None,
            markersize=(marker.get("size") or 6) * 0.6,
        )
    elif "markers" in mode:
        mcol = colour(marker.get("color") if isinstance(marker.get("color"), str) else None, col)
        ax.scatter(
            x,
            y,
            color=mcol,
            marker=_MARKER.get(marker.get("symbol"), "o"),
            label=label,
            s=((marker.get("size") or 6) * 0.75) ** 2,
            zorder=3,
        )
    if "text" in mode and t.get("text") is not None:
        for xi, yi, s in zip(x, y, np.atleast_1d(t["text"])):
            ax.annotate(_plain(str(s)), (xi, yi), fontsize=8, ha="center", va="bottom")


def _bars(ax, traces: list, mode: str) -> None:
    def xs_of(t):
        return [str(v) for v in (t.get("x") if t.get("x") is not None else range(len(_array(t.get("y")))))]

    cats = list(dict.fromkeys(v for t, _ in traces for v in xs_of(t)))
    n = len(traces) if mode == "group" else 1
    width = 0.8 / n
    bottom = np.zeros(len(cats))
    for k, (t, default) in enumerate(traces):
        ys = np.full(len(cats), np.nan)
        for xv, yv in zip(xs_of(t), _array(t.get("y"))):
            ys[cats.index(xv)] = np.nan if yv is None else float(yv)
        where = np.arange(len(cats)) + ((k - (n - 1) / 2) * width if mode == "group" else 0)
        col = (t.get("marker") or {}).get("color")
        cols = [colour(c) for c in col] if isinstance(col, (list, tuple)) else colour(col, default)
        label = t.get("name") if t.get("showlegend", True) is not False else None
        err = t.get("error_y") or {}
        yerr = None
        if err.get("array") is not None and err.get("visible", True) is not False:
            up = np.nan_to_num(_array(err["array"]).astype(float))
            down = (
                up
                if err.get("symmetric", True) is not False or err.get("arrayminus") is None
                else np.nan_to_num(_array(err["arrayminus"]).astype(float))
            )
            yerr = np.vstack([down, up])
        bars = ax.bar(
            where,
            np.nan_to_num(ys),
            width=width,
            color=cols,
            label=label,
            yerr=yerr,
            capsize=3,
            ecolor=colour(err.get("color"), "#444"),
            bottom=bottom if mode == "stack" else None,
        )
        if t.get("text") is not None:
            ax.bar_label(bars, [_plain(str(v)) for v in np.atleast_1d(t["text"])], fontsize=7)
        if mode == "stack":
            bottom = bottom + np.nan_to_num(ys)
    chars = max(4, int(ax.get_position().width * ax.figure.get_figwidth() * DPI / max(1, len(cats)) / 6.5))
    labels = [wrap_label(c, chars) for c in cats]  # a word wider than its bar: the names stand upright instead
    tall = max(len(x) for c in labels for x in c.split("\n")) > chars
    ax.set_xticks(np.arange(len(cats)), cats if tall else labels, fontsize=8, rotation=90 if tall else 0)


def _grid(ax, t: dict, z: np.ndarray):
    """The x and y coordinates of a heatmap's or contour's cells (given, or x0 + i * dx); category labels (strings)
    become the ticks of cells 0, 1, ..."""
    rows, cols = z.shape[:2]
    out = []
    for key, n, ticks in (("x", cols, ax.set_xticks), ("y", rows, ax.set_yticks)):
        raw, v = t.get(key), _array(t.get(key))
        if v is not None and (
            v.dtype == object or (isinstance(raw, (list, tuple)) and raw and isinstance(raw[0], str))
        ):
            ticks(np.arange(len(v)), [str(s) for s in (raw if isinstance(raw, (list, tuple)) else v)], fontsize=8)
            v = None
        out.append((t.get(key + "0", 0) + t.get("d" + key, 1) * np.arange(n)) if v is None else v)
    return out[0].astype(float), out[1].astype(float)


def _heatmap(ax, t: dict, default: str) -> None:
    z = _array(t.get("z")).astype(float)
    x, y = _grid(ax, t, z)
    dx = (x[1] - x[0]) if len(x) > 1 else 1.0
    dy = (y[1] - y[0]) if len(y) > 1 else 1.0
    extent = (x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2)  # row 0 at the bottom, as plotly
    im = ax.imshow(
        z,
        extent=extent,
        origin="lower",
        aspect="auto",
        alpha=t.get("opacity", 1.0),
        cmap=_cmap(t.get("colorscale"), bool(t.get("reversescale"))),
        vmin=t.get("zmin"),
        vmax=t.get("zmax"),
        interpolation="nearest",
    )
    if t.get("showscale", True) is not False:
        ax.figure.colorbar(im, ax=ax, fraction=0.04, pad=0.02)


def _contour(ax, t: dict, default: str) -> None:
    z = _array(t.get("z")).astype(float)
    x, y = _grid(ax, t, z)
    c = t.get("contours") or {}
    levels = np.arange(c["start"], c["end"] + 1e-9, c["size"]) if {"start", "end", "size"} <= set(c) else 5
    line = t.get("line") or {}
    kw = (
        {"colors": [colour(line["color"])]}
        if line.get("color")
        else {"cmap": _cmap(t.get("colorscale"), bool(t.get("reversescale")))}
    )
    ax.contour(x, y, z, levels=levels, linewidths=(line.get("width") or 1.5) * 0.75, **kw)


def _image(ax, t: dict, default: str) -> None:
    if t.get("z") is not None:
        z = _array(t["z"])
        img = z.astype(np.uint8) if z.dtype != object else np.asarray(z.tolist(), dtype=np.uint8)
    elif isinstance(t.get("source"), str) and "," in t["source"]:
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(t["source"].split(",", 1)[1]))).convert("RGB"))
    else:
        return
    x0, y0, dx, dy = t.get("x0", 0), t.get("y0", 0), t.get("dx", 1), t.get("dy", 1)
    h, w = img.shape[:2]
    ax.imshow(
        img,
        extent=(x0 - dx / 2, x0 + (w - 0.5) * dx, y0 + (h - 0.5) * dy, y0 - dy / 2),
        origin="upper",
        interpolation="nearest",
    )


_DRAW = {"scatter": _scatter, "scattergl": _scatter, "heatmap": _heatmap, "contour": _contour, "image": _image}


def _style(ax, xa: dict, ya: dict) -> None:
    for axis, spec, setlim, label in (
        (ax.xaxis, xa, ax.set_xlim, ax.set_xlabel),
        (ax.yaxis, ya, ax.set_ylim, ax.set_ylabel),
    ):
        if spec.get("range") is not None and None not in spec["range"]:
            setlim(*spec["range"])
        if spec.get("autorange") == "reversed" and spec.get("range") is None:
            (ax.invert_xaxis if axis is ax.xaxis else ax.invert_yaxis)()
        if _title(spec.get("title")):
            label(_title(spec.get("title")), fontsize=9)
        if spec.get("type") == "log":
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
    if ya.get("scaleanchor") or xa.get("scaleanchor"):
        ax.set_aspect("equal", adjustable="box")
    for axis, spec in ((ax.xaxis, xa), (ax.yaxis, ya)):
        if spec.get("visible") is False:
            axis.set_visible(False)
    if xa.get("visible") is False and ya.get("visible") is False:
        for s in ax.spines.values():
            s.set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25)


def _where(fig, axes: dict, area, ref: str, v: float, horizontal: bool):
    """A coordinate `v` given against `ref` ('paper', 'x2', 'x2 domain') as (transform-kind, value, axes)."""
    left, bottom, w, h = area
    if ref in (None, "paper"):
        return "fig", (left + v * w) if horizontal else (bottom + v * h), None
    name = ref.split()[0]
    ax = next((a for (xa, ya), a in axes.items() if (xa if horizontal else ya) == name), None)
    if ax is None:
        return None, v, None
    return ("axes" if ref.endswith("domain") else "data"), v, ax


def _shape(fig, axes: dict, area, s: dict) -> None:
    from matplotlib.patches import Rectangle

    kx, x0, ax = _where(fig, axes, area, s.get("xref", "x"), s.get("x0", 0), True)
    ky, y0, _ = _where(fig, axes, area, s.get("yref", "y"), s.get("y0", 0), False)
    _, x1, _ = _where(fig, axes, area, s.get("xref", "x"), s.get("x1", 0), True)
    _, y1, _ = _where(fig, axes, area, s.get("yref", "y"), s.get("y1", 0), False)
    if kx is None or ky is None:
        return
    line = s.get("line") or {}
    target = ax if ax is not None else fig
    transform = {
        "fig": fig.transFigure,
        "data": getattr(ax, "transData", None),
        "axes": getattr(ax, "transAxes", None),
    }[kx if kx == ky else "data"]
    style = dict(
        edgecolor=colour(line.get("color"), "black"),
        linewidth=(line.get("width") or 2) * 0.75,
        linestyle=_DASH.get(line.get("dash"), "-"),
        transform=transform,
    )
    if s.get("type", "rect") == "rect":
        target.add_artist(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=colour(s.get("fillcolor"), "none"), **style))
    elif s.get("type") == "line":
        from matplotlib.lines import Line2D

        target.add_artist(
            Line2D(
                [x0, x1],
                [y0, y1],
                color=style["edgecolor"],
                linewidth=style["linewidth"],
                linestyle=style["linestyle"],
                transform=transform,
            )
        )


def _annotation(fig, axes: dict, area, a: dict) -> None:
    kx, x, ax = _where(fig, axes, area, a.get("xref", "x"), a.get("x", 0), True)
    ky, y, _ = _where(fig, axes, area, a.get("yref", "y"), a.get("y", 0), False)
    if kx is None or ky is None:
        return
    font = a.get("font") or {}
    text = _plain(a.get("text") or "")
    ha = {"left": "left", "right": "right"}.get(a.get("xanchor"), "center")
    va = {"top": "top", "bottom": "bottom", "middle": "center"}.get(
        a.get("yanchor"), "bottom" if kx == "fig" else "center"
    )
    box = dict(boxstyle="square,pad=0.15", facecolor=colour(a["bgcolor"]), linewidth=0) if a.get("bgcolor") else None
    kw = dict(fontsize=font.get("size", 11) * 0.8, color=colour(font.get("color"), "black"), ha=ha, va=va, bbox=box)
    if kx == "fig" or ky == "fig":
        fig.text(x, y, text, transform=fig.transFigure, **kw)
    elif a.get("showarrow") and a.get("axref", "pixel") != "pixel" and "ax" in a:
        ax.annotate(
            text,
            xy=(x, y),
            xytext=(a["ax"], a["ay"]),
            textcoords="data",
            zorder=4,
            arrowprops=dict(
                arrowstyle="->", color=colour(a.get("arrowcolor"), "black"), linewidth=a.get("arrowwidth", 1)
            ),
            **kw,
        )
    else:
        ax.text(x, y, text, transform=ax.transAxes if kx == "axes" else ax.transData, zorder=4, **kw)


def _legend_px(fig_dict: dict, layout: dict) -> tuple[int, int]:
    """(width right of the plot, height below it) a legend needs: a column on the right, or rows below the plot when
    plotly puts a horizontal legend under it (negative y)."""
    names = {
        t.get("name") for t in fig_dict.get("data") or [] if t.get("name") and t.get("showlegend", True) is not False
    }
    spec = layout.get("legend") or {}
    if len(names) < 2 or layout.get("showlegend") is False:
        return 0, 0
    if spec.get("orientation") == "h":
        return 0, (18 * -(-len(names) // 4) + 12 if spec.get("y", -0.1) < 0 else 0)
    return 40 + 6 * max(len(str(n)) for n in names), 0


def _heading(fig, title, top: float, x_default: float) -> None:
    """The figure's title where plotly puts it: at `title.x` (template default) with its anchor, in the top margin."""
    text = _title(title)
    if not text:
        return
    spec = title if isinstance(title, dict) else {}
    x = spec.get("x", x_default)
    ha = (
        spec.get("xanchor")
        if spec.get("xanchor") in ("left", "right", "center")
        else ("left" if x < 0.3 else "right" if x > 0.7 else "center")
    )
    size = 11 if "\n" not in text else 9
    char_px = size * DPI / 72 * 0.56  # a character's mean width at this size
    width = max(20, int(fig.get_figwidth() * DPI * (1 - x if ha == "left" else 1) / char_px) - 2)
    text = "\n".join(wrap_label(line, width) for line in text.split("\n"))  # plotly's title can run long
    fig.text(x, 1 - 0.08 * top, text, ha=ha, va="top", fontsize=size, transform=fig.transFigure)


def _legend(fig, axes: dict, area, spec: dict, show) -> None:
    """One legend for the figure: plotly's default (a column right of the plot area) or its `legend.x`, `y` and
    orientation (a row: "h")."""
    handles, labels = [], []
    for ax in axes.values():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab and not lab.startswith("_") and lab not in labels:
                handles.append(h)
                labels.append(lab)
    if len(labels) < 2 or show is False:
        return
    left, bottom, w, h = area
    row = spec.get("orientation") == "h"
    x, y = spec.get("x", 0 if row else 1.02), spec.get("y", -0.1 if row else 1)
    if row and y < 0:  # under the plot, in the room plotly_to_mpl kept for it
        fig.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(left, bottom - 0.35 * bottom),
            fontsize=8,
            frameon=False,
            ncol=min(4, len(labels)),
        )
        return
    anchor = "upper " + ("left" if x < 0.5 or not row else "right")
    fig.legend(
        handles,
        labels,
        loc=anchor,
        bbox_to_anchor=(left + x * w, bottom + y * h),
        fontsize=8,
        frameon=False,
        ncol=min(4, len(labels)) if row else 1,
    )


def _title(t: Any) -> str:
    return _plain((t.get("text") if isinstance(t, dict) else t) or "")


def _plain(text: str) -> str:
    """Plotly's text markup as plain text: <br> a new line, other tags dropped, entities decoded."""
    import html

    return html.unescape(_TAGS.sub("", str(text).replace("<br>", "\n").replace("<br />", "\n")))
