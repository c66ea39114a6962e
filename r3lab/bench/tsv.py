"""Benchmark TSV files read in bounded memory: scanned once, each row's images decoded only when asked.

The VLMEvalKit benchmark files (HR-Bench, MME-RealWorld(-Lite), TreeBench, ...) are tab-separated with
a header row and one row per question; the `image` column holds a base64-encoded image or, to save
space, the `index` of another row holding the same image (64 characters or fewer), the rule of
`vlmeval/dataset/image_base.py` (open-compass/VLMEvalKit, `ImageBaseDataset.__init__`). Fields are
quoted the way pandas' `to_csv(sep="\\t")` quotes them, so a quoted field may span lines.

`TsvTable(path)` keeps the small columns of every row and, for each row, only the byte span of its
record: `table.image(i)` seeks there and decodes that one image. A 2 GB HR-Bench 8K file is indexed
without ever holding more than one row. Errors name the file, the data row (1-based, the header not
counted), the line it starts on, and what to fix.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import os
import struct
import sys
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..core.env import progress_disabled
from ..core.settings import short

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a base64 8K image is one field of tens of MB
REF_MAX = 64  # VLMEvalKit: an image field this short is the index of the row holding the image


class TsvTable:
    """The rows of a benchmark TSV: small columns kept, `big` columns re-read from disk on demand."""

    def __init__(self, path: str | os.PathLike, required: tuple[str, ...] = (), big: tuple[str, ...] = ("image",)):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} does not exist: pass the benchmark's .tsv file")
        self.big = big
        self.rows: list[dict] = []  # small columns, plus "_row", "_line", "_span" and "_<big>_len"
        bar = tqdm(
            total=self.path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=f"index {self.path.name}",
            leave=False,
            disable=progress_disabled(),
        )
        with open(self.path, "rb") as f, bar:
            records = _records(f, self.path)
            try:
                head, line, _ = next(records)
            except StopIteration:
                raise ValueError(f"{self.path} is empty: expected a header row and one row per question") from None
            self.columns = _parse(head, self.path, 0, line)
            if missing := [c for c in required if c not in self.columns]:
                raise ValueError(
                    f"{self.path}: the header has no column(s) {missing} (it has {self.columns}); "
                    "is this the benchmark's published TSV?"
                )
            for n, (raw, line, span) in enumerate(records, 1):
                bar.update(len(raw))
                fields = _parse(raw, self.path, n, line)
                if len(fields) != len(self.columns):
                    raise ValueError(
                        f"{self.path}: row {n} (line {line}) has {len(fields)} fields, the header "
                        f"{len(self.columns)}; a tab or quote inside a field must be quoted"
                    )
                row = {"_row": n, "_line": line, "_span": span}
                for c, v in zip(self.columns, fields):
                    if c in big:
                        row[f"_{c}_len"] = len(v)
                        if len(v) <= REF_MAX:  # empty, or a reference to another row: cheap to keep
                            row[c] = v
                    else:
                        row[c] = v
                self.rows.append(row)
        self._by_index = {r.get("index"): r for r in self.rows if "index" in r}

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, i: int) -> str:
        r = self.rows[i]
        return f"{self.path}: row {r['_row']} (line {r['_line']})"

    def field(self, i: int, name: str) -> str:
        """One field of row i, read from disk if it is a big one."""
        r = self.rows[i]
        if name in r:
            return r[name]
        start, end = r["_span"]
        with open(self.path, "rb") as f:
            f.seek(start)
            fields = _parse(f.read(end - start), self.path, r["_row"], r["_line"])
        return fields[self.columns.index(name)]

    def image(self, i: int, column: str = "image") -> Image.Image:
        """Row i's image (an index reference followed), decoded and converted to RGB."""
        value = self.field(i, column)
        if not value:
            raise ValueError(f"{self.where(i)}: the {short(column)} field is empty; the row needs a base64 image")
        if len(value) <= REF_MAX and not _inline_image(value):
            target = self._by_index.get(value)
            if target is None or target[f"_{column}_len"] <= REF_MAX:
                raise ValueError(
                    f"{self.where(i)}: the {short(column)} field {short(value)} is neither a "
                    f"base64 image nor "
                    "the index of a row holding one"
                )
            return self.image(self.rows.index(target), column)
        return decode_image(value, self.where(i))

    def image_ref(self, i: int) -> dict:
        """What `image_at(ref)` needs to decode row i's image later, without re-scanning the file."""
        r = self.rows[i]
        v = r.get("image")
        if v is not None and _inline_image(v):  # a short image of its own: decoded now, so a bad one is named
            decode_image(v, self.where(i))
        elif v is not None:  # short: empty, or the index of the row holding the image
            target = self._by_index.get(v)
            if not v or target is None or target["_image_len"] <= REF_MAX:
                raise ValueError(
                    f"{self.where(i)}: the 'image' field {short(v)} is neither a base64 image nor "
                    f"the index "
                    "of a row holding one"
                    if v
                    else f"{self.where(i)}: the 'image' field is empty; the row needs a base64 image"
                )
            r = target
        return {
            "tsv": str(self.path),
            "span": list(r["_span"]),
            "row": r["_row"],
            "line": r["_line"],
            "column": self.columns.index("image"),
            "columns": len(self.columns),
        }


def image_at(ref: dict) -> Image.Image:
    """Decode the image an `image_ref` points at (one record read from disk)."""
    path = Path(ref["tsv"])
    where = f"{path}: row {ref['row']} (line {ref['line']})"
    if not path.is_file():
        raise FileNotFoundError(f"{where}: the benchmark file is gone; pass the folder it moved to")
    start, end = ref["span"]
    with open(path, "rb") as f:
        f.seek(start)
        fields = _parse(f.read(end - start), path, ref["row"], ref["line"])
    if len(fields) != ref["columns"]:
        raise ValueError(f"{where}: the file changed since the run (the row no longer has {ref['columns']} fields)")
    return decode_image(fields[ref["column"]], where)


_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM")  # PNG, JPEG, GIF, WebP, BMP


def _inline_image(value: str) -> bool:
    """Whether a short field is a (tiny or hostile) base64 image rather than the index of another row."""
    try:
        return base64.b64decode(value, validate=True).startswith(_SIGNATURES)
    except (binascii.Error, ValueError):
        return False


def decode_image(value: str, where: str) -> Image.Image:
    """A base64 image field as RGB; the error names the row."""
    try:
        data = base64.b64decode(value, validate=False)
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")
    except (
        binascii.Error,
        ValueError,
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        EOFError,
        struct.error,
        Image.DecompressionBombError,
    ) as e:  # the last: a header claiming more than PIL's pixel limit
        raise ValueError(
            f"{where}: the image field is not a base64-encoded image it can read ({type(e).__name__}: {e})"
        ) from None


def _records(f, path: Path):
    """(bytes of one record, its first line number, (start, end) byte span); a record continues while its
    double quotes are unbalanced (a quoted field holding a newline)."""
    line_no, buf, start, quotes, first = 0, [], 0, 0, 0
    pos = 0
    for line in f:
        line_no += 1
        if not buf:
            start, first, quotes = pos, line_no, 0
        buf.append(line)
        quotes += line.count(b'"')
        pos += len(line)
        if quotes % 2 == 0:
            rec = b"".join(buf)
            buf = []
            if rec.strip():
                yield rec, first, (start, pos)
    if buf:
        raise ValueError(
            f"{path}: a quoted field opened on line {first} is never closed; the file is cut short "
            "or a field holds a stray double quote"
        )


def _parse(raw: bytes, path: Path, row: int, line: int) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: row {row} (line {line}) is not UTF-8 ({e})") from None
    try:
        fields = next(csv.reader([text.rstrip("\r\n")], delimiter="\t", quotechar='"', strict=True))
    except (csv.Error, StopIteration) as e:
        raise ValueError(f"{path}: row {row} (line {line}) is not a valid TSV record ({e})") from None
    return fields
