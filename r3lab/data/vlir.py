"""VLIR samples: reference rationales for the synthetic world, and moving their crop boxes to another view.

A reference rationale is the interleaved trace the paper's VLIR corpus teaches:
`<think>` reasoning, a crop call with the ground-truth box in the main image's model-input frame,
the zoomed crop, a conclusion, `<answer>`. Crop-call boxes depend on the `ViewConfig`, so every
sample records the frame it was built for; `retarget` rewrites the boxes for another view from the
stored original-pixel regions (and refuses, with the reason, when a sample has no regions).
Quality filters live in `r3lab.data.filters`, JSONL datasets in `r3lab.data.dataset`.
"""

from __future__ import annotations

import dataclasses
import operator
import random
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from PIL import Image
from tqdm.auto import tqdm

from ..core.crop_calls import CallStyle, find_crop_calls, format_crop_call
from ..core.env import progress_disabled
from ..core.regions import Frame, ViewConfig
from ..core.settings import short
from ..core.trajectory import IMAGE, MODEL, ImageInfo, Piece
from .sample import Sample, read_image
from .tasks import ALL_FAMILIES, FAMILIES, Task, TaskConfig, make_task
from .world import Scene, WorldConfig, region_input_box

END = "</think><answer>{answer}</answer><|im_end|>"
OPEN = {
    "pattern": [
        "Let me zoom in on the {obj}.",
        "The pattern on the {obj} is too fine to see here.",
        "I need a closer look at the {obj}.",
    ],
    "mark": [
        "Let me zoom in on the {obj}.",
        "The mark on the {obj} is too small to see here.",
        "I need a closer look at the {obj}.",
    ],
    "dots": [
        "Let me zoom in on the {obj}.",
        "The dots on the {obj} are too small to count here.",
        "I need a closer look at the {obj}.",
    ],
    "glyph": [
        "Let me zoom in on the {obj}.",
        "The digit on the {obj} is too small to read here.",
        "I need a closer look at the {obj}.",
    ],
}
CONCLUDE = {
    "pattern": [" The pattern is {v}.", " Now I can see it: the pattern is {v}.", " It is {v}."],
    "colour": [" The mark is {v}.", " Now I can see it: the mark is {v}.", " It is {v}."],
    "shape": [" The mark is a {v}.", " Now I can see it: the mark is a {v}.", " It is a {v}."],
    "count": [" I count {v}.", " The count is {v}.", " I see {v}."],
    "glyph": [" The digit is {v}.", " It reads {v}.", " It is {v}."],
}
COMPARE = ["Let me look at the mark on the {a} first.", "First the mark on the {a}."]
COMPARE_MID = [" It is {ca}. Now the {b}.", " This one is {ca}. Next, the {b}."]
COMPARE_END = {
    True: [" It is {cb}, so they are the same.", " This one is {cb} too: the same {what}."],
    False: [" It is {cb}, so they are different.", " This one is {cb}: a different {what}."],
}
CONTROL = {
    "side": [
        "No need to zoom: the {obj} is clearly in the {v} half.",
        "The {obj} is large enough to place without zooming: it is in the {v} half.",
    ],
    "colour": [
        "The {shape} is large enough to see without zooming: it is {v}.",
        "No need to zoom: the {shape} is clearly {v}.",
    ],
    "shape": [
        "The {colour} object is large enough to see without zooming: it is a {v}.",
        "No need to zoom: the {colour} object is clearly a {v}.",
    ],
}


# -- building ----------------------------------------------------------------------------------
def task_sample(
    task: Task, view: ViewConfig | None = None, sample_id: str = "", provenance: dict | None = None
) -> Sample:
    """A Sample with its reference rationale; the image stays a lazy `Scene`."""
    view = view or ViewConfig()
    frame = Frame.of(task.scene.size, view)
    rng = random.Random(f"r3lab-rationale:{task.seed}")
    lms = task.scene.landmarks
    boxes = [region_input_box(r, frame) for r in task.regions]
    answer = task.answers[0]
    end = END.format(answer=answer)
    if task.family == "control":
        lm = lms[task.asked]
        text = rng.choice(CONTROL[task.kind]).format(shape=lm.shape, colour=lm.colour, obj=lm.name, v=answer)
        pieces = [_text("<think>" + text + end, "answer")]
    elif task.family == "compare_two":
        a, b = (lms[k].name for k in task.targets)
        ca, cb = task.seen
        what = "pattern" if lms[task.targets[0]].detail.kind == "pattern" else "colour"
        pieces = [
            _text("<think>" + rng.choice(COMPARE).format(a=a) + " " + format_crop_call(boxes[0])),
            _crop(boxes[0], frame),
            _text(rng.choice(COMPARE_MID).format(ca=ca, b=b) + " " + format_crop_call(boxes[1])),
            _crop(boxes[1], frame),
            _text(rng.choice(COMPARE_END[ca == cb]).format(cb=cb, what=what) + end, "answer"),
        ]
    else:
        detail = {"count": "dots", "glyph": "glyph", "pattern": "pattern"}.get(task.kind, "mark")
        opening = rng.choice(OPEN[detail]).format(obj=lms[task.asked].name)
        pieces = [
            _text("<think>" + opening + " " + format_crop_call(boxes[0])),
            _crop(boxes[0], frame),
            _text(rng.choice(CONCLUDE[task.kind]).format(v=task.seen[0]) + end, "answer"),
        ]
    prov = {
        "generator": "r3lab.world",
        "key": task.seed,
        "kind": task.kind,
        "seen": list(task.seen),
        "input_size": list(frame.input_size),
        "view": asdict(view),
        **(provenance or {}),
    }
    return Sample(
        task.scene, task.question, list(task.answers), task.regions, pieces, task.family, sample_id, prov, task.details
    )


def build_samples(
    n: int,
    seed: int = 0,
    families: Iterable[str] = FAMILIES,
    world: WorldConfig | None = None,
    tasks: TaskConfig | None = None,
    view: ViewConfig | None = None,
    progress: bool | None = None,
    weights: dict[str, float] | None = None,
) -> list[Sample]:
    """`n` samples cycling through `families` (equal shares), each a pure function of (seed, family, index).

    `weights` (family -> relative weight, 1 for a family it does not name) gives the families unequal shares,
    interleaved evenly; sample j of a family is the same sample whatever the shares.
    """
    if operator.index(n) < 0:  # a str or float is a TypeError, as range() says
        raise ValueError(f"n = {n}: build_samples makes n >= 0 samples")
    families = list(families)
    bad = [f for f in families if f not in ALL_FAMILIES]
    if bad or not families:
        raise ValueError(f"unknown task families {short(bad or families)}; choose from {list(ALL_FAMILIES)}")
    world, tasks, view = world or WorldConfig(), tasks or TaskConfig(), view or ViewConfig()
    order = (
        [(fam, j) for i in range(n) for fam, j in [(families[i % len(families)], i // len(families))]]
        if not weights
        else _weighted_order(n, families, weights)
    )
    out = []
    for fam, j in tqdm(order, desc="build VLIR", disable=_quiet(progress)):
        task = make_task(fam, seed, j, world, tasks)
        out.append(task_sample(task, view, f"{fam}-{seed}-{j:05d}", {"seed": seed, "index": j}))
    return out


def _weighted_order(n: int, families: list[str], weights: dict[str, float]) -> list[tuple[str, int]]:
    """(family, index) pairs: `n` in all, shares by weight (largest remainders), spread evenly through the list."""
    if bad := sorted(set(weights) - set(families)):
        raise ValueError(f"weights name families {bad} that are not among {families}")
    w = [float(weights.get(f, 1.0)) for f in families]
    if min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"family weights must be >= 0 with a positive sum, got {dict(zip(families, w))}")
    exact = [n * x / sum(w) for x in w]
    counts = [int(e) for e in exact]
    for k in sorted(range(len(w)), key=lambda k: counts[k] - exact[k])[: n - sum(counts)]:
        counts[k] += 1
    spread = [((j + 0.5) / c, k, j) for k, c in enumerate(counts) for j in range(c)]
    return [(families[k], j) for _, k, j in sorted(spread)]


def retarget(sample: Sample, view: ViewConfig) -> Sample:
    """A copy whose crop calls and crop boxes are in `view`'s model-input frame, recomputed from `regions`.

    Raises ValueError when the sample cannot be retargeted (no ground-truth region per crop, or crops
    given as pre-made pixels as in the official SFT format).
    """
    if not sample.rationale:
        return sample
    crops = [p for p in sample.rationale if p.kind == IMAGE]
    frame = Frame.of(image_size(sample), view)
    if [int(v) for v in sample.provenance.get("input_size", [])] == list(frame.input_size):
        return sample
    if len(crops) != len(sample.regions) or any(p.image is not None for p in crops):
        raise ValueError(
            f"sample {sample.sample_id}: cannot move its crop boxes to view {view}: it has "
            f"{len(crops)} crops and {len(sample.regions)} ground-truth regions"
            f"{' and pre-made crop pixels' if any(p.image is not None for p in crops) else ''}; "
            "load it with the view it was built for (view=None) or rebuild it"
        )
    boxes = iter(region_input_box(r, frame) for r in sample.regions)
    style = CallStyle.of(sample.provenance.get("calls"))  # the calls stay in the sample's own style
    pieces = []
    for k, p in enumerate(sample.rationale):
        if p.kind == MODEL and k + 1 < len(sample.rationale) and sample.rationale[k + 1].kind == IMAGE:
            box = next(boxes)
            call = find_crop_calls(p.text, style=style)[-1]
            pieces.append(_text(p.text[: call.start] + format_crop_call(box, style, frame) + p.text[call.end :], p.tag))
            pieces.append(_crop(style.read(style.written(box, frame), frame), frame))  # what the call reads as
        elif p.kind == MODEL:
            pieces.append(_text(p.text, p.tag))
    prov = {**sample.provenance, "input_size": list(frame.input_size), "view": asdict(view)}
    return dataclasses.replace(sample, rationale=pieces, provenance=prov)


def regions_from_calls(sample: Sample) -> Sample:
    """A copy whose ground-truth regions are its rationale's own crop boxes (in original pixels), and whose
    pre-made crop pixels are dropped (cut again from the original image, as the environment would), so that
    `retarget` can move an official SFT record to another view. Samples with a region per crop keep theirs."""
    crops = [p for p in sample.rationale or [] if p.kind == IMAGE]
    if not crops:
        return sample
    regions = list(sample.regions)
    if len(regions) != len(crops):
        built = sample.provenance.get("input_size")
        if not built:
            raise ValueError(
                f"sample {sample.sample_id}: its provenance does not say which frame its crop boxes "
                "are in (input_size), so they cannot be moved to another view"
            )
        w, h = image_size(sample)
        sx, sy = w / int(built[0]), h / int(built[1])
        regions = [
            (b[0] * sx, b[1] * sy, min(w, b[2] * sx), min(h, b[3] * sy)) for b in (p.info.box_input for p in crops)
        ]
    rationale = [
        dataclasses.replace(p, image=None, info=dataclasses.replace(p.info)) if p.kind == IMAGE else p
        for p in sample.rationale
    ]
    prov = {
        **sample.provenance,
        "regions_from": sample.provenance.get("regions_from")
        or ("crop calls" if len(sample.regions) != len(crops) else "ground truth"),
    }
    return dataclasses.replace(sample, regions=regions, rationale=rationale, provenance=prov)


def view_mismatch(sample: Sample, view: ViewConfig) -> str:
    """Why the sample's crop boxes are not in `view`'s model-input frame ("" when they are, or it has none).

    The frame a sample was built for is in its provenance (`input_size`); without it, every crop box
    must at least lie inside the frame `view` gives its image.
    """
    crops = [p for p in sample.rationale or [] if p.kind == IMAGE]
    calls = any(p.kind == MODEL and "bbox" in p.text for p in sample.rationale or [])  # e.g. grounding targets
    if not crops and not calls:
        return ""
    frame = Frame.of(image_size(sample), view)
    built = sample.provenance.get("input_size")
    if built and [int(v) for v in built] != list(frame.input_size):
        return (
            f"its boxes are in a {built[0]}x{built[1]} frame, "
            f"the policy sees its image at {frame.input_w}x{frame.input_h}"
        )
    for p in crops:
        x1, y1, x2, y2 = p.info.box_input
        if x2 > frame.input_w or y2 > frame.input_h:
            return (
                f"its crop box {list(p.info.box_input)} lies outside the {frame.input_w}x{frame.input_h} frame the "
                "policy sees its image at"
            )
    return ""


def image_size(sample: Sample) -> tuple[int, int]:
    """(w, h) of the sample's original image without rendering or decoding it."""
    im = sample.image
    if isinstance(im, (Image.Image, Scene)):
        return tuple(im.size)
    if callable(im):
        return sample.load_image().size
    path = Path(im)
    if not path.is_file():
        raise FileNotFoundError(f"sample {sample.sample_id or '?'}: image file {path} does not exist")
    try:
        return read_image(path, size_only=True)
    except ValueError as e:
        raise ValueError(f"sample {sample.sample_id or '?'}: {e}") from None


def _text(text: str, tag: str = "reasoning") -> Piece:
    return Piece(MODEL, text, tag=tag)


def _crop(box, frame: Frame) -> Piece:
    return Piece(IMAGE, info=ImageInfo("crop", (0, 0), (frame.orig_w, frame.orig_h), tuple(box)), tag="crop")


def _quiet(progress: bool | None) -> bool:
    return progress_disabled() if progress is None else not progress
