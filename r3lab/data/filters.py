"""VLIR quality filters (layout, region validity, non-redundancy, coherence), checked against ground truth.

`filter_samples` keeps the samples that pass every filter and reports each removed one with the
reason; `corrupt` breaks a good sample in one way a filter must catch (for lessons and tests).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterable

from tqdm.auto import tqdm

from ..core.crop_calls import TOOL_CLOSE, find_crop_calls, format_crop_call
from ..core.env import progress_disabled
from ..core.regions import Frame, ViewConfig, box_iou
from ..core.settings import check_ranges, short
from ..core.trajectory import IMAGE, MODEL, Piece, crop_piece
from .call_styles import sample_style
from .sample import Sample
from .vlir import image_size

EVIDENCE = {"yes": ["same", "yes"], "no": ["different", "not", "no"]}  # conclusion words that support yes / no


@dataclass
class FilterConfig:
    """Thresholds of the VLIR quality filters (the paper's, made concrete against ground truth)."""

    max_iou: float = 0.5
    """two crops of one sample overlapping more than this are redundant"""
    max_area: float = 0.5
    """a crop covering more than this fraction of the image is not a closer look"""
    require_conclusion: bool = True
    """the reasoning after the last crop must state the answer"""

    def __post_init__(self):
        check_ranges(self, floats=dict(max_iou=(0.0, 1.0), max_area=(0.0, 1.0)), open_low=("max_area",))


FILTERS = ("layout", "region_validity", "non_redundancy", "coherence")


@dataclass
class FilterReport:
    """What each filter removed (sample id and reason); a sample counts under the first filter it fails."""

    total: int = 0
    kept: int = 0
    removed: dict = field(default_factory=lambda: {f: [] for f in FILTERS})  # filter -> [(sample_id, reason)]
    unchecked: dict = field(default_factory=lambda: {f: 0 for f in FILTERS})  # no ground truth to check against

    def removed_ids(self, name: str | None = None) -> list[str]:
        return [sid for f in ([name] if name else FILTERS) for sid, _ in self.removed[f]]

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "kept": self.kept,
            "unchecked": dict(self.unchecked),
            "removed": {k: [list(x) for x in v] for k, v in self.removed.items()},
        }

    def __str__(self) -> str:
        lines = [f"VLIR filters: kept {self.kept} of {self.total}"]
        for f in FILTERS:
            r = self.removed[f]
            extra = f", {self.unchecked[f]} unchecked (no ground truth)" if self.unchecked[f] else ""
            lines.append(f"  {f:<16} removed {len(r):>5}{extra}")
            lines += [f"      {sid}: {why}" for sid, why in r[:5]]
            lines += [f"      ... {len(r) - 5} more"] if len(r) > 5 else []
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def check_sample(
    sample: Sample, view: ViewConfig | None = None, cfg: FilterConfig | None = None
) -> tuple[str, str] | None:
    """The first filter `sample` fails and why, or None when it passes them all."""
    return next(
        (
            (n, why)
            for n, why in _checks(sample, view or ViewConfig(), cfg or FilterConfig())
            if why and why is not _UNCHECKED
        ),
        None,
    )


def _checks(sample, view, cfg):
    """(filter, reason) for each filter up to the first failure; reason None = pass, _UNCHECKED = no truth."""
    for name, check in (
        ("layout", _layout),
        ("region_validity", _validity),
        ("non_redundancy", _redundancy),
        ("coherence", _coherence),
    ):
        why = check(sample, view, cfg)
        yield name, why
        if why and why is not _UNCHECKED:
            return


def filter_samples(
    samples: Iterable[Sample],
    view: ViewConfig | None = None,
    cfg: FilterConfig | None = None,
    progress: bool | None = None,
) -> tuple[list[Sample], FilterReport]:
    """Keep the samples that pass every filter; the report names each removed one and why."""
    view, cfg = view or ViewConfig(), cfg or FilterConfig()
    kept, rep = [], FilterReport()
    for s in tqdm(list(samples), desc="filter VLIR", disable=progress_disabled(progress)):
        rep.total += 1
        verdict = None
        for name, why in _checks(s, view, cfg):
            if why is _UNCHECKED:
                rep.unchecked[name] += 1
            elif why:
                verdict = (name, why)
        if verdict:
            rep.removed[verdict[0]].append((s.sample_id, verdict[1]))
        else:
            kept.append(s)
    rep.kept = len(kept)
    return kept, rep


_UNCHECKED = "unchecked"


def _crops(sample: Sample) -> list:
    return [p.info.box_input for p in sample.rationale or [] if p.kind == IMAGE]


def _layout(sample, view, cfg):
    pieces = sample.rationale
    if not pieces:
        return "no reference rationale"
    if pieces[0].kind != MODEL or not pieces[0].text.startswith("<think>"):
        return "the rationale must start with a model_text piece beginning with <think>"
    if pieces[-1].kind != MODEL or not pieces[-1].text.endswith("</answer><|im_end|>"):
        return "the rationale must end with a model_text piece ending with </answer><|im_end|>"
    frame = Frame.of(image_size(sample), view)
    built = sample.provenance.get("input_size")
    if built and _crops(sample) and list(built) != list(frame.input_size):
        return f"crop boxes are in a {built[0]}x{built[1]} input frame, this view gives {frame.input_w}x{frame.input_h}"
    style = sample_style(sample)  # restyled samples write Qwen3-VL's tool call or 0-1000 numbers
    for k, p in enumerate(pieces):
        if p.kind == IMAGE:
            prev = pieces[k - 1]
            if prev.kind != MODEL or not prev.text.endswith("}" if style.grammar == "json" else TOOL_CLOSE):
                return f"crop {k} does not follow a model_text piece ending with a crop call"
            call = find_crop_calls(prev.text, frame, view.max_aspect, style)[-1:]
            if not call or not call[0].ok or call[0].end != len(prev.text):
                return f"piece {k - 1} does not end with a valid crop call ({call[0].message if call else 'none'})"
            if tuple(call[0].box) != tuple(float(v) for v in p.info.box_input):
                return f"crop {k} box {list(p.info.box_input)} differs from its call {list(call[0].box)}"
        elif p.kind != MODEL:
            return f"piece {k} is {p.kind}; a rationale holds only model_text and crop images"
    if sample.regions and len(sample.regions) != len(_crops(sample)):
        return f"{len(_crops(sample))} crops but {len(sample.regions)} ground-truth regions"
    return None


def _validity(sample, view, cfg):
    truth = sample.details or sample.regions
    crops = _crops(sample)
    if not crops:
        return None
    if not truth:
        return _UNCHECKED
    frame = Frame.of(image_size(sample), view)
    for k, (box, target) in enumerate(zip(crops, truth)):
        x1, y1, x2, y2 = frame.to_orig(box)
        if not (x1 <= target[0] and y1 <= target[1] and x2 + 1 >= target[2] and y2 + 1 >= target[3]):
            what = "detail" if sample.details else "region"
            return f"crop {k} (original pixels {[x1, y1, x2 + 1, y2 + 1]}) misses its {what} {[int(v) for v in target]}"
    return None


def _redundancy(sample, view, cfg):
    crops = _crops(sample)
    frame = Frame.of(image_size(sample), view)
    for k, b in enumerate(crops):
        area = (b[2] - b[0]) * (b[3] - b[1]) / (frame.input_w * frame.input_h)
        if area > cfg.max_area:
            return f"crop {k} covers {area:.0%} of the image (max_area {cfg.max_area:.0%})"
        for j in range(k):
            iou = box_iou(crops[j], b)
            if iou > cfg.max_iou:
                return f"crops {j} and {k} overlap with IoU {iou:.2f} (max_iou {cfg.max_iou})"
    return None


def _coherence(sample, view, cfg):
    text = "".join(p.text for p in sample.rationale if p.kind == MODEL)
    found = re.findall(r"<answer>(.*?)</answer>", text, re.S)
    accepted = {_norm(a) for a in sample.answers}
    if not found or _norm(found[-1]) not in accepted:
        return f"the rationale answers {short(found[-1] if found else None)}, the sample's answers are {sample.answers}"
    if cfg.require_conclusion:
        last = max((k for k, p in enumerate(sample.rationale) if p.kind == IMAGE), default=-1)
        tail = "".join(p.text for p in sample.rationale[last + 1 :] if p.kind == MODEL)
        conclusion = _norm(re.split(r"</think>|<answer>", tail)[0].replace("<think>", ""))
        words = {w for a in sample.answers for w in [_norm(a), *EVIDENCE.get(_norm(a), [])]}
        if not any(re.search(rf"\b{re.escape(w)}\b", conclusion) for w in words if w):
            return f"the conclusion {short(conclusion)} does not state the answer {short(sample.answer)}"
    return None


CORRUPTIONS = ("miss", "repeat", "whole", "contradict", "nothink")


def corrupt(sample: Sample, how: str) -> Sample:
    """A copy of a one-or-more-crop `sample` broken in one way a filter must catch (lessons, tests).

    miss: the first crop moved off its region · repeat: the first crop asked twice · whole: a crop of
    the whole image · contradict: the conclusion states another answer · nothink: no <think>.
    """
    if how not in CORRUPTIONS:
        raise ValueError(f"how must be one of {CORRUPTIONS}, got {short(how)}")
    s = dataclasses.replace(
        sample,
        sample_id=f"{sample.sample_id}-{how}",
        rationale=[
            dataclasses.replace(p, info=dataclasses.replace(p.info) if p.info else None) for p in sample.rationale
        ],
    )
    pieces, frame = s.rationale, Frame.of(image_size(s), ViewConfig(**s.provenance.get("view", {})))
    k = next((i for i, p in enumerate(pieces) if p.kind == IMAGE), None)
    if k is None and how in ("miss", "repeat", "whole"):
        raise ValueError(f"sample {sample.sample_id} has no crop to corrupt with {short(how)}")
    if how in ("miss", "whole"):
        b = pieces[k].info.box_input
        w, h = b[2] - b[0], b[3] - b[1]
        W, H = frame.input_w, frame.input_h
        far = (0, 0, w, h) if b[0] > W / 2 else (W - w, H - h, W, H)
        box = far if how == "miss" else (0, 0, frame.input_w, frame.input_h)
        call = find_crop_calls(pieces[k - 1].text)[-1]
        pieces[k - 1] = Piece(MODEL, pieces[k - 1].text[: call.start] + format_crop_call(box), tag=pieces[k - 1].tag)
        pieces[k] = crop_piece(box, (frame.orig_w, frame.orig_h))
    elif how == "repeat":
        again = " Once more. " + format_crop_call(pieces[k].info.box_input)
        pieces[k + 1 : k + 1] = [
            Piece(MODEL, again, tag="reasoning"),
            crop_piece(pieces[k].info.box_input, (frame.orig_w, frame.orig_h)),
        ]
        s.regions, s.details = [s.regions[0], *s.regions], [s.details[0], *s.details] if s.details else []
    elif how == "contradict":
        other = next(a for a in ("purple", "seven", "hexagon") if _norm(a) not in {_norm(x) for x in s.answers})
        last = pieces[-1].text
        head, _, tail = last.partition("</think>")
        start = "<think>" if last.startswith("<think>") else ""
        pieces[-1] = Piece(MODEL, start + " It is " + other + "." + _ + tail if _ else last, tag="answer")
    else:
        pieces[0] = Piece(MODEL, pieces[0].text.replace("<think>", "", 1), tag=pieces[0].tag)
    return s


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", str(s).lower()).split())
