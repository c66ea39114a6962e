"""Why there? One `CropRecord` per crop event, every explanation method in it, side by side.

`explain(policy, trajectory)` explains each crop decision twice over: the box (why these coordinates: the
log-prob of the call's digit tokens) and the read / answer (what the crop contributed). Methods, one module
each: "attention" (`capture`: the main image's attention from the call and the tokens before it),
"gradient_x_input" and "integrated_gradients" (`gradients`, captum), "patching" (`patching.patch_map`:
main-image cells replaced by a blank image's), "patch_layers" (`patching.patch_layers`: the crop's tokens
replaced by a blank / coarse / another sample's crop, and the main image's patches inside the box replaced by
blank, level by level) and "logit_lens" (`lens`). A method a model or a trajectory cannot support is in the
record as not available, with the reason; `faithfulness` measures the maps against the named landmark.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import torch
from PIL import Image, ImageDraw

from ..core.regions import Box, box_iou
from ..core.trajectory import IMAGE, Piece, Trajectory
from . import faithfulness as faith
from .swaps import call_queries, counterfactual_trajectory, piece_starts
from .gradients import GRADIENT_METHODS, attribute, captum_missing
from .lens import logit_lens
from .patching import patch_layers, patch_map
from .stream import TARGETS, Stream, target_positions

if TYPE_CHECKING:
    from ..model.policy import Policy

MAP_METHODS = ("attention", "gradient_x_input", "integrated_gradients", "patching")
METHODS = MAP_METHODS + ("patch_layers", "logit_lens")
SWAPS = ("blank", "coarse", "other")
BLANK = (128, 128, 128)  # the blank image's grey, as `crops.counterfactual_trajectory` paints it


def names(text) -> tuple:
    """"a,b" (a command line) or a sequence -> a tuple of names."""
    return tuple(x.strip() for x in text.split(",") if x.strip()) if isinstance(text, str) else tuple(text)


_LIST = {"type": names, "metavar": "A,B"}  # CLI: comma-separated names


@dataclass
class WhyConfig:
    """Which explanations `explain` computes and at what cost."""

    methods: tuple = field(default=METHODS, metadata=_LIST)  # any of METHODS
    targets: tuple = field(default=("box", "answer"), metadata=_LIST)  # what the maps explain: "box" (the call's digits) | "read" | "answer"
    steps: int = 16  # integrated gradients: integration points
    chunk: int = 8  # rows per batched pass (integrated gradients' internal batch, patching, curves)
    recompute: bool = False  # gradients: recompute each decoder layer in backward (peak: one layer's activations, not all; ~1.4x the time)
    block: int = 1  # patching map: cells per block side (1: every cell patched alone)
    attention_layers: object = (-1,)  # text layers whose attention the "attention" map averages
    window: int = 8  # attention: tokens before the call that count as asking "where?" (the call's own too)
    swaps: tuple = field(default=SWAPS, metadata=_LIST)  # patch_layers: what replaces the crop ("blank" | "coarse" | "other": another sample's crop)
    faithfulness: bool = True  # measure the maps (pointing game, deletion / insertion, random baseline)
    faithfulness_target: str = "box"  # the target the curves score
    curve_steps: int = 8  # deletion / insertion: fractions 0, 1/steps, ..., 1
    seed: int = 0  # random baseline maps

    def __post_init__(self):
        self.methods, self.targets, self.swaps = names(self.methods), names(self.targets), names(self.swaps)
        if bad := [m for m in self.methods if m not in METHODS]:
            raise ValueError(f"unknown explanation method(s) {bad}; choose from {list(METHODS)}")
        if bad := [t for t in (*self.targets, self.faithfulness_target) if t not in TARGETS]:
            raise ValueError(f"unknown target(s) {bad}; choose from {list(TARGETS)}")
        if bad := [s for s in self.swaps if s not in SWAPS]:
            raise ValueError(f"unknown swap(s) {bad}; choose from {list(SWAPS)}")
        for k in ("steps", "chunk", "block", "curve_steps"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"WhyConfig.{k} = {getattr(self, k)} must be >= 1")
        if self.window < 0:
            raise ValueError(f"WhyConfig.window = {self.window} must be >= 0")


@dataclass
class MethodResult:
    """One method's explanation of one target of one crop decision."""

    method: str
    target: str | None  # "box" | "read" | "answer"; None for results about no single target (patch_layers)
    available: bool = True
    reason: str = ""  # why not available
    map: list | None = None  # (rows, cols) over the main image's merged cells (map methods)
    data: dict = field(default_factory=dict)  # method-specific numbers (patching levels, lens ranks ...)
    seconds: float = 0.0


@dataclass
class CropRecord:
    """One crop decision and its explanations. Boxes are in the main image's model-input frame."""

    sample_id: str
    family: str
    event: int  # index into the trajectory's crop events
    ok: bool  # the environment accepted the call
    box: Box | None  # the box as called
    landmark: Box | None  # the named landmark's ground-truth region (None: the data has none)
    gt_iou: float | None  # IoU of the box with that region
    needed: bool | None  # False for the control family (answerable without a crop)
    grid: tuple  # (rows, cols) of the main image's merged cells
    cell: int  # a cell's side in model-input pixels
    input_size: tuple  # (w, h) of the main image at the model's input
    answer: str | None  # what the trajectory answered
    answers: list = field(default_factory=list)  # accepted answers
    n_tokens: dict = field(default_factory=dict)  # target -> number of scored tokens
    methods: dict = field(default_factory=dict)  # method -> {target | "all": MethodResult}
    faithfulness: dict = field(default_factory=dict)  # map method (and "random") -> {pointing_game, ...}
    notes: list = field(default_factory=list)  # what could not be computed and why

    def result(self, method: str, target: str | None = "box") -> MethodResult | None:
        return self.methods.get(method, {}).get(target or "all")

    def map(self, method: str, target: str = "box") -> torch.Tensor | None:
        r = self.result(method, target)
        return torch.tensor(r.map) if r is not None and r.map is not None else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CropRecord":
        d = dict(d)
        d["methods"] = {m: {t: MethodResult(**r) for t, r in v.items()} for m, v in d.get("methods", {}).items()}
        for k in ("box", "landmark", "grid", "input_size"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


def explain(policy: "Policy", trajectory: Trajectory, config: WhyConfig | None = None, other: Trajectory | None = None,
            **overrides) -> list[CropRecord]:
    """One `CropRecord` per crop event of `trajectory` ([] when it made no crop call).

    other: a trajectory of another sample whose first crop is the "other" swap of patch_layers.
    """
    cfg = replace(config or WhyConfig(), **overrides) if overrides else (config or WhyConfig())
    traj = trajectory.tokenize(policy).copy()
    traj.events = traj.crop_events()
    if not traj.events:
        return []
    frame = traj.frame
    gts = [frame.to_input(b) for b in traj.gt_boxes]
    try:
        stream = Stream.of(policy, traj)
        blank = Stream.of(policy, _painted(traj, None))
        stream_error = ""
    except NotImplementedError as e:
        stream, blank, stream_error = None, None, str(e)
    records = []
    for k, ev in enumerate(traj.events):
        box = ev.call.box
        lm = _landmark(box, gts, k)
        rows, cols = stream.grid if stream else (0, 0)
        rec = CropRecord(sample_id=traj.sample_id, family=traj.family, event=k, ok=ev.ok, box=box, landmark=lm,
                         gt_iou=box_iou(box, lm) if box is not None and lm is not None else None,
                         needed=(traj.family != "control") if traj.family else None, grid=(rows, cols),
                         cell=stream.cell if stream else 0, input_size=tuple(frame.input_size),
                         answer=traj.final_answer(), answers=list(traj.answers))
        pos = {t: target_positions(policy, traj, ev, t) for t in TARGETS}
        rec.n_tokens = {t: len(p) for t, p in pos.items()}
        if lm is None:
            rec.notes.append("no ground-truth region: the pointing game is not available")
        for m in cfg.methods:
            t0 = time.perf_counter()
            results = _run_method(m, policy, traj, stream, blank, ev, k, pos, cfg, other, stream_error)
            for r in results:
                r.seconds = time.perf_counter() - t0
                rec.methods.setdefault(m, {})[r.target or "all"] = r
        if cfg.faithfulness and stream is not None:
            _faithfulness(rec, stream, blank, pos[cfg.faithfulness_target], cfg)
        records.append(rec)
    return records


# -- methods -----------------------------------------------------------------------------------------
def _na(method, target, reason) -> MethodResult:
    return MethodResult(method, target, available=False, reason=reason)


def _run_method(m, policy, traj, stream, blank, ev, k, pos, cfg, other, stream_error) -> list[MethodResult]:
    targets = list(cfg.targets)
    if m == "attention":
        return [_attention(policy, traj, ev, t, pos, cfg) for t in targets]
    if stream is None:
        return [_na(m, t, stream_error) for t in (targets if m in MAP_METHODS else ["box"] if m == "logit_lens" else [None])]
    if m in GRADIENT_METHODS:
        if why := captum_missing():
            return [_na(m, t, why) for t in targets]
        out = []
        for t in targets:
            if not pos[t]:
                out.append(_na(m, t, f"the trajectory has no {t} tokens for this crop"))
                continue
            g = attribute(stream, pos[t], m, baseline=blank.main_embeds(), steps=cfg.steps, chunk=cfg.chunk,
                          recompute=cfg.recompute)
            out.append(MethodResult(m, t, map=g.tolist(), data={"steps": cfg.steps} if m == "integrated_gradients" else {}))
        return out
    if m == "patching":
        return [MethodResult(m, t, map=patch_map(stream, blank, pos[t], cfg.block, cfg.chunk).tolist(),
                             data={"block": cfg.block, "counterfactual": "blank"}) if pos[t]
                else _na(m, t, f"the trajectory has no {t} tokens for this crop") for t in targets]
    if m == "logit_lens":
        if not pos["box"]:
            return [_na(m, "box", "the crop call holds no digit tokens")]
        return [MethodResult(m, "box", data=logit_lens(stream, pos["box"]))]
    return [_patch_layers(policy, traj, stream, ev, k, pos, cfg, other)]


def _attention(policy, traj, ev, target, pos, cfg) -> MethodResult:
    """The main image's attention from the tokens that ask: the call and the `window` tokens before it ("box"),
    or the target's own tokens ("read" / "answer")."""
    from .capture import capture_attention
    q = call_queries(policy, traj, ev, piece_starts(traj), cfg.window) if target == "box" else pos[target]
    if not q:
        return _na("attention", target, f"no {target} tokens to take the attention of")
    try:
        with capture_attention(policy, layers=cfg.attention_layers, queries=q) as cap:
            cap.forward(traj)
    except ValueError as e:  # e.g. layers that are linear attention (Qwen3.5's Gated DeltaNet): no matrix
        return _na("attention", target, str(e))
    g = cap.maps.grid(0, queries=q, sink="renorm")
    return MethodResult("attention", target, map=g.tolist(), data={"layers": list(cap.maps.layers), "queries": len(q)})


def _patch_layers(policy, traj, stream, ev, k, pos, cfg, other) -> MethodResult:
    """The crop's tokens swapped (effect on read and answer) and the main image inside the box painted blank
    (effect on the box and the answer), level by level."""
    data, notes = {}, []
    if ev.ok:
        crop_mask = torch.zeros(stream.length, dtype=torch.bool)
        a = sum(len(p.ids) for p in traj.pieces[: ev.image_piece])
        ids = traj.pieces[ev.image_piece].ids
        crop_mask[[a + i for i, t in enumerate(ids) if t == policy.image_token_id]] = True
        for s in cfg.swaps:
            try:
                image = _other_crop(other) if s == "other" else None
                cf = counterfactual_trajectory(policy, traj, k, "blank" if s == "other" else s, image=image)
            except ValueError as e:
                notes.append(f"swap {s}: {e}")
                continue
            targets = {t: pos[t] for t in ("read", "answer") if pos[t]}
            if targets:
                data[f"crop:{s}"] = patch_layers(stream, Stream.of(policy, cf), crop_mask, targets, cfg.chunk)
    else:
        notes.append("the call was refused: no crop to patch")
    if ev.call.box is not None:
        painted = Stream.of(policy, _painted(traj, ev.call.box))
        cells = _cells_in(stream, ev.call.box)
        targets = {t: pos[t] for t in ("box", "answer") if pos[t]}
        if cells.any() and targets:
            data["region:blank"] = patch_layers(stream, painted, stream.main_mask(cells[None])[0], targets, cfg.chunk)
    if not data:
        return _na("patch_layers", None, "; ".join(notes) or "nothing to patch")
    return MethodResult("patch_layers", None, data={**data, "notes": notes})


def _other_crop(other: Trajectory | None) -> Image.Image:
    if other is None or not other.crops:
        raise ValueError("no other sample's crop was given (explain(..., other=trajectory with a crop))")
    c = other.crops[0]
    return c.image


def _cells_in(stream: Stream, box: Box) -> torch.Tensor:
    """(n,) the main image's cells whose centre lies inside `box`."""
    xy = faith.cell_centres(stream.grid, stream.cell)
    return (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[3])


def _painted(traj: Trajectory, box: Box | None) -> Trajectory:
    """A copy whose main image is blank inside `box` (input frame; None: everywhere). Same size, same tokens."""
    new = traj.copy()
    i = next(j for j, p in enumerate(new.pieces) if p.kind == IMAGE and p.info.role == "main")
    old = new.pieces[i]
    im = old.image.copy()
    if box is None:
        im.paste(BLANK, (0, 0, *im.size))
    else:
        x1, y1, x2, y2 = traj.frame.to_orig(box)
        ImageDraw.Draw(im).rectangle((x1, y1, x2, y2), fill=BLANK)
    new.pieces[i] = Piece(IMAGE, image=im, info=replace(old.info), ids=old.ids, tag=old.tag)
    return new


def _landmark(box: Box | None, gts: list[Box], k: int) -> Box | None:
    """The named landmark of crop `k`: the ground-truth region the box overlaps most, else the k-th region."""
    if not gts:
        return None
    if box is not None:
        ious = [box_iou(box, g) for g in gts]
        if max(ious) > 0:
            return tuple(gts[max(range(len(gts)), key=ious.__getitem__)])
    return tuple(gts[min(k, len(gts) - 1)])


def _faithfulness(rec: CropRecord, stream: Stream, blank: Stream, positions: Sequence[int], cfg: WhyConfig) -> None:
    t = cfg.faithfulness_target
    if not positions:
        rec.notes.append(f"no {t} tokens: faithfulness not measured")
        return
    maps = {m: rec.map(m, t) for m in MAP_METHODS if rec.map(m, t) is not None}
    maps["random"] = faith.random_map(stream.grid, f"{rec.sample_id}/{rec.event}", cfg.seed)
    for name, mp in maps.items():
        c = faith.curves(stream, blank, mp, positions, cfg.curve_steps, cfg.chunk)
        if rec.landmark is None:
            point = None
        elif name == "random":
            point = faith.chance_pointing(stream.grid, stream.cell, rec.landmark)
        else:
            point = float(faith.pointing_game(mp, rec.landmark, stream.cell))
        rec.faithfulness[name] = {"pointing_game": point, "deletion_auc": c["deletion_auc"],
                                  "insertion_auc": c["insertion_auc"], "deletion": c["deletion"],
                                  "insertion": c["insertion"]}


def mean_effects(records: Sequence[CropRecord], key: str = "crop:blank", target: str = "read") -> dict:
    """patch_layers' effect on `target` averaged over the records that have it, level by level:
    {"levels": [...], "effect": [...], "n": records}; `key`: "crop:blank" | "crop:coarse" | "crop:other" |
    "region:blank"."""
    rows = [r.result("patch_layers", None) for r in records]
    got = [x.data[key] for x in rows if x is not None and x.available and target in x.data.get(key, {}).get("effect", {})]
    if not got:
        return {"levels": [], "effect": [], "n": 0}
    eff = torch.tensor([g["effect"][target] for g in got]).mean(0)
    return {"levels": got[0]["levels"], "effect": eff.tolist(), "n": len(got)}


def lens_summary(records: Sequence[CropRecord]) -> dict:
    """The logit lens over every box digit: how many became the top prediction for good ("settled"), at which
    layer on average, and the decoder's depth."""
    rows = [r.result("logit_lens", "box") for r in records]
    settled = [s for x in rows if x is not None and x.available for s in x.data["settled"]]
    done = [s for s in settled if s is not None]
    depth = next((len(x.data["rank"][0]) for x in rows if x is not None and x.available and x.data["rank"]), 0)
    return {"digits": len(settled), "settled": len(done), "mean_layer": sum(done) / len(done) if done else None,
            "layers": depth}
