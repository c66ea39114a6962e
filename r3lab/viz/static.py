"""Figures and tables that survive being saved: plotly as a PNG beside its JSON, tables as HTML.

An executed notebook is read later, untrusted, in JupyterLab or as nbconvert HTML. Plotly's `notebook`
renderer writes JavaScript (blank when untrusted) and inlines plotly.js (megabytes per notebook); the
`r3lab` renderer registered here writes a PNG that every viewer shows, and the figure's JSON for
JupyterLab's plotly extension when it is small. The PNG is kaleido's, drawn in a Chromium when one is found
(`find_browser`: R3LAB_CHROMIUM, else BROWSER_PATH, else where kaleido looks), one browser kept for the whole
kernel (a figure then takes about 0.2 s instead of 2-3 s); every wait on it is bounded (`START_S`, `DRAW_S`).
Without a browser, or when it does not answer in time, matplotlib draws the figure (`r3lab.viz.plotly_mpl`):
no figure path waits on a browser that is not there.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import html
import logging
import math
import os
import re
import signal
import threading
from typing import Any, Iterable, Mapping, Sequence

RENDERER = "r3lab"
MAX_JSON_BYTES = 400_000  # larger figures (big images as heatmaps) keep only their PNG
START_S = 8.0  # seconds the browser may take to start and answer; then matplotlib draws, for the whole kernel
DRAW_S = 8.0  # seconds one figure may take in it
_state: dict[str, Any] = {"drawer": None, "failed": ""}  # the kept browser, or why there is none
_lock = threading.Lock()


class BrowserMissing(RuntimeError):
    """No browser for kaleido to draw plotly's PNG in, or one that did not start or answer in time."""


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_browser() -> tuple[str | None, str]:
    """(path, how it was found) of the Chromium kaleido would draw in, or (None, why there is none). Looked for
    in this order, the first one set deciding: R3LAB_CHROMIUM, BROWSER_PATH, then kaleido's own search (PATH,
    the usual install folders, `kaleido_get_chrome`'s download)."""
    for var in ("R3LAB_CHROMIUM", "BROWSER_PATH"):
        if value := os.environ.get(var, "").strip():
            return (value, var) if _executable(value) else (None, f"{var}={value} is not an executable file")
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None, "kaleido is not installed (pip install 'r3lab[notebooks]')"
    try:
        path = Chromium.find_browser(skip_local=False)
    except Exception as e:  # a broken local download or registry: no browser, said once
        return None, f"looking for one failed ({type(e).__name__}: {e})"
    return (path, "found") if path else (None, "no Chromium, Chrome, Edge or Brave on PATH or in the usual places")


def figure_backend() -> str:
    """One line: what draws plotly's static images in this process (a browser's path, or matplotlib and why)."""
    if _state["failed"]:
        return f"matplotlib ({_state['failed']})"
    path, how = find_browser()
    return f"kaleido in {path}" if path else f"matplotlib (no browser for kaleido: {how})"


class _OursToEnd(logging.Filter):
    """Drops choreographer's "closed by watchdog" warning: r3lab ends the browser itself (a draw past `DRAW_S`, the
    kernel's exit) and says so; the warning would reach the notebook's stderr as if the browser had crashed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "closed by watchdog" not in record.getMessage()


_WATCHDOG_LOG = logging.getLogger("choreographer.browser_async")


class _Drawer:
    """One browser kept for the kernel, driven by kaleido on an event loop of its own thread; every wait bounded."""

    def __init__(self, path: str):
        import kaleido

        if not any(isinstance(f, _OursToEnd) for f in _WATCHDOG_LOG.filters):
            _WATCHDOG_LOG.addFilter(_OursToEnd())
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="r3lab-kaleido", daemon=True)
        self.thread.start()
        self.kaleido, self.ready, self.opening = None, False, None
        try:
            # not cancelled from here: the browser's process is started in a thread of choreographer's, and a
            # start cancelled before that thread returns would leave a browser nobody can name (`_abort`)
            self._wait(self._open(kaleido.Kaleido, path), START_S, f"start the browser {path}", cancel=False)
        except BaseException:
            self.close()
            raise

    async def _open(self, make, path: str) -> None:
        self.opening = asyncio.current_task()
        # mathjax=False: kaleido would fetch MathJax from a CDN, which an offline machine never answers
        self.kaleido = make(n=1, timeout=DRAW_S, mathjax=False, path=path)
        await self.kaleido.open()
        self.ready = True

    async def _abort(self) -> None:
        """Stop a start that did not finish in time, once the browser's process (if one was started) is known."""
        task = self.opening
        for _ in range(100):  # Popen returns in milliseconds, but on a loaded machine its thread may lag
            if task is None or task.done() or getattr(self.kaleido, "subprocess", None) is not None:
                break
            await asyncio.sleep(0.05)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=2)

    def _wait(self, coro, seconds: float, what: str, cancel: bool = True):
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(seconds)
        except concurrent.futures.TimeoutError:
            if cancel:
                future.cancel()
            raise BrowserMissing(f"kaleido could not {what} within {seconds:.0f} s") from None

    def draw(self, fig_dict: dict, opts: dict) -> bytes:
        return self._wait(self.kaleido.calc_fig(fig_dict, opts=opts), DRAW_S, "draw a figure")

    def close(self) -> None:
        if not self.ready:
            try:
                asyncio.run_coroutine_threadsafe(self._abort(), self.loop).result(8)
            except Exception:  # bounded: whatever process is known by now is killed below
                pass
        proc = getattr(self.kaleido, "subprocess", None)
        if proc is not None and proc.poll() is None:  # the browser's whole process group (it starts its own)
            try:
                os.killpg(proc.pid, signal.SIGTERM if self.ready else signal.SIGKILL)
            except (ProcessLookupError, PermissionError, AttributeError):
                proc.kill()
            try:
                proc.wait(2)  # reaped: no zombie left behind
            except Exception:
                pass
        if self.kaleido is not None and self.ready:
            try:
                self._wait(self.kaleido.close(), 2, "close the browser")
            except Exception:  # closing is best effort: the process is gone already
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2)


def figure_png(fig, width: int | None = None, height: int | None = None, scale: float = 1.0) -> bytes:
    """The plotly figure `fig` as PNG bytes, drawn by kaleido in a kept browser. Raises `BrowserMissing` (one line,
    within `START_S` + `DRAW_S` seconds) when there is no browser, or it does not start or answer in time; later
    calls in the same process then raise at once."""
    fig_dict = fig if isinstance(fig, dict) else fig.to_dict()
    layout = fig_dict.get("layout", {})
    opts = {
        "format": "png",
        "width": width or layout.get("width") or 900,
        "height": height or layout.get("height") or 480,
        "scale": scale,
    }
    with _lock:
        if _state["failed"]:
            raise BrowserMissing(_state["failed"])
        if _state["drawer"] is None:
            path, how = find_browser()
            if path is None:
                _state["failed"] = f"no browser for kaleido: {how}"
                raise BrowserMissing(_state["failed"])
            try:
                import kaleido  # noqa: F401
            except ImportError:
                _state["failed"] = "kaleido is not installed (pip install 'r3lab[notebooks]')"
                raise BrowserMissing(_state["failed"]) from None
            try:
                _state["drawer"] = _Drawer(path)
            except BrowserMissing as e:
                _state["failed"] = str(e)
                raise
            except Exception as e:  # the browser refused to start: say what kaleido said, in one line
                _state["failed"] = f"kaleido could not start {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                raise BrowserMissing(_state["failed"]) from None
            atexit.register(_stop)
        try:
            return _state["drawer"].draw(fig_dict, opts)
        except BrowserMissing as e:  # a browser that stopped answering is not waited on again
            _state["failed"] = str(e)
            _stop()
            raise


def _stop() -> None:
    drawer, _state["drawer"] = _state["drawer"], None
    if drawer is not None:
        drawer.close()


def static_bundle(fig_dict: dict) -> dict:
    """The mime bundle the `r3lab` renderer displays: PNG, plotly JSON when small, and a one-line text."""
    import json

    import plotly.io as pio

    title = fig_dict.get("layout", {}).get("title") or {}
    title = title.get("text", "") if isinstance(title, dict) else str(title)
    bundle: dict[str, Any] = {"text/plain": f"<plotly figure{': ' + title if title else ''}>"}
    try:
        png = figure_png(fig_dict)
    except BrowserMissing:  # no browser (Colab, Binder, most laptops): matplotlib draws it instead
        from .plotly_mpl import plotly_to_png

        png = None
        try:
            png = plotly_to_png(fig_dict)
        except Exception as e:  # a figure the static drawer cannot draw: say so in the output, keep the JSON
            bundle["text/plain"] += f" (no static image: {type(e).__name__}: {e})"
    except Exception as e:  # kaleido failed on this figure: say so in the output, keep the JSON
        png = None
        bundle["text/plain"] += f" (no static image: {type(e).__name__}: {e})"
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode()
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

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        caption: str = "",
        digits: int = 3,
    ):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns or dict.fromkeys(k for r in self.rows for k in r))
        self.caption, self.digits = caption, digits

    def cell(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, float):
            return (
                f"{value:.{self.digits}g}" if abs(value) >= 1e4 or 0 < abs(value) < 1e-3 else f"{value:.{self.digits}f}"
            )
        return str(value)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self.cell(r.get(c)))}</td>" for c in self.columns) + "</tr>"
            for r in self.rows
        )
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (
            f'<table class="r3lab-table" style="border-collapse:collapse">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
        )

    def __str__(self) -> str:
        grid = [self.columns] + [[self.cell(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max(len(row[i]) for row in grid) for i in range(len(self.columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in grid]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    def __repr__(self) -> str:
        return str(self)

    def __len__(self) -> int:
        return len(self.rows)


def table(
    rows: Iterable[Mapping[str, Any]] | Mapping[str, Any],
    columns: Sequence[str] | None = None,
    caption: str = "",
    digits: int = 3,
) -> Table:
    """A Table from row dicts, or from one dict of name -> value (two columns). Shows as HTML in a notebook."""
    if isinstance(rows, Mapping):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    return Table(list(rows), columns, caption, digits)


_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def markdown_table(text: str, caption: str = "") -> Table:
    """A Table from a markdown pipe table (`| a | b |` lines, a `|---|` separator), shown as HTML; lines before
    the table become the caption (markdown emphasis dropped)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    at = next(
        (i for i in range(len(lines) - 1) if lines[i].startswith("|") and _SEP.match(lines[i + 1].replace(" ", ""))),
        None,
    )
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
            a = e.attention
            row = {
                "sample": sid,
                "crop": e.event + 1,
                "IoU": e.gt_iou,
                "attention in box": a and a.mass_in_box,
                "x area": a and a.concentration,
                "top cell in truth": a and a.top_in_gt,
            }
            row.update({f"importance ({k})": v for k, v in (e.importance.effect if e.importance else {}).items()})
            row["needed"] = e.needed
            rows.append(row)
    return Table(rows, caption=caption)
