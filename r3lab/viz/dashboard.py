"""The crop-behaviour dashboard: how a policy's use of its crop tool moves over training, one plotly figure.

`crop_dashboard(source)` reads a training log, a run folder, `r3lab eval` folders or a set of trajectories (r3lab's
own or imported, `r3lab.evaluation.behaviour.load_run` / `load_evals`), and draws a panel per measure over
training steps: crop rate, invalid-crop rate, crops per answer, IoU with the ground truth, accuracy with and
without a crop, the reward terms, and tool necessity (tool_gain, tool_harm, zooming_gap, crop rate on questions
that need a crop and on those that do not) where the run measured it (a log written with the `NecessityEvery`
training callback, an `r3lab bench --necessity true` folder, `r3lab eval` folders: one point each, at the step in
the folder's name); per-family necessity (eval folders) gets a panel of its own at the last step and a table on
the page. A measure the run lacks is named under the title, not drawn. A collapse (the crop rate falling toward
zero while accuracy holds) is written in red across the top. `save_dashboard(fig, path)` writes one self-contained
HTML page (plotly.js inlined, no network fetch) with the verdict and a table of the steps.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.settings import short
from ..evaluation.behaviour import CollapseConfig, crop_behaviour, detect_collapse, load_evals, load_run
from ..evaluation.necessity import KEYS as NECESSITY

PANELS = [
    ("crop rate", ["crop_rate"]),
    ("invalid-crop rate", ["invalid_crop_rate"]),
    ("crops per answer", ["crops"]),
    ("crop IoU with the ground truth", ["crop_iou"]),
    ("accuracy: all / with a crop / without", ["accuracy", "accuracy_crop", "accuracy_no_crop"]),
    ("reward and its terms", ["reward"]),
    ("tool necessity", ["tool_gain", "tool_harm", "zooming_gap", "crop_rate_need", "crop_rate_no_need"]),
]


@dataclass
class DashboardConfig:
    """What `r3lab dashboard` reads and where it writes the page."""

    out: str = ""
    """the HTML page to write (default: dashboard.html beside the log or in the run folder)"""
    format: str = "auto"
    """auto | log | r3lab | eval | bench | vlm-r3 | deepeyes | verl | trl"""
    image_root: str = ""
    """folder the run's image paths start from (default: the run file's folder)"""
    tokenizer: str = ""
    """verl runs: the local model folder whose tokenizer wrote the ids"""


FAMILY_KEYS = PANELS[-1][1]  # the necessity keys drawn per family (`<family>/<key>` in a row)

_SHORT = {
    "tool_gain": "gain",
    "tool_harm": "harm",
    "zooming_gap": "zoom gap",
    "crop_rate_need": "crops: need",
    "crop_rate_no_need": "no need",
}  # the per-family panel's axis labels (a third of the page wide)
_NAMES = {
    "accuracy": "all",
    "accuracy_crop": "with a crop",
    "accuracy_no_crop": "without a crop",
    "crop_rate_need": "crop rate, needs a crop",
    "crop_rate_no_need": "crop rate, needs none",
}


def crop_dashboard(
    source, collapse: CollapseConfig | None = None, title: str = "", terms="code", **load_kw
) -> go.Figure:
    """The dashboard of `source`: a MetricLog, a list of Trajectories, a path (`load_run(path, **load_kw)`) or a
    list of `r3lab eval` folders (`load_evals`, one step each: one per checkpoint). `terms`: the reward trajectories
    without their system's own reward are scored with (a preset name or a `RewardSpec`: give the one the run trained
    with, so the "reward" panel is that run's reward).

    The rows and the collapse verdict ride along in `fig.layout.meta` (`{"rows": [...], "collapse": {...}}`).
    """
    if isinstance(source, (list, tuple)) and source and all(isinstance(p, (str, os.PathLike)) for p in source):
        if len(source) == 1:
            source = source[0]
        else:
            if load_kw.get("format", "auto") not in ("auto", "eval"):
                raise ValueError(
                    f"several paths are read as `r3lab eval` folders; format={short(load_kw['format'])} reads one path"
                )
            title = title or f"{len(source)} evaluations"
            source = load_evals(source)
    if isinstance(source, (str, os.PathLike)):
        title = title or Path(source).name
        source = load_run(source, **load_kw)
    rows = crop_behaviour(source, terms)
    measured = sum(isinstance(r.get("crop_rate", r.get("crops")), float) for r in rows)
    window = max(1, min((collapse or CollapseConfig()).window, measured // 2))  # as detect_collapse takes it
    return figure_dashboard(rows, detect_collapse(rows, collapse), title, window)


def figure_dashboard(
    rows: Sequence[dict], collapse: dict | None = None, title: str = "", window: int | None = None
) -> go.Figure:
    """A panel over steps for each measure of `PANELS` the `behaviour` rows hold (crop rate, invalid crops,
    crops per answer, IoU, accuracy, reward, tool necessity); measures the run never recorded get no empty panel but
    a line under the title. Rows with per-family necessity (`<family>/<key>`) add a panel of those keys per family at
    the last step that has them. `collapse` (from `detect_collapse`) is written on top, with the `window` of steps its
    early and late numbers average."""
    steps = [r["step"] for r in rows]
    terms = sorted({k for r in rows for k in r if k.startswith("reward/")})
    series = {
        name: [(k, [_num(r.get(k)) for r in rows]) for k in keys + (terms if name.startswith("reward") else [])]
        for name, keys in PANELS
    }
    series = {name: [(k, ys) for k, ys in pairs if any(y is not None for y in ys)] for name, pairs in series.items()}
    shown = [name for name, _ in PANELS if series[name]] or [PANELS[0][0]]
    missing = [name for name, _ in PANELS if not series[name]]
    fam_step, per_family = family_necessity(rows)
    titles = shown + ([f"tool necessity per family (step {fam_step})"] if per_family else [])
    n_rows = math.ceil(len(titles) / 3)
    fig = make_subplots(
        rows=n_rows,
        cols=min(3, len(titles)),
        subplot_titles=titles,
        horizontal_spacing=0.07,
        vertical_spacing=0.16 if n_rows > 1 else 0.1,
    )
    keys_of = dict(PANELS)
    for i, name in enumerate(shown):
        row, col = i // 3 + 1, i % 3 + 1
        for k, ys in series[name]:
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=ys,
                    mode="lines+markers",
                    name=_NAMES.get(k, k),
                    legendgroup=name,
                    showlegend=len(keys_of[name]) > 1 or name.startswith("reward"),
                    hovertemplate=f"{k}<br>step %{{x}}: %{{y:.3f}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(title_text="step", row=row, col=col)
        if "rate" in name or "accuracy" in name or "IoU" in name:
            fig.update_yaxes(range=[-0.03, 1.03], row=row, col=col)
    if per_family:  # x: the keys, one bar per family, so the legend names the families
        row, col = len(shown) // 3 + 1, len(shown) % 3 + 1
        for fam, vals in per_family.items():
            fig.add_trace(
                go.Bar(
                    x=[_SHORT[k] for k in FAMILY_KEYS],
                    y=[vals.get(k) for k in FAMILY_KEYS],
                    name=fam,
                    legendgroup="per family",
                    legendgrouptitle_text="per family",
                    customdata=list(FAMILY_KEYS),
                    hovertemplate=f"{fam}<br>%{{customdata}}: %{{y:.3f}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(tickangle=0, row=row, col=col)
        fig.update_layout(barmode="group")
    verdict = (collapse or {}).get("message", "")
    colour = "#c0392b" if (collapse or {}).get("collapsed") else "#555"
    head = f"<b>{html.escape(title or 'crop behaviour')}</b>"
    if verdict and (collapse or {}).get("steps") and window:  # the verdict's numbers are means over a few steps
        verdict += f" (means over the first and last {window} steps with crops measured)"
    if verdict:
        head += f"<br><span style='color:{colour};font-size:13px'>{html.escape(verdict)}</span>"
    if missing:  # e.g. a run without ground-truth boxes has no IoU: said once, not drawn as a blank panel
        head += (
            "<br><span style='color:#888;font-size:12px'>not measured in this run: "
            f"{html.escape(', '.join(missing))}</span>"
        )
    fig.update_layout(
        title=dict(text=head, x=0.01),
        height=220 + 280 * n_rows,
        margin=dict(t=130, l=50, r=20, b=50),
        legend=dict(orientation="h", y=-0.12 * 2 / (n_rows + 1)),
        template="plotly_white",
        meta={"rows": [_clean(r) for r in rows], "collapse": _clean(collapse or {}), "missing": missing},
    )
    return fig


def family_necessity(rows: Sequence[dict]) -> tuple[int | None, dict[str, dict]]:
    """The last step whose row holds per-family necessity (`<family>/<key>`, from `r3lab eval` folders) and its
    values, `{family: {key: value}}` (NaN / missing: None); `(None, {})` when no row has any."""
    for r in reversed(rows):
        fams: dict[str, dict] = {}
        for k, v in r.items():
            fam, _, key = k.rpartition("/")
            if fam and key in FAMILY_KEYS:
                fams.setdefault(fam, {})[key] = _num(v)
        if fams:
            return r["step"], dict(sorted(fams.items()))
    return None, {}


def save_dashboard(fig: go.Figure, path: str | os.PathLike) -> Path:
    """One self-contained HTML page: the figure (plotly.js inlined), the collapse verdict, a table of steps."""
    path = Path(path)
    meta = fig.layout.meta or {}
    rows, collapse = meta.get("rows", []), meta.get("collapse", {})
    terms = sorted({k for r in rows for k in r if k.startswith("reward/")})
    keys = ["step", "n"] + [k for _, ks in PANELS for k in ks] + terms
    keys = [k for k in dict.fromkeys(keys) if any(k in r for r in rows)]
    table = (
        "<tr>"
        + "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{_cell(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows)
    )
    bad = collapse.get("collapsed")
    banner = (
        f"<p class='verdict {'bad' if bad else ''}'>{html.escape(collapse.get('message', ''))}</p>" if collapse else ""
    )
    body = fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    fam_rows = [
        (r["step"], fam, r)
        for r in rows
        for fam in sorted({k.rpartition("/")[0] for k in r if k.rpartition("/")[2] in NECESSITY} - {""})
    ]
    if fam_rows:  # per-family necessity (eval folders): one row per step and family, every key
        body += (
            "<h2>tool necessity per family</h2><table><tr><th>step</th><th>family</th>"
            + "".join(f"<th>{html.escape(k)}</th>" for k in NECESSITY)
            + "</tr>"
            + "".join(
                f"<tr><td>{step}</td><td>{html.escape(fam)}</td>"
                + "".join(f"<td>{_cell(r.get(f'{fam}/{k}'))}</td>" for k in NECESSITY)
                + "</tr>"
                for step, fam, r in fam_rows
            )
            + "</table>"
        )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>crop dashboard</title><style>{_STYLE}</style>"
        f"</head><body>{banner}{body}<h2>steps</h2><table>{table}</table></body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:16px;color:#222} .verdict{font-size:15px;padding:6px 10px;"
    "background:#f4f4f4;border-left:4px solid #888} .verdict.bad{background:#fdecea;border-color:#c0392b}"
    " table{border-collapse:collapse;font-size:12px}"
    " td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
)


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _cell(v) -> str:
    v = _num(v)
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else html.escape(str(v)))


def _clean(d: dict) -> dict:
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else list(v) if isinstance(v, tuple) else v)
        for k, v in d.items()
    }
