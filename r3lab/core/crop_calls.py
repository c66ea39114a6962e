"""The crop-call grammar: `{"bbox_2d": [x1, y1, x2, y2]}` in model text, found, formatted and judged.

A call holds absolute pixels of the main image's model-input frame (`r3lab.core.regions.Frame`).
Parsing never raises: every malformed, empty, inverted, outside or absurdly thin box is a `Verdict`
with a message the environment can show the model.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum

from .regions import Box, Frame, clip_box


class Verdict(str, Enum):
    """What the environment concluded about one crop call."""

    OK = "ok"
    NOT_JSON = "not_json"
    NO_BBOX = "no_bbox_2d"
    WRONG_ARITY = "wrong_arity"
    NON_NUMERIC = "non_numeric"
    NON_FINITE = "non_finite"
    INVERTED = "inverted"
    ZERO_AREA = "zero_area"
    OUTSIDE = "outside_image"
    TOO_THIN = "too_thin"
    UNTERMINATED = "unterminated"


_MESSAGES = {
    Verdict.NOT_JSON: "the crop call is not valid JSON",
    Verdict.NO_BBOX: 'the crop call has no "bbox_2d" key',
    Verdict.WRONG_ARITY: "bbox_2d needs exactly four numbers [x1, y1, x2, y2]",
    Verdict.NON_NUMERIC: "bbox_2d must hold numbers",
    Verdict.NON_FINITE: "bbox_2d holds NaN or infinity",
    Verdict.INVERTED: "x2 must be larger than x1 and y2 larger than y1",
    Verdict.ZERO_AREA: "the box has no area",
    Verdict.OUTSIDE: "the box lies outside the image",
    Verdict.TOO_THIN: "the box is too thin",
    Verdict.UNTERMINATED: "the crop call was never closed",
}


@dataclass
class CropCall:
    """One crop call found in generated text, with its verdict."""

    start: int  # character span of the call in the text
    end: int
    raw: str
    verdict: Verdict
    box: Box | None = None  # as written (input frame), when it parsed into four finite numbers
    clipped: bool = False  # the box reached past the image edge and was clipped
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def to_dict(self) -> dict:
        return {
            "start": self.start, "end": self.end, "raw": self.raw, "verdict": self.verdict.value,
            "box": list(self.box) if self.box is not None else None, "clipped": self.clipped, "message": self.message,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CropCall":
        box = tuple(d["box"]) if d.get("box") is not None else None
        return cls(d["start"], d["end"], d["raw"], Verdict(d["verdict"]), box, d.get("clipped", False), d.get("message", ""))


def format_crop_call(box: Box) -> str:
    """The canonical text of a crop call (integers when the numbers are whole)."""
    nums = ", ".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in box)
    return '{"bbox_2d": [' + nums + "]}"


def parse_crop_call(raw: str, frame: Frame | None = None, max_aspect: float = 20.0, start: int = 0) -> CropCall:
    """Judge one `{...}` string. Never raises; every failure is a verdict with a message."""
    end = start + len(raw)

    def bad(verdict: Verdict, box: Box | None = None, detail: str = "") -> CropCall:
        msg = _MESSAGES[verdict] + (f" ({detail})" if detail else "")
        return CropCall(start, end, raw, verdict, box, False, msg)

    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return bad(Verdict.NOT_JSON)
    if not isinstance(obj, dict):
        return bad(Verdict.NOT_JSON)
    if "bbox_2d" not in obj:
        return bad(Verdict.NO_BBOX)
    vals = obj["bbox_2d"]
    if not isinstance(vals, list) or len(vals) != 4:
        return bad(Verdict.WRONG_ARITY)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in vals):
        return bad(Verdict.NON_NUMERIC)
    try:
        box = tuple(float(v) for v in vals)
    except OverflowError:  # an integer too large for a float
        return bad(Verdict.NON_FINITE)
    if not all(math.isfinite(v) for v in box):
        return bad(Verdict.NON_FINITE)
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        return bad(Verdict.INVERTED, box)
    if x2 == x1 or y2 == y1:
        return bad(Verdict.ZERO_AREA, box)
    if frame is None:
        return CropCall(start, end, raw, Verdict.OK, box, False, "ok")
    W, H = frame.input_w, frame.input_h
    if x2 <= 0 or y2 <= 0 or x1 >= W or y1 >= H:
        return bad(Verdict.OUTSIDE, box, f"the image is {W}x{H}")
    c = clip_box(box, W, H)
    w, h = c[2] - c[0], c[3] - c[1]
    if max(w, h) / min(w, h) > max_aspect:
        return bad(Verdict.TOO_THIN, box, f"{w:g}x{h:g}, at most 1:{max_aspect:g}")
    o = frame.to_orig(c)
    if o[0] >= o[2] or o[1] >= o[3]:
        return bad(Verdict.ZERO_AREA, box, "narrower than one pixel of the original image")
    clipped = c != box
    return CropCall(start, end, raw, Verdict.OK, box, clipped, "ok (clipped to the image)" if clipped else "ok")


def find_crop_calls(text: str, frame: Frame | None = None, max_aspect: float = 20.0) -> list[CropCall]:
    """Every crop-call attempt in `text`: `{...}` spans mentioning bbox (braces inside JSON strings do not
    count; a string broken by a newline ends its call there), plus an open one at the end."""
    calls = []
    i = 0
    while (i := text.find("{", i)) != -1:
        j = _match_brace(text, i)
        if j is None:
            tail = text[i:]
            if "bbox" in tail.lower():
                calls.append(CropCall(i, len(text), tail, Verdict.UNTERMINATED, None, False, _MESSAGES[Verdict.UNTERMINATED]))
            break
        raw = text[i : j + 1]
        if "bbox" in raw.lower():
            calls.append(parse_crop_call(raw, frame, max_aspect, start=i))
        i = j + 1
    return calls


def closed_call_since(text: str, since: int, frame: Frame | None = None, max_aspect: float = 20.0) -> CropCall | None:
    """The crop call whose closing brace lies at or after character `since` (the newest token), if any."""
    for call in reversed(find_crop_calls(text, frame, max_aspect)):
        if call.verdict is not Verdict.UNTERMINATED and call.end - 1 >= since:
            return call
    return None


def _match_brace(text: str, i: int) -> int | None:
    """Index of the character that ends the call opened at `i`, or None while it is still open.

    JSON strings are honoured: a brace inside one (`{"note": "}", "bbox_2d": [...]}`) does not
    count. A JSON string cannot hold a raw line break, so a string still open at a newline (a stray
    quote) ends the call there (it is then not JSON). The end is a function of the text up to it,
    so a rollout that checks after each `}` or newline token finds the same calls as the finished text.
    """
    depth, in_str, esc = 0, False, False
    for j in range(i, len(text)):
        c = text[j]
        if in_str:
            if c == "\n":
                return j
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
    return None
