"""The crop-call grammars, found, formatted and judged in either coordinate frame.

Two grammars (`CallStyle.grammar`): VLM-R3's bare `{"bbox_2d": [x1, y1, x2, y2]}` inside the reasoning
("json"), and Qwen3-VL's native tool call `<tool_call>\n{"name": "image_zoom_in_tool", "arguments":
{"bbox_2d": [...], "label": "..."}}\n</tool_call>` ("tool"). Two frames for the numbers
(`CallStyle.coords`): absolute pixels of the main image's model-input view (Qwen2.5-VL, VLM-R3) or
relative 0-1000 (Qwen3-VL). Whatever was written, `CropCall.box` is in the model-input frame
(`r3lab.core.regions.Frame`), so everything downstream of parsing is frame-free.
Parsing never raises: every malformed, empty, inverted, outside or absurdly thin box is a `Verdict`
with a message the environment can show the model, the same verdict in both grammars and frames.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Sequence

from .regions import Box, Frame, clip_box
from .settings import short

if TYPE_CHECKING:
    from .regions import ViewConfig


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
    UNKNOWN_TOOL = "unknown_tool"


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
    Verdict.UNKNOWN_TOOL: "the tool call does not name image_zoom_in_tool",
}

COORDS = ("absolute", "relative")
GRAMMARS = ("json", "tool")
TOOL_NAME = "image_zoom_in_tool"
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
RELATIVE_SCALE = 1000  # Qwen3-VL's relative frame: 0..1000 along each side


@dataclass(frozen=True)
class CallStyle:
    """How crop calls are written: the frame of their numbers and the grammar around them."""

    coords: str = "absolute"  # "absolute": model-input pixels (Qwen2.5-VL, VLM-R3) | "relative": 0-1000 (Qwen3-VL)
    grammar: str = "json"  # "json": bare {"bbox_2d": [...]} in the reasoning | "tool": Qwen3-VL's image_zoom_in_tool

    def __post_init__(self):
        if self.coords not in COORDS:
            raise ValueError(f"CallStyle.coords = {short(self.coords)}: expected one of {COORDS}")
        if self.grammar not in GRAMMARS:
            raise ValueError(f"CallStyle.grammar = {short(self.grammar)}: expected one of {GRAMMARS}")

    @classmethod
    def of(cls, value: "CallStyle | dict | None") -> "CallStyle":
        """A style from itself, its dict (r3lab.json, trajectory JSON) or None (the default)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        try:
            return cls(**value)
        except TypeError as e:
            raise ValueError(f"a crop-call style must hold 'coords' and 'grammar', got {short(value)} ({e})") from None

    def to_dict(self) -> dict:
        return {"coords": self.coords, "grammar": self.grammar}

    def written(self, box_input: Box, frame: Frame | None) -> Box:
        """A model-input-frame box as this style writes its numbers (relative: whole numbers 0-1000)."""
        if self.coords == "absolute":
            return tuple(box_input)
        if frame is None:
            raise ValueError("writing a box in relative coordinates needs the image's Frame")
        return tuple(float(round(v)) for v in frame.to_relative(box_input))

    def read(self, box_written: Box, frame: Frame | None) -> Box:
        """Numbers as written -> the model-input frame (as written when there is no frame to scale by)."""
        if self.coords == "absolute" or frame is None:
            return tuple(box_written)
        return frame.from_relative(box_written)


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
            "start": self.start,
            "end": self.end,
            "raw": self.raw,
            "verdict": self.verdict.value,
            "box": list(self.box) if self.box is not None else None,
            "clipped": self.clipped,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CropCall":
        box = tuple(d["box"]) if d.get("box") is not None else None
        return cls(
            d["start"], d["end"], d["raw"], Verdict(d["verdict"]), box, d.get("clipped", False), d.get("message", "")
        )


def format_crop_call(box: Box, style: CallStyle | None = None, frame: Frame | None = None, label: str = "") -> str:
    """The canonical text of a crop call for a model-input-frame `box` (integers when the numbers are
    whole); `frame` is needed for relative coordinates, `label` is the tool call's optional label."""
    style = CallStyle.of(style)
    nums = ", ".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in style.written(box, frame))
    if style.grammar == "json":
        return '{"bbox_2d": [' + nums + "]}"
    args = '{"bbox_2d": [' + nums + "]" + (f', "label": {json.dumps(label)}' if label else "") + "}"
    return f'{TOOL_OPEN}\n{{"name": "{TOOL_NAME}", "arguments": {args}}}\n{TOOL_CLOSE}'


def parse_crop_call(
    raw: str, frame: Frame | None = None, max_aspect: float = 20.0, start: int = 0, style: CallStyle | None = None
) -> CropCall:
    """Judge one call (`{...}`, or `<tool_call>...</tool_call>` in the tool grammar). Never raises; every
    failure is a verdict with a message."""
    style = CallStyle.of(style)
    end = start + len(raw)

    def bad(verdict: Verdict, box: Box | None = None, detail: str = "") -> CropCall:
        msg = _MESSAGES[verdict] + (f" ({detail})" if detail else "")
        return CropCall(start, end, raw, verdict, box, False, msg)

    body = raw
    if style.grammar == "tool":
        body = raw[len(TOOL_OPEN) : -len(TOOL_CLOSE)] if raw.startswith(TOOL_OPEN) and raw.endswith(TOOL_CLOSE) else raw
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return bad(Verdict.NOT_JSON)
    if not isinstance(obj, dict):
        return bad(Verdict.NOT_JSON)
    if style.grammar == "tool":
        if obj.get("name") != TOOL_NAME:
            return bad(Verdict.UNKNOWN_TOOL, detail=f"got {short(obj.get('name'))}")
        obj = obj.get("arguments")
        if not isinstance(obj, dict):
            return bad(Verdict.NO_BBOX)
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
        return bad(Verdict.INVERTED, style.read(box, frame))
    if x2 == x1 or y2 == y1:
        return bad(Verdict.ZERO_AREA, style.read(box, frame))
    box = style.read(box, frame)
    if frame is None:
        return CropCall(start, end, raw, Verdict.OK, box, False, "ok")
    x1, y1, x2, y2 = box
    W, H = frame.input_w, frame.input_h
    if x2 <= 0 or y2 <= 0 or x1 >= W or y1 >= H:
        size = f"the image is {W}x{H}" if style.coords == "absolute" else f"coordinates run 0-{RELATIVE_SCALE}"
        return bad(Verdict.OUTSIDE, box, size)
    c = clip_box(box, W, H)
    w, h = c[2] - c[0], c[3] - c[1]
    if max(w, h) / min(w, h) > max_aspect:
        return bad(Verdict.TOO_THIN, box, f"{w:g}x{h:g}, at most 1:{max_aspect:g}")
    o = frame.to_orig(c)
    if o[0] >= o[2] or o[1] >= o[3]:
        return bad(Verdict.ZERO_AREA, box, "narrower than one pixel of the original image")
    clipped = c != box
    return CropCall(start, end, raw, Verdict.OK, box, clipped, "ok (clipped to the image)" if clipped else "ok")


def find_crop_calls(
    text: str, frame: Frame | None = None, max_aspect: float = 20.0, style: CallStyle | None = None
) -> list[CropCall]:
    """Every crop-call attempt in `text`. json grammar: `{...}` spans mentioning bbox (braces inside JSON
    strings do not count; a string broken by a newline ends its call there), plus an open one at the end.
    tool grammar: `<tool_call>...</tool_call>` spans, plus an open one at the end."""
    style = CallStyle.of(style)
    if style.grammar == "tool":
        return _find_tool_calls(text, frame, max_aspect, style)
    calls = []
    i = 0
    while (i := text.find("{", i)) != -1:
        j = _match_brace(text, i)
        if j is None:
            tail = text[i:]
            if "bbox" in tail.lower():
                calls.append(
                    CropCall(i, len(text), tail, Verdict.UNTERMINATED, None, False, _MESSAGES[Verdict.UNTERMINATED])
                )
            break
        raw = text[i : j + 1]
        if "bbox" in raw.lower():
            calls.append(parse_crop_call(raw, frame, max_aspect, start=i, style=style))
        i = j + 1
    return calls


def _find_tool_calls(text: str, frame, max_aspect: float, style: CallStyle) -> list[CropCall]:
    calls, i = [], 0
    while (i := text.find(TOOL_OPEN, i)) != -1:
        j = text.find(TOOL_CLOSE, i + len(TOOL_OPEN))
        if j == -1:
            calls.append(
                CropCall(i, len(text), text[i:], Verdict.UNTERMINATED, None, False, _MESSAGES[Verdict.UNTERMINATED])
            )
            break
        j += len(TOOL_CLOSE)
        calls.append(parse_crop_call(text[i:j], frame, max_aspect, start=i, style=style))
        i = j
    return calls


# -- a box given as tool arguments (TRL's tool loop, tool-calling logs) --------------------------
def check_coords(coords: str) -> str:
    if coords not in COORDS:
        raise ValueError(
            f"coords must be 'absolute' (model-input pixels) or 'relative' (0-{RELATIVE_SCALE}), got {short(coords)}"
        )
    return coords


def to_input_pixels(box: Sequence[float], frame: Frame, coords: str = "absolute") -> tuple[float, ...]:
    """A box as the model wrote it, in the model-input pixels r3lab's grammar judges (relative: 0-1000 of each side)."""
    if check_coords(coords) == "absolute":
        return tuple(box)
    return frame.from_relative(box, RELATIVE_SCALE)


def judge_box(bbox_2d, frame: Frame, view: "ViewConfig", coords: str = "absolute") -> CropCall:
    """The verdict r3lab's grammar gives `{"bbox_2d": bbox_2d}` (after moving a relative box to input pixels).

    `raw` keeps the arguments as the model wrote them; `box` is in the model-input frame when it parsed."""
    raw = json.dumps({"bbox_2d": bbox_2d})
    numeric = (
        isinstance(bbox_2d, list)
        and len(bbox_2d) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in bbox_2d)
    )
    text = format_crop_call(to_input_pixels(bbox_2d, frame, coords)) if numeric and coords == "relative" else raw
    call = parse_crop_call(text, frame, view.max_aspect)
    call.raw, call.end = raw, len(raw)
    return call


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float (the grammar calls it non_finite)
        return False


def closed_call_since(
    text: str, since: int, frame: Frame | None = None, max_aspect: float = 20.0, style: CallStyle | None = None
) -> CropCall | None:
    """The crop call whose closing brace (or `</tool_call>`) ends at or after character `since` (the
    newest token), if any."""
    for call in reversed(find_crop_calls(text, frame, max_aspect, style)):
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
