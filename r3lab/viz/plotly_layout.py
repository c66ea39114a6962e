"""A plotly layout drawn by matplotlib: axis styles, shapes (rectangles, lines), annotations, the title and the
legend, each placed in paper, axis or axis-domain coordinates as plotly places it."""

from __future__ import annotations

from typing import Any

from .mpl_fit import wrap_label
from .plotly_traces import _DASH, DPI, _plain, colour


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
