"""Text that fits a matplotlib figure: what plotly's automatic margins do, for figures drawn without a browser.

`fit_canvas(fig)` grows the canvas wherever a text (a tick label, an axis title, a legend) reaches past its edge and
moves everything by as much, so nothing is cut; `separate_texts` shrinks figure-level texts that overlap;
`text_boxes(fig)` lists every drawn text with its extent, and `text_problems(fig)` names each text outside the canvas
and each pair that overlap (the tests hold every figure of the fallback to none). `wrap_label` breaks a long category
name at its spaces and underscores.
"""

from __future__ import annotations

import re


def _renderer(fig):
    if not hasattr(fig.canvas, "get_renderer"):  # a bare Figure: give it the Agg canvas it will be saved with
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _drawn_ticks(axis) -> list:
    """The tick labels matplotlib draws: those whose tick lies within the axis' view (the others exist, unseen)."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-6 + 1e-12
    out = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        if lo - span <= tick.get_loc() <= hi + span:
            out += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return out


def text_boxes(fig) -> list[tuple[str, object]]:
    """(text, window extent in pixels) of every non-empty text the figure draws."""
    r = _renderer(fig)
    texts = list(fig.texts) + [t for lg in fig.legends for t in lg.get_texts()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += list(ax.texts) + [ax.title, ax._left_title, ax._right_title]
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_visible():
                texts += [axis.label] + _drawn_ticks(axis)
        if ax.get_legend() is not None:
            texts += list(ax.get_legend().get_texts())
    return [(t.get_text(), t.get_window_extent(r)) for t in texts if t.get_visible() and t.get_text().strip()]


def text_problems(fig, tolerance: float = 1.0) -> list[str]:
    """Every text outside the canvas, and every pair of texts that overlap (by more than `tolerance` pixels)."""
    boxes = text_boxes(fig)
    W, H = fig.bbox.width, fig.bbox.height
    out = [
        f"outside the {W:.0f}x{H:.0f} canvas: {s[:40]!r} at {tuple(round(v) for v in b.extents)}"
        for s, b in boxes
        if b.x0 < -tolerance or b.y0 < -tolerance or b.x1 > W + tolerance or b.y1 > H + tolerance
    ]
    for i, (s, a) in enumerate(boxes):
        for t, b in boxes[i + 1 :]:
            if min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance and min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance:
                out.append(f"overlapping: {s[:30]!r} and {t[:30]!r}")
    return out


def separate_texts(fig, smallest: float = 6.0) -> None:
    """Shrink the figure-level texts that overlap (two subplot titles wider than their columns) a half point at a
    time, down to `smallest` points, until they stand apart."""
    r = _renderer(fig)
    texts = [t for t in fig.texts if t.get_visible() and t.get_text().strip()]
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            while (
                a.get_window_extent(r).overlaps(b.get_window_extent(r))
                and max(a.get_fontsize(), b.get_fontsize()) > smallest
            ):
                for t in (a, b):
                    t.set_fontsize(max(smallest, t.get_fontsize() - 0.5))


def fit_canvas(fig, pad: float = 6.0) -> None:
    """Grow the canvas by what the texts need past each edge (plus `pad` pixels), keeping every axes, text, legend
    and shape where it was relative to the rest."""
    boxes = [b for _, b in text_boxes(fig)]
    if not boxes:
        return
    W, H = fig.bbox.width, fig.bbox.height
    left = max(0.0, pad - min(b.x0 for b in boxes))
    bottom = max(0.0, pad - min(b.y0 for b in boxes))
    right = max(0.0, max(b.x1 for b in boxes) + pad - W)
    top = max(0.0, max(b.y1 for b in boxes) + pad - H)
    if not (left or bottom or right or top):
        return
    nW, nH = W + left + right, H + bottom + top

    def move(x: float, y: float) -> tuple[float, float]:  # a figure fraction of the old canvas, on the new one
        return (x * W + left) / nW, (y * H + bottom) / nH

    for ax in fig.axes:
        p = ax.get_position(original=True)
        x0, y0 = move(p.x0, p.y0)
        ax.set_position((x0, y0, p.width * W / nW, p.height * H / nH))
    for t in fig.texts:
        t.set_position(move(*t.get_position()))
    for lg in fig.legends:
        b = lg.get_bbox_to_anchor()
        lg.set_bbox_to_anchor(move(b.x0 / W, b.y0 / H), transform=fig.transFigure)
    for a in fig.artists:  # shapes drawn in figure fractions
        if hasattr(a, "set_xy") and hasattr(a, "get_width"):
            a.set_xy(move(*a.get_xy()))
            a.set_width(a.get_width() * W / nW)
            a.set_height(a.get_height() * H / nH)
        elif hasattr(a, "get_data"):
            xs, ys = a.get_data()
            pts = [move(x, y) for x, y in zip(xs, ys)]
            a.set_data([p[0] for p in pts], [p[1] for p in pts])
    fig.set_size_inches(nW / fig.dpi, nH / fig.dpi)


def wrap_label(text: str, chars: int) -> str:
    """`text` broken into lines of at most about `chars` characters, at spaces and after underscores."""
    words = [w for w in re.split(r"(?<=_)|\s+", text) if w]
    lines, line = [], ""
    for w in words:
        if line and len(line) + len(w) > chars:
            lines.append(line.rstrip())
            line = ""
        line += w if line.endswith("_") or not line else " " + w
    return "\n".join(lines + [line.rstrip()])
