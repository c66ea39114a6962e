"""One reviewable page per run (report.html) and per pair of runs (diff.html): self-contained (crops embedded as data
URIs, no script or style fetched), every text from the data escaped, tables sortable by a click on a header (a few
lines of inline JS; with JS off the tables read the same, unsorted).

`audit_html(results, questions)`: per family the audit's numbers against their chance levels, cost per correct
answer and attention vs box, then one table per family with one row per question (question, accepted answers, the
model's answer and the crops it took, each setting's answer). `diff_html(diff)`: `r3lab report diff`'s questions
whose correctness differs between two runs.
"""

from __future__ import annotations

import html
import math
import os
import re
from pathlib import Path
from typing import Sequence

from ..core.files import atomic_write_text

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em}
th,td{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}th{background:#f3f3f3;cursor:pointer}
td img{max-width:80px}td.ok{background:#e3f6e3}td.no{background:#fbe3e3}
img{image-rendering:pixelated;margin:1px;border:1px solid #999}
.small{color:#666;font-size:12px}code{background:#f6f6f6}"""
SORT = """document.querySelectorAll('table.sortable').forEach(function(t){
t.querySelectorAll('th').forEach(function(th,i){
th.title='sort';th.addEventListener('click',function(){var b=t.tBodies[0],r=Array.prototype.slice.call(b.rows),
up=th.getAttribute('data-dir')!=='up';th.setAttribute('data-dir',up?'up':'down');r.sort(function(x,y){
var a=x.cells[i].getAttribute('data-v'),c=y.cells[i].getAttribute('data-v');a=a===null?x.cells[i].textContent:a;
c=c===null?y.cells[i].textContent:c;var p=parseFloat(a),q=parseFloat(c),d=(!isNaN(p)&&!isNaN(q))?p-q:a.localeCompare(c);
return up?d:-d;});r.forEach(function(row){b.appendChild(row);});});});});"""
HEAD = (
    "accuracy",
    "chance",
    "acc_format_only",
    "acc_dummy_crop",
    "acc_result_only",
    "acc_no_crop",
    "acc_majority_no_crop",
    "pass_at_k_no_crop",
    "tool_only",
    "also_solved_without",
)


# control characters (NUL: the page reads as binary) and the bidirectional controls (U+202E turns the rest of a
# cell around on screen, so a table can show another answer than it holds): shown as their code, never raw
HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def e(v) -> str:
    """Text from the data, escaped for HTML (quotes too: it may land in an attribute), its control and
    bidirectional characters written as their code points (`U+202E`)."""
    text = html.escape("" if v is None else str(v), quote=True)
    return HIDDEN.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def _num(v, digits: int = 3) -> str:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        return "–"
    return str(v) if isinstance(v, int) else f"{v:.{digits}f}"


def _interval(row: dict, key: str) -> str:
    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    return "" if lo is None or hi is None else f' <span class="small">[{_num(lo)}, {_num(hi)}]</span>'


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{e(title)}</title><style>{STYLE}</style></head>'
        f"<body><h1>{e(title)}</h1>{body}<script>{SORT}</script></body></html>"
    )


def _table(head: Sequence[str], rows: Sequence[str], cls: str = "sortable", caption: str = "") -> str:
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    head_row = "".join(f"<th>{e(h)}</th>" for h in head)
    return f'<table class="{cls}">{cap}<thead><tr>{head_row}</tr></thead><tbody>' + "".join(rows) + "</tbody></table>"


def _numbers(rows: dict) -> str:
    """Per family: the audit's numbers (with their chance level and interval)."""
    keys = [k for k in HEAD if any(k in r for r in rows.values())]
    out = []
    for fam, r in rows.items():
        cells = [f"<td>{e(fam)}</td><td>{_num(r.get('n'))}</td>"]
        for k in keys:
            ch = r.get(f"{k}_chance")
            chance = "" if ch is None or k == "chance" else f' <span class="small">(chance {_num(ch)})</span>'
            cells.append(f'<td data-v="{_num(r.get(k))}">{_num(r.get(k))}{_interval(r, k)}{chance}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    return _table(["family", "n", *keys], out, caption="accuracy of each setting, 95 % intervals, chance levels")


def _costs(rows: dict) -> str:
    from ..audit.audit import SETTINGS  # here, not at the top: they bring torch, which sweep.html's page needs not
    from ..evaluation.cost import PARTS
    from ..evaluation.necessity import VARIANTS

    names = [
        s
        for s in dict.fromkeys(("own", *SETTINGS, *VARIANTS))
        if any(f"tokens_per_correct_{s}" in r for r in rows.values())
    ]
    out = [
        f"<tr><td>{e(fam)}</td><td>{e(s)}</td>"
        + "".join(
            f'<td data-v="{_num(r.get(f"{p}_per_correct_{s}"), 4)}">{_num(r.get(f"{p}_per_correct_{s}"), 4)}</td>'
            for p in PARTS
        )
        + "</tr>"
        for fam, r in rows.items()
        for s in names
    ]
    return _table(
        ["family", "setting", *(f"{p} per correct answer" for p in PARTS)],
        out,
        caption="cost per correct answer (wall and vision-encoder seconds as measured on this machine)",
    )


def _attention(rows: dict) -> str:
    cells = ("both", "attention_only", "box_only", "neither")
    out = [
        f"<tr><td>{e(fam)}</td>"
        + "".join(f"<td>{_num(r.get(f'attn_box_{c}'))}</td>" for c in cells)
        + f'<td>{_num(r.get("attn_in_region"))}{_interval(r, "attn_in_region")} <span class="small">(chance '
        f"{_num(r.get('attn_in_region_chance'))})</span></td><td>{_num(r.get('box_on_region'))}"
        f"{_interval(r, 'box_on_region')}</td></tr>"
        for fam, r in rows.items()
        if "attn_box_n" in r
    ]
    return (
        _table(
            [
                "family",
                "attention and box on the region",
                "attention only",
                "box only",
                "neither",
                "attention peak on the region",
                "box on the region",
            ],
            out,
            caption="attention vs box per crop call with a ground-truth region (ConFoThinking)",
        )
        if out
        else ""
    )


def _mark(correct) -> tuple[str, str]:
    if correct is None:
        return "", "–"
    return ("ok", "1") if correct else ("no", "0")


def _crops(crops: Sequence[dict]) -> str:
    imgs = []
    for c in crops:
        box = ", ".join(_num(v, 0) for v in c.get("box_input") or [])
        src = str(c.get("image", ""))
        if src.startswith("data:image/"):  # only embedded images: a page that fetches nothing
            imgs.append(f'<img src="{e(src)}" alt="crop [{e(box)}]" title="[{e(box)}]">')
        else:
            imgs.append(f'<span class="small">[{e(box)}]</span>')
    return "".join(imgs)


def _answer_cell(rec: dict | None) -> str:
    if not rec:
        return '<td data-v="-1">–</td>'
    cls, v = _mark(rec.get("correct"))
    return f'<td class="{cls}" data-v="{v}">{e(rec.get("answer"))}</td>'


def _questions(questions: Sequence[dict]) -> str:
    from ..audit.audit import SETTINGS
    from ..evaluation.necessity import VARIANTS

    settings = [s for s in dict.fromkeys((*SETTINGS, *VARIANTS)) if any(s in q.get("settings", {}) for q in questions)]
    out = []
    for fam in sorted({q.get("family", "?") for q in questions}):
        rows = []
        for q in (q for q in questions if q.get("family", "?") == fam):
            own = q["own"]
            tool_only = q.get("tool_only")
            only = "yes" if tool_only else ("no" if tool_only is not None else "–")
            rows.append(
                f"<tr><td>{e(q['sample_id'])}</td><td>{e(q.get('question'))}</td>"
                f"<td>{e(' / '.join(map(str, q.get('answers', []))))}</td>{_answer_cell(own)}"
                f'<td data-v="{len(own.get("crops", []))}">{_crops(own.get("crops", []))}</td>'
                + "".join(_answer_cell(q["settings"].get(s)) for s in settings)
                + f'<td data-v="{_mark(tool_only)[1]}">{only}</td></tr>'
            )
        out.append(
            f"<h3>{e(fam)}: {len(rows)} questions</h3>"
            + _table(["id", "question", "accepted", "answer (own crops)", "crops", *settings, "tool only"], rows)
        )
    return "".join(out)


def audit_html(results: dict, questions: Sequence[dict], title: str = "r3lab audit") -> str:
    """The whole page: numbers per family, the legend, cost, attention vs box, then every question."""
    from ..audit.audit import WHAT

    rows = results.get("rows", {})
    legend = "".join(f"<li><code>{e(k)}</code>: {e(v)}</li>" for k, v in WHAT.items())
    body = (
        f'<p class="small">{e(results.get("source", ""))} · {len(questions)} questions · complete: '
        f"{e(results.get('complete', True))}</p><h2>Numbers per family</h2>{_numbers(rows)}"
        f"<h2>What each setting shows where the model's rollout shows a crop</h2><ul>{legend}</ul>"
        f"<h2>Cost per correct answer</h2>{_costs(rows)}<h2>Attention vs box</h2>{_attention(rows)}"
        f"<h2>Per question</h2>{_questions(questions)}"
    )
    return _page(title, body)


def diff_html(diff: dict, a: str = "A", b: str = "B") -> str:
    """`r3lab report diff`'s page: counts per family, then each question whose correctness differs."""
    fams = [
        f"<tr><td>{e(f)}</td><td>{c['n']}</td><td>{c['fixed']}</td><td>{c['broken']}</td></tr>"
        for f, c in diff["families"].items()
    ]
    rows = [
        f"<tr><td>{e(c['sample_id'])}</td><td>{e(c['family'])}</td><td>{e(c['question'])}</td>"
        f"<td>{e(' / '.join(map(str, c.get('answers', []))))}</td><td>{e(c['change'])}</td>"
        f"{_answer_cell(c['a'])}<td>{_crops(c['a'].get('crops', []))}</td>{_answer_cell(c['b'])}"
        f"<td>{_crops(c['b'].get('crops', []))}</td></tr>"
        for c in diff["changed"]
    ]
    body = (
        f"<p>A: <code>{e(a)}</code><br>B: <code>{e(b)}</code><br>{diff['common']} questions in both; "
        f"{len(diff['only_a'])} only in A, {len(diff['only_b'])} only in B.</p>"
        + _table(["family", "questions", "fixed (wrong in A, right in B)", "broken (right in A, wrong in B)"], fams)
        + "<h2>Questions whose correctness differs</h2>"
        + _table(
            ["id", "family", "question", "accepted", "change", "A's answer", "A's crops", "B's answer", "B's crops"],
            rows,
        )
    )
    return _page("r3lab report diff", body)


def write_page(path: str | os.PathLike, page: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page)
    return path
