"""Figures and tables that survive being saved: plotly as a PNG (kaleido) beside its JSON, tables as HTML.

An executed notebook is read later, untrusted, in JupyterLab or as nbconvert HTML. Plotly's `notebook`
renderer writes JavaScript (blank when untrusted) and inlines plotly.js (megabytes per notebook); the
`r3lab` renderer registered here writes a PNG that every viewer shows, and the figure's JSON for
JupyterLab's plotly extension when it is small. Kaleido draws the PNG in a Chromium it finds
(Debian's /usr/bin/chromium, or BROWSER_PATH); one browser is kept for the whole kernel (a figure then
takes about 0.2 s instead of 2-3 s).
"""
from __future__ import annotations

import atexit
import base64
import html
import math
import re
import threading
from typing import Any, Iterable, Mapping, Sequence

RENDERER = "r3lab"
MAX_JSON_BYTES = 400_000  # larger figures (big images as heatmaps) keep only their PNG
_server = {"started": False}
_lock = threading.Lock()


def figure_png(fig, width: int | None = None, height: int | None = None, scale: float = 1.0) -> bytes:
    """The plotly figure `fig` as PNG bytes, drawn by kaleido in a kept Chromium."""
    import kaleido

    fig_dict = fig if isinstance(fig, dict) else fig.to_dict()
    layout = fig_dict.get("layout", {})
    opts = {"format": "png", "width": width or layout.get("width") or 900,
            "height": height or layout.get("height") or 480, "scale": scale}
    with _lock:
        if not _server["started"]:
            kaleido.start_sync_server(silence_warnings=True)
            _server["started"] = True
            atexit.register(_stop)
    # kaleido.calc_fig_sync directly: plotly's to_image passes `kopts`, which a kept server warns about
    return kaleido.calc_fig_sync(fig_dict, opts=opts)


def _stop() -> None:
    import kaleido

    if _server["started"]:
        kaleido.stop_sync_server(silence_warnings=True)
        _server["started"] = False


def static_bundle(fig_dict: dict) -> dict:
    """The mime bundle the `r3lab` renderer displays: PNG, plotly JSON when small, and a one-line text."""
    import json

    import plotly.io as pio

    title = (fig_dict.get("layout", {}).get("title") or {})
    title = title.get("text", "") if isinstance(title, dict) else str(title)
    bundle: dict[str, Any] = {"text/plain": f"<plotly figure{': ' + title if title else ''}>"}
    try:
        bundle["image/png"] = base64.b64encode(figure_png(fig_dict)).decode()
    except Exception as e:  # no kaleido / no Chromium: say so once in the output, keep the JSON
        bundle["text/plain"] += f" (no static image: {type(e).__name__}: {e}; pip install kaleido, and Chromium)"
    text = pio.to_json(fig_dict, validate=False)
    if len(text) <= MAX_JSON_BYTES:
        bundle["application/vnd.plotly.v1+json"] = json.loads(text)
    return bundle


def register_renderer(default: bool = True) -> str:
    """Register the `r3lab` plotly renderer (PNG + small JSON) and make it the default when `default`."""
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    class StaticRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            return static_bundle(fig_dict)

    pio.renderers[RENDERER] = StaticRenderer()
    if default:
        pio.renderers.default = RENDERER
    return RENDERER


class Table:
    """A table that displays as HTML in a notebook (and as aligned text elsewhere). `.rows` keeps the data."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 caption: str = "", digits: int = 3):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns or dict.fromkeys(k for r in self.rows for k in r))
        self.caption, self.digits = caption, digits

    def cell(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, float):
            return f"{value:.{self.digits}g}" if abs(value) >= 1e4 or 0 < abs(value) < 1e-3 else f"{value:.{self.digits}f}"
        return str(value)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(self.cell(r.get(c)))}</td>" for c in self.columns)
                       + "</tr>" for r in self.rows)
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="r3lab-table" style="border-collapse:collapse">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    def __str__(self) -> str:
        grid = [self.columns] + [[self.cell(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max(len(row[i]) for row in grid) for i in range(len(self.columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in grid]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    def __repr__(self) -> str:
        return str(self)

    def __len__(self) -> int:
        return len(self.rows)


def table(rows: Iterable[Mapping[str, Any]] | Mapping[str, Any], columns: Sequence[str] | None = None,
          caption: str = "", digits: int = 3) -> Table:
    """A Table from row dicts, or from one dict of name -> value (two columns). Shows as HTML in a notebook."""
    if isinstance(rows, Mapping):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    return Table(list(rows), columns, caption, digits)


_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def markdown_table(text: str, caption: str = "") -> Table:
    """A Table from a markdown pipe table (`| a | b |` lines, a `|---|` separator), shown as HTML; lines before
    the table become the caption (markdown emphasis dropped)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    at = next((i for i in range(len(lines) - 1) if lines[i].startswith("|") and _SEP.match(lines[i + 1].replace(" ", ""))),
              None)
    if at is None:
        raise ValueError("markdown_table: expected a header line, a |---| separator line, then rows")
    caption = caption or " ".join(lines[:at]).replace("**", "")
    split = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines[at:] if ln.startswith("|")]
    head = split[0]
    return Table([dict(zip(head, row)) for row in split[2:]], head, caption)


def explanations_table(explained: Mapping[str, Sequence[Any]], caption: str = "") -> Table:
    """One row per crop decision of `explain_crops` records (sample id -> records): IoU with the truth,
    attention in the box and against its area, whether the hottest cell is in the truth, importance
    against each counterfactual view, and whether the crop was needed. Shows as HTML."""
    rows = []
    for sid, exps in explained.items():
        for e in exps:
            row = {"sample": sid, "crop": e.event + 1, "IoU": e.gt_iou, "attention in box": e.mass_in_box,
                   "x area": e.concentration, "top cell in truth": e.top_in_gt}
            row.update({f"importance ({k})": v for k, v in e.importance.items()})
            row["needed"] = e.needed
            rows.append(row)
    return Table(rows, caption=caption)
