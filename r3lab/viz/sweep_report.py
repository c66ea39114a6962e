"""A sweep's page (sweep.html): self-contained (inline style, SVG plots, no script or style fetched), every text from
the data escaped, tables sortable by a click on a header (audit_report's few lines of inline JS).

What it shows: how the numbers were made (the method, the family of comparisons, the noise floor), each point's
metrics with their intervals and chance levels, the paired comparisons with the baseline, a plot per metric against
each swept setting (interval bands, each seed's run as a dot, the chance line), every run's status and time, and the
spec as it ran. `summary_rows` are the rows of sweep.csv.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Sequence

import numpy as np

from ..sweep.stats import LEVEL, METHOD, RESAMPLES
from .audit_report import _page, _table, e

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
EXTRA_STYLE = """<style>.svgplot{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
td.good{background:#e3f6e3}td.bad{background:#fbe3e3}pre{background:#f6f6f6;padding:.6em;font-size:12px}
.badge{font-size:11px;color:#7a4b00;background:#fff1cc;border-radius:3px;padding:0 3px}</style>"""


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return str(v) if isinstance(v, int) else f"{v:.{digits}f}"


def _val(v) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _label(point: dict) -> str:
    return ", ".join(f"{k}={_val(v)}" for k, v in point.items()) or "(the only point)"


def summary_rows(results: Sequence) -> list[dict]:
    """One row per point x metric: the estimate, chance, and the comparison with the baseline (sweep.csv)."""
    out = []
    for r in results:
        c = r.comparison
        out.append(
            {
                **{f"grid.{k}": _val(v) for k, v in r.point.items()},
                "metric": r.metric,
                "mean": r.estimate.mean,
                "lo": r.estimate.lo,
                "hi": r.estimate.hi,
                "seeds": r.estimate.seeds,
                "questions": r.estimate.questions,
                "chance": r.chance,
                "within_chance": r.within_chance,
                "diff": c.diff if c else None,
                "diff_lo": c.lo if c else None,
                "diff_hi": c.hi if c else None,
                "p": c.p if c else None,
                "p_holm": c.p_holm if c else None,
                "poi": c.poi if c else None,
                "poi_lo": c.poi_lo if c else None,
                "poi_hi": c.poi_hi if c else None,
            }
        )
    return out


def _verdict(c) -> tuple[str, str]:
    if c is None or math.isnan(c.p_holm):
        return "", "–"
    if c.p_holm < 1 - LEVEL:
        return ("good", "better") if c.diff > 0 else ("bad", "worse")
    return "", "within noise"


def _points_table(sweep, results: Sequence, metrics: list[str]) -> str:
    grid = list(sweep.spec.grid)
    base = sweep.spec.baseline_point()
    by = {(json.dumps(r.point, sort_keys=True), r.metric): r for r in results}
    rows = []
    for p in sweep.points():
        runs = [r for r in sweep.runs if r["point"] == p]
        done = sum(r["status"].state == "done" for r in runs)
        cells = "".join(f'<td data-v="{e(_val(p[k]))}">{e(_val(p[k]))}</td>' for k in grid)
        cells += f'<td data-v="{done}">{done}/{len(runs)}</td>'
        for m in metrics:
            r = by[(json.dumps(p, sort_keys=True), m)]
            est = r.estimate
            chance = "" if r.chance is None else f' <span class="small">(chance {_num(r.chance)})</span>'
            badge = ' <span class="badge">overlaps chance</span>' if r.within_chance else ""
            cells += (
                f'<td data-v="{_num(est.mean, 6)}">{_num(est.mean)} <span class="small">[{_num(est.lo)}, '
                f"{_num(est.hi)}]</span>{chance}{badge}</td>"
            )
        mark = " (baseline)" if p == base else ""
        rows.append(f"<tr>{cells}<td>{e(mark.strip(' ()'))}</td></tr>")
    return _table(
        [*grid, "runs done", *metrics, "role"], rows, caption=f"mean over seeds and questions, {LEVEL:.0%} interval"
    )


def _comparisons_table(results: Sequence) -> str:
    rows = []
    for r in results:
        c = r.comparison
        if c is None:
            continue
        cls, verdict = _verdict(c)
        rows.append(
            f"<tr><td>{e(_label(r.point))}</td><td>{e(r.metric)}</td>"
            f'<td data-v="{_num(c.diff, 6)}">{_num(c.diff)} <span class="small">[{_num(c.lo)}, {_num(c.hi)}]'
            f'</span></td><td data-v="{_num(c.poi, 6)}">{_num(c.poi)} <span class="small">[{_num(c.poi_lo)}, '
            f'{_num(c.poi_hi)}]</span></td><td data-v="{_num(c.p, 6)}">{_num(c.p, 4)}</td>'
            f'<td data-v="{_num(c.p_holm, 6)}">{_num(c.p_holm, 4)}</td><td class="{cls}">{verdict}</td>'
            f"<td>{c.seeds} x {c.questions}</td></tr>"
        )
    if not rows:
        return '<p class="small">No comparison: the sweep has one point, or the baseline has no finished run.</p>'
    return _table(
        [
            "point",
            "metric",
            "paired difference [interval]",
            "P(improvement) [interval]",
            "p",
            "p (Holm)",
            "verdict",
            "seeds x questions paired",
        ],
        rows,
    )


def _plot(sweep, results: Sequence, metric: str, setting: str) -> str:
    """SVG: `metric` against the values of `setting`, one line per combination of the other settings, its interval
    as a band, each seed's run as a dot, the chance level dashed."""
    values = sweep.spec.grid[setting]
    others = [k for k in sweep.spec.grid if k != setting]
    lines: dict[str, list] = {}
    for r in (r for r in results if r.metric == metric):
        key = _label({k: r.point[k] for k in others}) if others else metric
        lines.setdefault(key, []).append(r)
    dots = [(r["point"][setting], sweep.run_value(r, metric)) for r in sweep.runs if r["status"].state == "done"]
    ys = [v for r in results if r.metric == metric for v in (r.estimate.lo, r.estimate.hi, r.estimate.mean)]
    ys += [v for _, v in dots] + [r.chance for r in results if r.metric == metric and r.chance is not None]
    ys = [v for v in ys if v is not None and not math.isnan(v)]
    w, h, left, bottom, top, right = 440, 250, 52, 40, 24, 12
    if not ys:
        return f'<div class="svgplot small">{e(metric)}: no finished run yet</div>'
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = lo - pad, hi + pad
    xs = {json.dumps(v): left + (w - left - right) * (i + 0.5) / len(values) for i, v in enumerate(values)}
    y = lambda v: top + (h - top - bottom) * (hi - v) / (hi - lo)  # noqa: E731
    parts = [
        f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" stroke="#bbb"/>'
    ]
    for t in range(5):
        v = lo + (hi - lo) * t / 4
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{_num(v, 2)}</text>')
    for v in values:
        label = _val(v)
        label = label if len(label) <= 12 else label[:11] + "…"
        parts.append(
            f'<text x="{xs[json.dumps(v)]:.1f}" y="{h - bottom + 14}" font-size="10" text-anchor="middle">'
            f"{e(label)}</text>"
        )
    for i, (key, rs) in enumerate(sorted(lines.items())):
        color = PALETTE[i % len(PALETTE)]
        rs = sorted(rs, key=lambda r: values.index(r.point[setting]))
        pts = [(xs[json.dumps(r.point[setting])], r.estimate) for r in rs if not math.isnan(r.estimate.mean)]
        band = [(x, est.hi if not math.isnan(est.hi) else est.mean) for x, est in pts] + [
            (x, est.lo if not math.isnan(est.lo) else est.mean) for x, est in reversed(pts)
        ]
        if len(pts) > 1:
            parts.append(
                f'<polygon points="{" ".join(f"{x:.1f},{y(v):.1f}" for x, v in band)}" fill="{color}" '
                'fill-opacity="0.15" stroke="none"/>'
            )
            parts.append(
                f'<polyline points="{" ".join(f"{x:.1f},{y(est.mean):.1f}" for x, est in pts)}" '
                f'fill="none" stroke="{color}" stroke-width="1.5"/>'
            )
        for x, est in pts:
            if not math.isnan(est.lo):
                parts.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(est.lo):.1f}" y2="{y(est.hi):.1f}" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y(est.mean):.1f}" r="3.5" fill="{color}"><title>{e(key)}: '
                f"{_num(est.mean)} [{_num(est.lo)}, {_num(est.hi)}]</title></circle>"
            )
        if others:
            parts.append(f'<text x="{left + 4}" y="{top + 12 + 12 * i}" font-size="10" fill="{color}">{e(key)}</text>')
    for v, val in dots:
        if not math.isnan(val):
            parts.append(
                f'<circle cx="{xs[json.dumps(v)] + 7:.1f}" cy="{y(val):.1f}" r="1.8" fill="#555" fill-opacity="0.6"/>'
            )
    chance = next((r.chance for r in results if r.metric == metric and r.chance is not None), None)
    if chance is not None:
        parts.append(
            f'<line x1="{left}" x2="{w - right}" y1="{y(chance):.1f}" y2="{y(chance):.1f}" stroke="#444" '
            f'stroke-dasharray="4 3"/><text x="{w - right - 2}" y="{y(chance) - 3:.1f}" font-size="10" '
            f'text-anchor="end">chance {_num(chance, 2)}</text>'
        )
    parts.append(
        f'<text x="{w / 2}" y="{h - 6}" font-size="11" text-anchor="middle">{e(setting)}</text>'
        f'<text x="{left}" y="{top - 8}" font-size="12" font-weight="bold">{e(metric)}</text>'
    )
    return (
        f'<svg class="svgplot" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{e(metric)} against {e(setting)}">{"".join(parts)}</svg>'
    )


def _runs_table(sweep) -> str:
    grid = list(sweep.spec.grid)
    rows = []
    for r in sweep.runs:
        st = r["status"]
        cls = {"done": "ok", "failed": "no"}.get(st.state, "")
        rows.append(
            "<tr>"
            + f"<td>{e(r['folder'])}</td>"
            + "".join(f"<td>{e(_val(r['point'][k]))}</td>" for k in grid)
            + f'<td data-v="{r["seed"]}">{r["seed"]}</td><td class="{cls}">{e(st.state)}</td>'
            f"<td>{e(st.cause)}</td><td>{e(st.error)}</td>"
            f'<td data-v="{_num(st.seconds, 2)}">{_num(st.seconds, 1)}</td><td>{st.attempts}</td>'
            f'<td>{e(st.host)}</td><td><a href="runs/{e(r["folder"])}/log.txt">log</a></td></tr>'
        )
    return _table(["run", *grid, "seed", "state", "cause", "error", "seconds", "attempts", "host", "log"], rows)


def _noise(sweep, results: Sequence, metrics: list[str]) -> str:
    """The noise floor: questions per run, one question's weight, the baseline's spread over seeds."""
    base = sweep.spec.baseline_point()
    items = []
    for m in metrics:
        x, seeds, ids = sweep.table(base, m)
        if not len(seeds):
            continue
        with warnings.catch_warnings():  # a seed without a scored question: NaN, said as such
            warnings.simplefilter("ignore", RuntimeWarning)
            per_seed = [float(v) for v in np.nanmean(x, axis=1)]
        sd = _sd([v for v in per_seed if not math.isnan(v)])
        items.append(
            f"<li><code>{e(m)}</code>: {len(ids)} question(s) a run"
            + (f" (one question moves a run's mean by {1 / len(ids):.3f})" if len(ids) > 1 else "")
            + f"; the baseline's {len(seeds)} seeds: {', '.join(_num(v) for v in per_seed)}"
            f" (SD {_num(sd)})</li>"
        )
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _sd(v: list[float]) -> float:
    if len(v) < 2:
        return math.nan
    m = sum(v) / len(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def sweep_html(sweep, results: Sequence, title: str = "") -> str:
    """The whole page."""
    metrics = sweep.metrics()
    spec = sweep.spec
    n_cmp = len({json.dumps(r.point, sort_keys=True) for r in results if r.comparison is not None})
    states = [r["status"].state for r in sweep.runs]
    method = (
        f"Each point's mean is over its seeds and the held-out questions; its {LEVEL:.0%} interval is a "
        f"{METHOD} bootstrap ({RESAMPLES} resamples, scipy.stats.bootstrap) stratified over seeds and questions "
        "(both resampled, as rliable's stratified bootstrap with its task level). A comparison pairs seed s of "
        "a point with seed s of the baseline on the same question; P(improvement) is rliable's (per question, "
        "over the seeds' pairs, ties counted half). p-values come from the same bootstrap and are "
        f"Holm-adjusted over the {n_cmp} point(s) compared with the baseline, per metric. Exploratory: read "
        "a difference whose interval holds 0 as noise."
    )
    plots = (
        "".join(_plot(sweep, results, m, s) for m in metrics for s in spec.grid)
        or '<p class="small">No plot: the spec has no grid (one point).</p>'
    )
    body = (
        f'<p class="small">command <code>{e(spec.command)}</code> · {len(sweep.points())} point(s) x '
        f"{len(spec.seeds)} seed(s) · runs: {states.count('done')} done, {states.count('failed')} failed, "
        f"{len(states) - states.count('done') - states.count('failed')} pending or running · baseline "
        f"<code>{e(_label(spec.baseline_point()))}</code> · r3lab at git <code>{e(sweep.record.get('git') or '?')}"
        f"</code> · created {e(sweep.record.get('created'))}</p>"
        f"<h2>How to read it</h2><p>{e(method)}</p>{_noise(sweep, results, metrics)}"
        f"<h2>Points</h2>{_points_table(sweep, results, metrics)}"
        f"<h2>Against the baseline</h2>{_comparisons_table(results)}"
        f"<h2>Each metric against each swept setting</h2><div>{plots}</div>"
        f"<h2>Runs</h2>{_runs_table(sweep)}"
        f"<h2>The spec</h2><pre>{e(json.dumps(spec.to_dict(), indent=1))}</pre>"
    )
    page = _page(title or f"r3lab sweep: {sweep.folder.name}", body)
    return page.replace("</head>", EXTRA_STYLE + "</head>", 1)
