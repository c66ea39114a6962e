"""VLIR samples moved between crop-call styles: bare JSON <-> Qwen3-VL's tool call, absolute <-> relative.

A sample's rationale writes its crop calls in one `CallStyle`, recorded in its provenance (`"calls"`;
absent: absolute pixels, bare JSON, as every VLIR builder and the official release write them).
`restyle` rewrites each call in another style and sets each crop's box to exactly what the environment
reads from the new text, so SFT teaches what a rollout in that style would do. The tool grammar's
tool-response turns are not stored: `Sample.reference` adds them from the policy's style.
"""

from __future__ import annotations

import dataclasses
import json

from ..core.crop_calls import CallStyle, find_crop_calls, format_crop_call
from ..core.regions import Frame, ViewConfig
from ..core.trajectory import IMAGE, MODEL
from .sample import Sample
from .vlir import image_size


def sample_style(sample: Sample) -> CallStyle:
    """The style the sample's rationale writes its crop calls in (provenance `"calls"`; default absolute JSON)."""
    try:
        return CallStyle.of(sample.provenance.get("calls"))
    except ValueError as e:
        raise ValueError(f"sample {sample.sample_id or '?'}: its provenance 'calls' is unusable ({e})") from None


def style_mismatch(sample: Sample, style: CallStyle) -> str:
    """Why the sample's crop calls are not written in `style` ("" when they are, or it has none)."""
    has_calls = any(p.kind == MODEL and "bbox" in p.text for p in sample.rationale or [])
    mine = sample_style(sample)
    if not has_calls or mine == style:
        return ""
    return f"its crop calls are {mine.coords}/{mine.grammar}, the policy writes {style.coords}/{style.grammar}"


def restyle(sample: Sample, style: CallStyle, view: ViewConfig) -> Sample:
    """A copy whose crop calls are written in `style`, for a policy with `view` (the frame that relative
    coordinates are fractions of). A tool call's label is kept; absolute boxes are whole pixels.

    Moving to relative 0-1000 and back is exact for whole-pixel boxes when the view's sides are at most
    1000 px (the relative grid is finer than a pixel); relative -> absolute rounds to whole pixels.
    """
    src = sample_style(sample)
    if src == style or not sample.rationale:
        return (
            sample
            if src == style
            else dataclasses.replace(sample, provenance={**sample.provenance, "calls": style.to_dict()})
        )
    frame = Frame.of(image_size(sample), view)
    pieces, rationale, moved = [], sample.rationale, {}  # moved: crop index -> the crop with its box as read
    for k, p in enumerate(rationale):
        if p.kind != MODEL:
            pieces.append(moved.get(k, p))
            continue
        crop_next = k + 1 < len(rationale) and rationale[k + 1].kind == IMAGE
        calls = [c for c in find_crop_calls(p.text, frame, view.max_aspect, src) if c.box is not None]
        text, shift = p.text, 0
        for i, c in enumerate(calls):
            last_with_crop = crop_next and i == len(calls) - 1
            box = rationale[k + 1].info.box_input if last_with_crop else c.box
            if style.coords == "absolute":
                box = tuple(float(round(v)) for v in box)
            new = format_crop_call(box, style, frame, label=_label(c.raw, src))
            text = text[: c.start + shift] + new + text[c.end + shift :]
            shift += len(new) - (c.end - c.start)
            if last_with_crop:  # the crop is what the environment cuts for the text as now written
                (read,) = find_crop_calls(new, frame, view.max_aspect, style)
                crop = rationale[k + 1]
                moved[k + 1] = dataclasses.replace(crop, info=dataclasses.replace(crop.info, box_input=tuple(read.box)))
        if crop_next and not calls:
            raise ValueError(
                f"sample {sample.sample_id or '?'}: rationale text {k} is followed by a crop but holds no "
                f"{src.coords}/{src.grammar} crop call; its provenance 'calls' does not match its text"
            )
        pieces.append(dataclasses.replace(p, text=text))
    return dataclasses.replace(sample, rationale=pieces, provenance={**sample.provenance, "calls": style.to_dict()})


def _label(raw: str, style: CallStyle) -> str:
    """The label of a tool call ("" for bare JSON, or a call without one)."""
    if style.grammar != "tool":
        return ""
    try:
        args = json.loads(raw[raw.index("{") : raw.rindex("}") + 1]).get("arguments", {})
    except (ValueError, AttributeError):
        return ""
    label = args.get("label", "") if isinstance(args, dict) else ""
    return label if isinstance(label, str) else ""


def check_styles(samples, style: CallStyle) -> None:
    """ValueError naming up to three samples whose crop calls are in another style than `style`, with the fix."""
    bad = [f"{s.sample_id or '?'} ({why})" for s in samples if (why := style_mismatch(s, style))][:3]
    if bad:
        raise ValueError(
            f"samples {'; '.join(bad)}: SFT would teach another crop-call style than the policy's "
            f"{style}; convert them first: r3lab.data.restyle(sample, policy.prompt.calls, policy.view)"
        )
