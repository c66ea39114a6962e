"""VLIR samples: reference rationales for the synthetic world, quality filters, JSONL datasets, `r3lab data build`.

A reference rationale is the interleaved trace the paper's VLIR corpus teaches (spec section 3):
`<think>` reasoning, a crop call with the ground-truth box in the main image's model-input frame,
the zoomed crop, a conclusion, `<answer>`. Crop-call boxes depend on the `ViewConfig`, so every
sample records the frame it was built for; `retarget` rewrites the boxes for another view from the
stored original-pixel regions (and refuses, with the reason, when a sample has no regions).
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from PIL import Image
from tqdm.auto import tqdm

from .env import progress_disabled
from .regions import Frame, ViewConfig, box_iou, find_crop_calls, format_crop_call
from .samples import Sample
from .trajectory import IMAGE, MODEL, ImageInfo, Piece
from .world import ALL_FAMILIES, FAMILIES, Scene, Task, TaskConfig, WorldConfig, make_task, region_input_box

FORMAT = "r3lab-vlir"
VERSION = 1
END = "</think><answer>{answer}</answer><|im_end|>"
OPEN = {"mark": ["Let me zoom in on the {obj}.", "The mark on the {obj} is too small to see here.",
                 "I need a closer look at the {obj}."],
        "dots": ["Let me zoom in on the {obj}.", "The dots on the {obj} are too small to count here.",
                 "I need a closer look at the {obj}."],
        "glyph": ["Let me zoom in on the {obj}.", "The digit on the {obj} is too small to read here.",
                  "I need a closer look at the {obj}."]}
CONCLUDE = {"colour": [" The mark is {v}.", " Now I can see it: the mark is {v}.", " It is {v}."],
            "shape": [" The mark is a {v}.", " Now I can see it: the mark is a {v}.", " It is a {v}."],
            "count": [" I count {v}.", " The count is {v}.", " I see {v}."],
            "glyph": [" The digit is {v}.", " It reads {v}.", " It is {v}."]}
COMPARE = ["Let me look at the mark on the {a} first.", "First the mark on the {a}."]
COMPARE_MID = [" It is {ca}. Now the {b}.", " This one is {ca}. Next, the {b}."]
COMPARE_END = {True: [" It is {cb}, so they are the same.", " This one is {cb} too: the same colour."],
               False: [" It is {cb}, so they are different.", " This one is {cb}: a different colour."]}
CONTROL = {"colour": ["The {shape} is large enough to see without zooming: it is {v}.",
                      "No need to zoom: the {shape} is clearly {v}."],
           "shape": ["The {colour} object is large enough to see without zooming: it is a {v}.",
                     "No need to zoom: the {colour} object is clearly a {v}."]}
EVIDENCE = {"yes": ["same", "yes"], "no": ["different", "not", "no"]}  # conclusion words that support yes / no


# -- building ----------------------------------------------------------------------------------
def task_sample(task: Task, view: ViewConfig | None = None, sample_id: str = "", provenance: dict | None = None
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
        text = rng.choice(CONTROL[task.kind]).format(shape=lm.shape, colour=lm.colour, v=answer)
        pieces = [_text("<think>" + text + end, "answer")]
    elif task.family == "compare_two":
        a, b = (lms[k].name for k in task.targets)
        ca, cb = task.seen
        pieces = [_text("<think>" + rng.choice(COMPARE).format(a=a) + " " + format_crop_call(boxes[0])),
                  _crop(boxes[0], frame),
                  _text(rng.choice(COMPARE_MID).format(ca=ca, b=b) + " " + format_crop_call(boxes[1])),
                  _crop(boxes[1], frame),
                  _text(rng.choice(COMPARE_END[ca == cb]).format(cb=cb) + end, "answer")]
    else:
        detail = {"count": "dots", "glyph": "glyph"}.get(task.kind, "mark")
        opening = rng.choice(OPEN[detail]).format(obj=lms[task.asked].name)
        pieces = [_text("<think>" + opening + " " + format_crop_call(boxes[0])), _crop(boxes[0], frame),
                  _text(rng.choice(CONCLUDE[task.kind]).format(v=task.seen[0]) + end, "answer")]
    prov = {"generator": "r3lab.world", "key": task.seed, "kind": task.kind, "seen": list(task.seen),
            "input_size": list(frame.input_size), "view": asdict(view), **(provenance or {})}
    return Sample(task.scene, task.question, list(task.answers), task.regions, pieces, task.family, sample_id,
                  prov, task.details)


def build_samples(n: int, seed: int = 0, families: Iterable[str] = FAMILIES, world: WorldConfig | None = None,
                  tasks: TaskConfig | None = None, view: ViewConfig | None = None, progress: bool | None = None
                  ) -> list[Sample]:
    """`n` samples cycling through `families` (equal shares), each a pure function of (seed, family, index)."""
    families = list(families)
    bad = [f for f in families if f not in ALL_FAMILIES]
    if bad or not families:
        raise ValueError(f"unknown task families {bad or families}; choose from {list(ALL_FAMILIES)}")
    world, tasks, view = world or WorldConfig(), tasks or TaskConfig(), view or ViewConfig()
    out = []
    for i in tqdm(range(n), desc="build VLIR", disable=_quiet(progress)):
        fam, j = families[i % len(families)], i // len(families)
        task = make_task(fam, seed, j, world, tasks)
        out.append(task_sample(task, view, f"{fam}-{seed}-{j:05d}", {"seed": seed, "index": j}))
    return out


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
        raise ValueError(f"sample {sample.sample_id}: cannot move its crop boxes to view {view}: it has "
                         f"{len(crops)} crops and {len(sample.regions)} ground-truth regions"
                         f"{' and pre-made crop pixels' if any(p.image is not None for p in crops) else ''}; "
                         "load it with the view it was built for (view=None) or rebuild it")
    boxes = iter(region_input_box(r, frame) for r in sample.regions)
    pieces = []
    for k, p in enumerate(sample.rationale):
        if p.kind == MODEL and k + 1 < len(sample.rationale) and sample.rationale[k + 1].kind == IMAGE:
            box = next(boxes)
            call = find_crop_calls(p.text)[-1]
            pieces.append(_text(p.text[:call.start] + format_crop_call(box) + p.text[call.end:], p.tag))
            pieces.append(_crop(box, frame))
        elif p.kind == MODEL:
            pieces.append(_text(p.text, p.tag))
    prov = {**sample.provenance, "input_size": list(frame.input_size), "view": asdict(view)}
    return dataclasses.replace(sample, rationale=pieces, provenance=prov)


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
    with Image.open(path) as f:
        return f.size


def _text(text: str, tag: str = "reasoning") -> Piece:
    return Piece(MODEL, text, tag=tag)


def _crop(box, frame: Frame) -> Piece:
    return Piece(IMAGE, info=ImageInfo("crop", (0, 0), (frame.orig_w, frame.orig_h), tuple(box)), tag="crop")


def _quiet(progress: bool | None) -> bool:
    return progress_disabled() if progress is None else not progress


# -- quality filters ---------------------------------------------------------------------------
@dataclass
class FilterConfig:
    """Thresholds of the VLIR quality filters (the paper's, made concrete against ground truth)."""

    max_iou: float = 0.5  # two crops of one sample overlapping more than this are redundant
    max_area: float = 0.5  # a crop covering more than this fraction of the image is not a closer look
    require_conclusion: bool = True  # the reasoning after the last crop must state the answer


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
        return {"total": self.total, "kept": self.kept, "unchecked": dict(self.unchecked),
                "removed": {k: [list(x) for x in v] for k, v in self.removed.items()}}

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


def check_sample(sample: Sample, view: ViewConfig | None = None, cfg: FilterConfig | None = None
                 ) -> tuple[str, str] | None:
    """The first filter `sample` fails and why, or None when it passes them all."""
    return next(((n, why) for n, why in _checks(sample, view or ViewConfig(), cfg or FilterConfig())
                 if why and why is not _UNCHECKED), None)


def _checks(sample, view, cfg):
    """(filter, reason) for each filter up to the first failure; reason None = pass, _UNCHECKED = no truth."""
    for name, check in (("layout", _layout), ("region_validity", _validity), ("non_redundancy", _redundancy),
                        ("coherence", _coherence)):
        why = check(sample, view, cfg)
        yield name, why
        if why and why is not _UNCHECKED:
            return


def filter_samples(samples: Iterable[Sample], view: ViewConfig | None = None, cfg: FilterConfig | None = None,
                   progress: bool | None = None) -> tuple[list[Sample], FilterReport]:
    """Keep the samples that pass every filter; the report names each removed one and why."""
    view, cfg = view or ViewConfig(), cfg or FilterConfig()
    kept, rep = [], FilterReport()
    for s in tqdm(list(samples), desc="filter VLIR", disable=_quiet(progress)):
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
    for k, p in enumerate(pieces):
        if p.kind == IMAGE:
            prev = pieces[k - 1]
            if prev.kind != MODEL or not prev.text.endswith("}"):
                return f"crop {k} does not follow a model_text piece ending with a crop call"
            call = find_crop_calls(prev.text, frame, view.max_aspect)[-1:]
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
        return f"the rationale answers {found[-1] if found else None!r}, the sample's answers are {sample.answers}"
    if cfg.require_conclusion:
        last = max((k for k, p in enumerate(sample.rationale) if p.kind == IMAGE), default=-1)
        tail = "".join(p.text for p in sample.rationale[last + 1:] if p.kind == MODEL)
        conclusion = _norm(re.split(r"</think>|<answer>", tail)[0].replace("<think>", ""))
        words = {w for a in sample.answers for w in [_norm(a), *EVIDENCE.get(_norm(a), [])]}
        if not any(re.search(rf"\b{re.escape(w)}\b", conclusion) for w in words if w):
            return f"the conclusion {conclusion!r} does not state the answer {sample.answer!r}"
    return None


CORRUPTIONS = ("miss", "repeat", "whole", "contradict", "nothink")


def corrupt(sample: Sample, how: str) -> Sample:
    """A copy of a one-or-more-crop `sample` broken in one way a filter must catch (lessons, tests).

    miss: the first crop moved off its region · repeat: the first crop asked twice · whole: a crop of
    the whole image · contradict: the conclusion states another answer · nothink: no <think>.
    """
    if how not in CORRUPTIONS:
        raise ValueError(f"how must be one of {CORRUPTIONS}, got {how!r}")
    s = dataclasses.replace(sample, sample_id=f"{sample.sample_id}-{how}", rationale=[
        dataclasses.replace(p, info=dataclasses.replace(p.info) if p.info else None) for p in sample.rationale])
    pieces, frame = s.rationale, Frame.of(image_size(s), ViewConfig(**s.provenance.get("view", {})))
    k = next((i for i, p in enumerate(pieces) if p.kind == IMAGE), None)
    if k is None and how in ("miss", "repeat", "whole"):
        raise ValueError(f"sample {sample.sample_id} has no crop to corrupt with {how!r}")
    if how in ("miss", "whole"):
        b = pieces[k].info.box_input
        w, h = b[2] - b[0], b[3] - b[1]
        W, H = frame.input_w, frame.input_h
        far = (0, 0, w, h) if b[0] > W / 2 else (W - w, H - h, W, H)
        box = far if how == "miss" else (0, 0, frame.input_w, frame.input_h)
        call = find_crop_calls(pieces[k - 1].text)[-1]
        pieces[k - 1] = _text(pieces[k - 1].text[:call.start] + format_crop_call(box), pieces[k - 1].tag)
        pieces[k] = _crop(box, frame)
    elif how == "repeat":
        again = " Once more. " + format_crop_call(pieces[k].info.box_input)
        pieces[k + 1:k + 1] = [_text(again), _crop(pieces[k].info.box_input, frame)]
        s.regions, s.details = [s.regions[0], *s.regions], [s.details[0], *s.details] if s.details else []
    elif how == "contradict":
        other = next(a for a in ("purple", "seven", "hexagon") if _norm(a) not in {_norm(x) for x in s.answers})
        last = pieces[-1].text
        head, _, tail = last.partition("</think>")
        start = "<think>" if last.startswith("<think>") else ""
        pieces[-1] = _text(start + " It is " + other + "." + _ + tail if _ else last, "answer")
    else:
        pieces[0] = _text(pieces[0].text.replace("<think>", "", 1), pieces[0].tag)
    return s


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", str(s).lower()).split())


# -- JSONL datasets ----------------------------------------------------------------------------
@dataclass
class LoadError:
    line: int
    message: str


@dataclass
class VLIRDataset:
    """Samples read from a dataset folder, its metadata, and the bad lines (errors='report')."""

    samples: list
    meta: dict
    path: Path | None = None
    errors: list = field(default_factory=list)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]

    def __iter__(self):
        return iter(self.samples)

    @property
    def view(self) -> ViewConfig:
        return ViewConfig(**self.meta.get("view", {}))

    def __repr__(self):
        return f"VLIRDataset({len(self)} samples from {self.path}, {len(self.errors)} bad lines)"


def save_dataset(samples: Iterable[Sample], out: str | os.PathLike, meta: dict | None = None, images: str = "png",
                 progress: bool | None = None) -> Path:
    """Write `out/samples.jsonl`, `out/meta.json` and PNGs under `out/images/` (relative paths).

    images: "png" writes every image; "scene" stores synthetic scenes as JSON (re-rendered on load,
    byte-identical) and writes PNGs only for non-synthetic images.
    """
    if images not in ("png", "scene"):
        raise ValueError(f"images must be 'png' or 'scene', got {images!r}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    samples = list(samples)
    stems = [file_stem(s.sample_id) for s in samples]
    if len(set(stems)) != len(stems) or not all(s.sample_id for s in samples):
        dup = next((x for x in stems if stems.count(x) > 1), "")
        raise ValueError(f"every sample needs a unique, non-empty sample_id (they name the image files); "
                         f"{dup!r} repeats")
    meta = {"format": FORMAT, "version": VERSION, "n": len(samples), **(meta or {})}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    with open(out / "samples.jsonl", "w") as f:
        for s in tqdm(samples, desc="save VLIR", disable=_quiet(progress)):
            f.write(json.dumps(sample_to_dict(s, out, images)) + "\n")
    return out


def sample_to_dict(s: Sample, root: Path, images: str = "png") -> dict:
    d = {"sample_id": s.sample_id, "family": s.family, "question": s.question, "answers": list(s.answers),
         "size": list(image_size(s)), "regions": [list(b) for b in s.regions], "details": [list(b) for b in s.details],
         "provenance": s.provenance}
    if images == "scene" and isinstance(s.image, Scene):
        d["image"], d["scene"] = None, {k: v for k, v in s.image.to_dict().items() if k != "world"}
        d["scene"]["world"] = s.image.world.to_dict()
    else:
        rel = f"images/{file_stem(s.sample_id)}.png"
        s.load_image().save(root / rel, compress_level=1)
        d["image"] = rel
    rat = []
    for k, p in enumerate(s.rationale or []):
        if p.kind == IMAGE:
            pd = {"kind": IMAGE, "box_input": list(p.info.box_input)}
            if p.image is not None:  # pre-made crop pixels (official SFT format)
                pd["image"] = f"images/{file_stem(s.sample_id)}_crop{k}.png"
                p.image.save(root / pd["image"])
            rat.append(pd)
        else:
            rat.append({"kind": p.kind, "text": p.text, "tag": p.tag})
    d["rationale"] = rat if s.rationale is not None else None
    return d


def sample_from_dict(d: dict, root: Path) -> Sample:
    if d.get("scene") is not None:
        image = Scene.from_dict(d["scene"])
    else:
        image = str(_existing(root / d["image"]))
    rationale = None
    if d.get("rationale") is not None:
        size = tuple(d["size"])
        rationale = []
        for p in d["rationale"]:
            if p["kind"] == IMAGE:
                crop = None
                if p.get("image"):
                    with Image.open(_existing(root / p["image"])) as im:
                        crop = im.convert("RGB")
                rationale.append(Piece(IMAGE, image=crop, info=ImageInfo("crop", (0, 0), size, tuple(p["box_input"])),
                                       tag="crop"))
            else:
                rationale.append(Piece(p["kind"], p["text"], tag=p.get("tag", "")))
    return Sample(image, d["question"], list(d["answers"]), [tuple(b) for b in d.get("regions", [])], rationale,
                  d.get("family", ""), d["sample_id"], dict(d.get("provenance", {})),
                  [tuple(b) for b in d.get("details", [])])


def file_stem(sample_id: str) -> str:
    """A sample id made safe as a file name (ids from other datasets may hold '/' or spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", sample_id)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    return path


def load_dataset(path: str | os.PathLike, view: ViewConfig | None = None, errors: str = "raise") -> VLIRDataset:
    """Read a dataset folder (or its samples.jsonl). A bad line raises an error naming file and line;
    with errors="report" bad lines are collected in `.errors` instead (nothing is dropped silently).

    view: when given and different from the view the dataset was built for, crop boxes are
    recomputed from the stored regions (`retarget`); samples that cannot be retargeted raise.
    """
    if errors not in ("raise", "report"):
        raise ValueError(f"errors must be 'raise' or 'report', got {errors!r}")
    path = Path(path)
    file = path / "samples.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist; build a dataset with `r3lab data build --out DIR`")
    root = file.parent
    meta = json.loads((root / "meta.json").read_text()) if (root / "meta.json").is_file() else {}
    samples, bad = [], []
    with open(file) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                if not isinstance(d, dict):
                    raise ValueError("a line must hold one JSON object")
                s = sample_from_dict(d, root)
            except FileNotFoundError as e:
                err = FileNotFoundError(f"{file}:{n}: {e}")
                if errors == "raise":
                    raise err from None
                bad.append(LoadError(n, str(err)))
                continue
            except (ValueError, KeyError, TypeError) as e:
                msg = f"{file}:{n}: bad sample line ({type(e).__name__}: {e})"
                if errors == "raise":
                    raise ValueError(msg + "; fix or delete that line, or load with errors='report'") from None
                bad.append(LoadError(n, msg))
                continue
            samples.append(s)
    if view is not None:
        samples = [retarget(s, view) for s in samples]
        meta = {**meta, "view": asdict(view)}
    return VLIRDataset(samples, meta, root, bad)


def load_samples(path: str | os.PathLike, view: ViewConfig | None = None, errors: str = "raise") -> list[Sample]:
    """Just the samples of `load_dataset(path, view, errors)` (pass `policy.view` to train a real model)."""
    return load_dataset(path, view, errors).samples


# -- CLI: r3lab data build ---------------------------------------------------------------------
def add_arguments(parser) -> None:
    from .cli import _parse_bool, add_dataclass_arguments

    parser.add_argument("--out", required=True, help="dataset folder to write (samples.jsonl, meta.json, images/)")
    parser.add_argument("--n", type=int, default=1000, help="number of samples (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES),
                        help=f"task families of {' '.join(ALL_FAMILIES)} (default: {' '.join(FAMILIES)})")
    parser.add_argument("--images", choices=["png", "scene"], default="png",
                        help="write PNGs, or scenes re-rendered on load")
    parser.add_argument("--filter", type=_parse_bool, default=True, metavar="BOOL",
                        help="run the quality filters before saving (default: true)")
    for cls in (WorldConfig, TaskConfig, ViewConfig, FilterConfig):
        add_dataclass_arguments(parser.add_argument_group(cls.__name__), cls)


def run(args) -> int:
    from .cli import dataclass_from_args

    world, tasks = dataclass_from_args(WorldConfig, args), dataclass_from_args(TaskConfig, args)
    view, fcfg = dataclass_from_args(ViewConfig, args), dataclass_from_args(FilterConfig, args)
    families = [f for x in args.families for f in x.split(",") if f]
    samples = build_samples(args.n, args.seed, families, world, tasks, view)
    report = None
    if args.filter:
        samples, report = filter_samples(samples, view, fcfg)
        print(report)
    meta = {"seed": args.seed, "families": families, "world": world.to_dict(), "tasks": tasks.to_dict(),
            "view": asdict(view), "filters": asdict(fcfg), "filter_report": report.to_dict() if report else None}
    out = save_dataset(samples, args.out, meta, images=args.images)
    print(f"wrote {len(samples)} samples to {out}")
    return 0
