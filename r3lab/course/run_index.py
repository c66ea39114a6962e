"""A run's index: `Result` (one notebook's run), `<out>/index.html` (each notebook's page, time, headline and key
numbers, figures; files over `MAX_BYTES` flagged) and `results.json`, read back to write the index again."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 2_000_000  # an executed notebook or its page above this is flagged (and fails the tests)
# lesson -> its headline: (before, after) pairs shown first on the index page
HEADLINES = {
    "20_sft": [("read_one_before", "read_one_after"), ("crop_iou_before", "crop_iou_after")],
    "30_rgrpo": [("read_one_before", "read_one_after"), ("held_out_reward_before", "held_out_reward_after")],
}


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float
    output: Path
    numbers: dict = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    error: str = ""
    parameters: dict = field(default_factory=dict)
    page: Path | None = None  # nbconvert's HTML rendering of the executed notebook
    oversize: list[str] = field(default_factory=list)  # files above MAX_BYTES, "name (size)"
    cpu_seconds: float | None = None  # user + system seconds of the kernel (and of this process meanwhile)
    replaced: dict = field(default_factory=dict)  # given parameters smoke mode ran without: {name: (given, ran)}


def headline(r: Result) -> list[str]:
    """The notebook's headline as "name: before → after" lines (its HEADLINES pairs found in its numbers)."""
    out = []
    for a, b in HEADLINES.get(r.name, []):
        if a in r.numbers and b in r.numbers:
            name = os.path.commonprefix([a, b]).rstrip("_") or a
            out.append(f"{name}: {_num(r.numbers[a])} → {_num(r.numbers[b])}")
    return out


def _num(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def write_index(results: list[Result], out_dir: Path, title: str, facts: dict | None = None) -> Path:
    """`out_dir/index.html` (one row per notebook: its page, time, headline and key numbers, figures) and
    `out_dir/results.json`."""
    rows = []
    for r in results:
        rel = lambda f: html.escape(str(f.relative_to(out_dir)))  # noqa: E731
        pairs = [f"{html.escape(str(k))} = {html.escape(_num(v))}" for k, v in r.numbers.items()]
        head = "".join(f"<b>{html.escape(h)}</b><br>" for h in headline(r)) or "<br>".join(pairs[:4])
        nums = head + (
            f"<details><summary>all {len(pairs)}</summary>{'<br>'.join(pairs)}</details>"
            if len(pairs) > 4 or headline(r)
            else ""
        )
        figs = " ".join(f'<a href="{rel(f)}"><img src="{rel(f)}" height="60"></a>' for f in r.figures[:4])
        status = "passed" if r.ok else f"FAILED<pre>{html.escape(r.error)}</pre>"
        if r.replaced:
            status += (
                "<br><small>smoke mode replaced "
                + html.escape(", ".join(f"{k}={g!r} (ran: {v})" for k, (g, v) in r.replaced.items()))
                + "</small>"
            )
        if r.oversize:
            status += (
                f'<br><span class="bad">over {MAX_BYTES / 1e6:.0f} MB: {html.escape(", ".join(r.oversize))}</span>'
            )
        name = f'<a href="{rel(r.page)}">{html.escape(r.name)}</a>' if r.page else html.escape(r.name)
        name += f' <small>(<a href="{rel(r.output)}">ipynb</a>)</small>' if r.output.exists() else ""
        solution = out_dir / "solutions" / r.name / f"{r.name}.html"  # the answer key, when it ran into this folder
        name += f' <small>(<a href="{rel(solution)}">solution</a>)</small>' if solution.is_file() else ""
        cpu = f"<br><small>CPU {r.cpu_seconds:.0f} s</small>" if r.cpu_seconds else ""
        rows.append(
            f'<tr><td>{name}</td><td class="{"ok" if r.ok else "bad"}">{status}</td>'
            f"<td>{r.seconds:.1f} s{cpu}</td><td>{nums}</td><td>{figs}</td></tr>"
        )
    total = sum(r.seconds for r in results)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border-bottom:1px solid #ddd;padding:6px;vertical-align:top}}\
td:nth-child(3){{white-space:nowrap}}
.ok{{color:#070}}.bad{{color:#b00}}pre{{white-space:pre-wrap;max-width:60em}}</style></head><body>
<h1>{html.escape(title)}</h1><p>{sum(r.ok for r in results)}/{len(results)} notebooks passed in {total:.0f} s
({total / 60:.1f} min).</p>
<table><tr><th>notebook</th><th>status</th><th>time</th><th>headline and key numbers</th><th>figures</th></tr>
{"".join(rows)}</table></body></html>"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    (out_dir / "results.json").write_text(
        json.dumps(
            [
                {
                    "name": r.name,
                    "ok": r.ok,
                    "seconds": round(r.seconds, 2),
                    "numbers": r.numbers,
                    "error": r.error,
                    "cpu_seconds": None if r.cpu_seconds is None else round(r.cpu_seconds, 2),
                    "machine": facts or {},
                    "replaced": {k: list(v) for k, v in r.replaced.items()},
                    "parameters": r.parameters,
                    "headline": headline(r),
                    "page": str(r.page.relative_to(out_dir)) if r.page else None,
                    "oversize": r.oversize,
                }
                for r in results
            ],
            indent=2,
        )
    )
    return path


def load_results(out_dir: Path) -> tuple[list[Result], dict]:
    """The Results a run folder's results.json holds (and its machine's facts), to write its index again."""
    rows = json.loads((out_dir / "results.json").read_text())
    out = []
    for r in rows:
        work = out_dir / r["name"]
        out.append(
            Result(
                r["name"],
                r["ok"],
                r["seconds"],
                work / f"{r['name']}.ipynb",
                r.get("numbers") or {},
                sorted((work / "figures").glob("cell*.png")),
                r.get("error", ""),
                r.get("parameters") or {},
                out_dir / r["page"] if r.get("page") else None,
                r.get("oversize") or [],
                r.get("cpu_seconds"),
                {k: tuple(v) for k, v in (r.get("replaced") or {}).items()},
            )
        )
    return out, (rows[0].get("machine") or {}) if rows else {}


def refresh_index(out_dir: Path) -> Path | None:
    """Write `out_dir/index.html` again from its results.json (after its solutions ran, so it links them)."""
    out_dir = Path(out_dir).resolve()
    if not (out_dir / "results.json").is_file():
        return None
    results, facts = load_results(out_dir)
    profile = "smoke" if any(r.parameters.get("smoke") for r in results) else "default"
    return write_index(results, out_dir, f"r3lab notebooks ({profile})", facts)
