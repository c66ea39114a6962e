"""One self-contained HTML page per trajectory: opens offline, from a file, anywhere.

Images are inlined as data URIs, there is no external script or style (a Content-Security-Policy
forbids any network fetch), every piece of text is HTML-escaped, and the embedded JSON escapes
`<`, `>` and `&` so a model that writes `</script>` cannot end the script block early (the
official visualiser had both bugs: unescaped text and raw JSON in a script tag).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image

from ..core.settings import short
from ..core.trajectory import ENV, IMAGE, Trajectory
from .steps import COLOURS, crop_boxes, trajectory_steps

if TYPE_CHECKING:
    from ..explain.crops import CropExplanation
    from ..explain.maps import AttentionMaps

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 8px} .wrap{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
.figure{position:relative;flex:none} .figure img,.figure svg{position:absolute;left:0;top:0}
.figure img.main{position:relative;display:block} .heat{opacity:.55;display:none}
.controls{margin:8px 0;font-size:14px} ol#steps{margin:0;padding-left:0;list-style:none;max-width:560px}
.step{font-family:ui-monospace,monospace;font-size:13px;white-space:pre-wrap;word-break:break-word;
 border-left:4px solid #ccc;padding:3px 8px;margin:4px 0;background:#fafafa}
.step.model_text{border-color:#4363d8}.step.env_text{border-color:#999;color:#555}.step.image{border-color:#e6194b}
.step.future{opacity:.25} .step .label{font-weight:bold;margin-right:6px} .step img{height:96px;vertical-align:top}
table{border-collapse:collapse;font-size:12px;margin-top:12px} td,th{border:1px solid #ccc;padding:2px 6px}
"""
_SCRIPT = """
(function(){
  var data = JSON.parse(document.getElementById('trajectory-data').textContent);
  var slider = document.getElementById('step');
  function show(k){
    var crop = 0;
    data.steps.forEach(function(s){ if (s.index <= k && s.crop) crop = Math.max(crop, s.crop); });
    document.querySelectorAll('li.step').forEach(function(li){
      li.classList.toggle('future', Number(li.dataset.step) > k); });
    document.querySelectorAll('[data-crop]').forEach(function(el){
      el.style.display = Number(el.dataset.crop) <= crop ? '' : 'none'; });
    document.getElementById('step-label').textContent = 'step ' + k + ' / ' + (data.steps.length - 1);
  }
  slider.addEventListener('input', function(){ show(Number(slider.value)); });
  var t = document.getElementById('toggle-attention');
  if (t) t.addEventListener('change', function(){
    document.getElementById('attention').style.display = t.checked ? 'block' : 'none'; });
  show(Number(slider.value));
})();
"""


def _data_uri(im: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def _safe_json(obj) -> str:
    """JSON that cannot close a <script> block or open a comment/CDATA inside it."""
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _heat_image(heat: np.ndarray, cmap: str = "inferno") -> Image.Image:
    h = heat / heat.max() if heat.max() > 0 else heat
    rgba = (colormaps[cmap](h) * 255).astype(np.uint8)
    rgba[..., 3] = (np.sqrt(h) * 230).astype(np.uint8)  # transparent where nothing was attended
    return Image.fromarray(rgba, "RGBA")


def trajectory_html(
    traj: Trajectory,
    maps: "AttentionMaps | None" = None,
    explanations: "Sequence[CropExplanation] | None" = None,
    title: str | None = None,
    display_width: int = 560,
    **agg,
) -> str:
    """The page as a string (see `export_html`)."""
    im = traj.main.image
    if im is None:
        raise ValueError("the trajectory's main image has no pixels (loaded with images='none'?)")
    W, H = im.size
    dw = min(display_width, max(W, 320))
    dh = round(dw * H / W)
    esc = html.escape
    title = title or traj.question or traj.sample_id or "trajectory"
    steps = trajectory_steps(traj)
    crops = [c for c in crop_boxes(traj) if c["box"] is not None]
    svg = [
        f'<svg id="boxes" width="{dw}" height="{dh}" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#fff"/></marker></defs>',
    ]
    sw = max(2.0, W / dw * 2.5)
    for c in crops:
        x1, y1, x2, y2 = c["box"]
        col = COLOURS[(c["n"] - 1) % len(COLOURS)]
        dash = "" if c["ok"] else f' stroke-dasharray="{3 * sw},{2 * sw}"'
        svg.append(
            f'<g class="crop-box" data-crop="{c["n"]}"><title>crop {c["n"]}</title>'
            f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" fill="none" '
            f'stroke="{col}" stroke-width="{sw:.1f}"{dash}/>'
            f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{9 * sw:.1f}" height="{9 * sw:.1f}" fill="{col}"/>'
            f'<text x="{x1 + 4.5 * sw:.1f}" y="{y1 + 7 * sw:.1f}" font-size="{7 * sw:.1f}" fill="#fff" '
            f'text-anchor="middle" font-family="sans-serif" font-weight="bold">{c["n"]}</text></g>'
        )
    for a, b in zip(crops, crops[1:]):
        (ax, ay), (bx, by) = _centre(a["box"]), _centre(b["box"])
        svg.append(
            f'<line data-crop="{b["n"]}" x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}" '
            f'stroke="#fff" stroke-width="{sw:.1f}" marker-end="url(#arrow)"/>'
        )
    svg.append("</svg>")
    heat = ""
    if maps is not None:
        heat = (
            f'<img id="attention" class="heat" alt="attention" width="{dw}" height="{dh}" '
            f'src="{_data_uri(_heat_image(maps.to_pixels(0, frame="orig", **agg)))}">'
        )
    items = []
    for s in steps:
        label = "Q" if s.index == 0 else str(s.index)
        crop_attr = f' data-has-crop="{s.crop}"' if s.crop else ""
        if s.kind == IMAGE:
            body = f'<img alt="crop {s.crop}" src="{_data_uri(traj.pieces[s.piece].image)}"> zoomed crop {s.crop}'
        else:
            body = esc(s.text.replace("<|im_end|>", ""))
            if s.kind == ENV and s.index > 0:
                body = "(environment) " + body
        items.append(
            f'<li class="step {s.kind}" data-step="{s.index}"{crop_attr}><span class="label">{label}</span>{body}</li>'
        )
    table = _explanation_table(explanations) if explanations else ""
    data = {
        "steps": [{"index": s.index, "kind": s.kind, "crop": s.crop, "text": s.text, "box": s.box} for s in steps],
        "question": traj.question,
        "answers": traj.answers,
        "final_answer": traj.final_answer(),
        "sample_id": traj.sample_id,
        "family": traj.family,
    }
    toggle = (
        '<label><input type="checkbox" id="toggle-attention"> attention heatmap</label>' if maps is not None else ""
    )
    meta = esc(" · ".join(x for x in (traj.sample_id, traj.family, f"answer: {traj.final_answer()}") if x))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{_STYLE}</style></head>
<body>
<h1 id="title">{esc(title)}</h1><div class="meta">{meta}</div>
<div class="controls"><input type="range" id="step" min="0" max="{len(steps) - 1}" value="{len(steps) - 1}">
<span id="step-label"></span> {toggle}</div>
<div class="wrap">
<div class="figure" id="figure" style="width:{dw}px;height:{dh}px">
<img class="main" id="main-image" alt="main image" width="{dw}" height="{dh}" src="{_data_uri(im.convert("RGB"))}">
{heat}
{"".join(svg)}
</div>
<ol id="steps">{"".join(items)}</ol>
</div>
{table}
<script id="trajectory-data" type="application/json">{_safe_json(data)}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def export_html(
    trajectory: Trajectory,
    path: str | os.PathLike,
    maps: "AttentionMaps | None" = None,
    explanations: "Sequence[CropExplanation] | None" = None,
    title: str | None = None,
    **kw,
) -> Path:
    """Write one self-contained HTML page for `trajectory` (no network needed to open it); returns the path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"export_html writes an .html file, got {short(path.name)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    page = trajectory_html(trajectory, maps=maps, explanations=explanations, title=title, **kw)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # never leave a half-written page behind
    return path


def _explanation_table(exps) -> str:
    def f(v, fmt="{:.2f}"):
        return "" if v is None else fmt.format(v)

    rows = [
        "<tr><th>crop</th><th>IoU with truth</th><th>attention in box</th><th>x area</th>"
        "<th>importance vs blank</th><th>vs another region</th><th>needed</th></tr>"
    ]
    for e in exps:
        a = e.attention
        rows.append(
            f"<tr><td>{e.event + 1}</td><td>{f(e.gt_iou)}</td><td>{f(a and a.mass_in_box)}</td>"
            f"<td>{f(a and a.concentration)}</td><td>{f(e.effect('blank'), '{:+.3f}')}</td>"
            f"<td>{f(e.effect('other'), '{:+.3f}')}</td><td>{html.escape(str(e.needed))}</td></tr>"
        )
    return '<table id="explanations">' + "".join(rows) + "</table>"


def _centre(b):
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
