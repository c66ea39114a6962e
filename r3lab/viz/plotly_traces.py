"""A plotly trace drawn by matplotlib: scatter (lines, markers, filled outlines), bar (grouped, stacked), heatmap,
contour and image traces, and plotly's values (typed arrays, colours, colour scales, dashes, markers, text markup)
as matplotlib takes them."""

from __future__ import annotations

import base64
import io
import re

import numpy as np

from .mpl_fit import wrap_label

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


def _plain(text: str) -> str:
    """Plotly's text markup as plain text: <br> a new line, other tags dropped, entities decoded."""
    import html

    return html.unescape(_TAGS.sub("", str(text).replace("<br>", "\n").replace("<br />", "\n")))
