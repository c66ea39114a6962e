"""Which executed notebooks the site shows as they are: the ones r3lab's runner executed on this machine.

An executed notebook's outputs are HTML a browser runs: a run folder copied from elsewhere could hold a `<script>`.
The runner signs every notebook it executes (`sign`: Jupyter's own notebook trust, an HMAC over the whole notebook
with a secret kept in this user's data folder, in a signature store of r3lab's own so Jupyter's trust is
untouched). `r3lab notebooks site` shows a signed notebook unchanged and `sanitize`s every other one: HTML outputs
and markdown keep tables, text and inline images and lose scripts, event handlers, frames, styles and links other
than http(s), mail and relative ones; JavaScript and widget outputs are dropped. R3LAB_TRUST_DIR names another
folder for the secret and the store.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
_SAFE_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,", re.I)
_SAFE_LINK = re.compile(r"^(https?:|mailto:|#|[^:]*$)", re.I)  # http(s), mail, anchors, relative paths
KEEP = {
    "text/plain",
    "text/latex",
    "image/png",
    "image/jpeg",
    "application/json",
    "application/vnd.plotly.v1+json",
    "application/vnd.r3lab.report+json",
}  # output types shown as data, never run
CLEAN = {"text/html", "text/markdown"}  # cleaned; every other type (JavaScript, SVG, widgets) is dropped


def trust_dir() -> Path:
    if os.environ.get("R3LAB_TRUST_DIR"):
        return Path(os.environ["R3LAB_TRUST_DIR"])
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "r3lab-trust"


def _notary():
    from nbformat.sign import NotebookNotary

    folder = trust_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return NotebookNotary(
        data_dir=str(folder), db_file=str(folder / "signatures.db"), secret_file=str(folder / "secret")
    )


def sign(path: str | os.PathLike) -> None:
    """Record `path` (an executed notebook) as executed here: `signed` holds for it until its content changes."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    with _notary() as notary:
        notary.sign(nb)


def signed(path: str | os.PathLike) -> bool:
    """True when `path` is, byte for byte in content, a notebook this machine's runner executed and signed."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # unreadable: certainly not one we wrote
        return False
    with _notary() as notary:
        return bool(notary.check_signature(nb))


def _attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "title", "align", "colspan", "rowspan", "open", "alt", "width", "height"):
        return True
    if tag == "img" and name == "src":
        return bool(_SAFE_IMAGE.match(value))
    if tag == "a" and name == "href":
        return bool(_SAFE_LINK.match(value.strip()))
    return False


def clean_html(text: str) -> str:
    """`text` with only `TAGS` and safe attributes left; anything else escaped (comments and script bodies too)."""
    import bleach

    return bleach.clean(
        text,
        tags=TAGS,
        attributes=_attribute,
        protocols={"http", "https", "mailto", "data"},
        strip=False,
        strip_comments=True,
    )


_CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)  # fenced blocks and inline code: already inert


def clean_markdown(text: str) -> str:
    """Markdown with its raw HTML cleaned (`clean_html`) outside code, which markdown shows as text anyway."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else (clean_html(p) if "<" in p else p) for i, p in enumerate(parts))


def sanitize(nb) -> int:
    """Clean an untrusted notebook in place: markdown and raw cells, HTML and markdown outputs; other output types
    that a browser would run are dropped. Returns how many cells or outputs changed."""
    changed = int(bool(nb.metadata.pop("widgets", None)))  # widget state: views a browser would run
    for cell in nb.cells:
        if cell.cell_type in ("markdown", "raw"):
            new = clean_markdown(cell.source)
            changed += new != cell.source
            cell.source = new
            cell.pop("attachments", None)
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            for key in list(data):
                if key in CLEAN:
                    text = "".join(data[key]) if isinstance(data[key], list) else data[key]
                    new = clean_markdown(text) if key == "text/markdown" else clean_html(text)
                    changed += new != text
                    data[key] = new
                elif key not in KEEP:
                    del data[key]
                    changed += 1
    return changed
