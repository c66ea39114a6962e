"""Why there? One `CropRecord` per crop event, every explanation method in it, side by side.

`explain(policy, trajectory)` explains each crop decision twice over: the box (why these coordinates: the
log-prob of the call's digit tokens) and the read / answer (what the crop contributed). Methods, one module
each: "attention" (`capture`: the main image's attention from the call and the tokens before it),
"gradient_x_input" and "integrated_gradients" (`gradients`, captum), "patching" (`patching.patch_map`:
main-image cells replaced by a blank image's), "patch_layers" (`patching.patch_layers`: the crop's tokens
replaced by a blank / coarse / another sample's crop, and the main image's patches inside the box replaced by
blank, level by level) and "logit_lens" (`lens`). A method a model or a trajectory cannot support is in the
record as not available, with the reason; `faithfulness` measures the maps against the named landmark.

Methods are a registry (`contract.METHODS`: a module whose `run(name, call)` computes one, and one entry each); a
name it does not hold is an error, never another method's result. The attention summary of each call
(`CropRecord.attention`: the share of the main image's attention inside the box and against its area, the most
attended cells, the share inside the ground-truth region, attention vs box; one teacher-forced forward for every
call and target) and, with `WhyConfig.importance`, the crop's importance (`CropRecord.importance`: the scored text's
log-prob with the crop against a blank / coarse / other-region view) are in the record too: `explain_crops`
(`crops.py`) is this record with `WhyConfig.quick()`.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from ..core.regions import box_area, box_iou
from ..core.settings import short
from ..core.trajectory import Trajectory
from . import faithfulness as faith
from .attention_box import AttentionBox
from .attention_box import landmark as _landmark
from .capture import capture_attention
from .contract import (
    METHODS,
    TARGETS,
    AttentionSummary,
    Call,
    CropRecord,  # noqa: F401
    MethodResult,
    WhyConfig,
    map_methods,
)
from .patching import painted
from .stream import Stream, target_positions
from .swaps import call_queries, importance, piece_starts, read_span, scored_trajectory

if TYPE_CHECKING:
    from ..model.policy import Policy


def explain(
    policy: "Policy",
    trajectory: Trajectory,
    config: WhyConfig | None = None,
    other: Trajectory | None = None,
    **overrides,
) -> list[CropRecord]:
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
    stream, blank, stream_error = None, None, ""
    if set(cfg.methods) - {"attention"} or cfg.faithfulness:  # attention alone needs no residual stream
        try:
            stream = Stream.of(policy, traj)
            blank = Stream.of(policy, painted(traj, None))
        except NotImplementedError as e:
            stream_error = str(e)
    grid, cell = _geometry(policy, traj)
    scored, answer = scored_trajectory(policy, traj, cfg.answer_from)
    records, positions = [], []
    for k, ev in enumerate(traj.events):
        box = _clip(ev.call.box, frame)
        lm = _landmark(box, gts, k)
        rec = CropRecord(
            sample_id=traj.sample_id,
            family=traj.family,
            event=k,
            ok=ev.ok,
            box=box,
            landmark=lm,
            gt_iou=box_iou(box, lm) if box is not None and lm is not None else None,
            needed=(traj.family != "control") if traj.family else None,
            grid=grid,
            cell=cell,
            input_size=tuple(frame.input_size),
            answer=answer,
            answers=list(traj.answers),
            piece=ev.piece,
            coords=traj.calls.coords,
            box_written=None if box is None else traj.calls.written(box, frame),
        )
        if lm is not None:
            rec.gt_index = next(i for i, g in enumerate(gts) if tuple(g) == lm)
        if box is not None:
            rec.area_frac = box_area(box) / (frame.input_w * frame.input_h)
        if ev.ok:
            rec.box_orig = tuple(traj.pieces[ev.image_piece].info.box_orig or ()) or None
            if (span := read_span(traj, ev)) is not None:
                rec.read = traj.pieces[span[0]].text[: span[1]]
        pos = {t: target_positions(policy, traj, ev, t) for t in TARGETS}
        pos["call"] = call_queries(policy, traj, ev, piece_starts(traj), cfg.window)
        rec.n_tokens = {t: len(pos[t]) for t in TARGETS}
        if lm is None:
            rec.notes.append("no ground-truth region: the pointing game is not available")
        records.append(rec)
        positions.append(pos)
    if "attention" in cfg.methods:
        _attention(policy, traj, records, positions, gts, cfg)
    for rec, ev, pos in zip(records, traj.events, positions):
        call = Call(policy, traj, stream, blank, ev, rec.event, pos, cfg, other)
        for m in cfg.methods:
            if m == "attention":
                continue
            t0 = time.perf_counter()
            for r in run_method(m, call, stream_error):
                r.seconds = time.perf_counter() - t0
                rec.methods.setdefault(m, {})[r.target or "all"] = r
        if cfg.faithfulness and stream is not None:
            _faithfulness(rec, stream, blank, pos[cfg.faithfulness_target], cfg)
    importance(policy, scored, records, cfg.importance, cfg.importance_target)
    return records


def _geometry(policy, traj) -> tuple[tuple[int, int], int]:
    """(rows, cols) of the main image's merged cells and a cell's side in input pixels ((0, 0), 0: not one token per
    cell, SmolVLM's tiles)."""
    if policy.position_dims != 3:
        return (0, 0), 0
    t, h, w = traj.main.info.grid_thw
    m = policy.merge_size
    return (h // m, w // m), policy.patch_size * m


def _clip(box, frame):
    if box is None:
        return None
    W, H = frame.input_size
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(W), box[2]), min(float(H), box[3]))


# -- methods -----------------------------------------------------------------------------------------
def _na(method, target, reason) -> MethodResult:
    return MethodResult(method, target, available=False, reason=reason)


def run_method(name: str, call: Call, unavailable: str = "") -> list[MethodResult]:
    """Method `name` of the registry (`contract.METHODS`) on one crop call: its module's `run`, or each result
    "not available" with the reason where the model gave no residual stream. An unregistered name is a ValueError."""
    if name not in METHODS or name == "attention":
        raise ValueError(
            f"no per-call explanation method {short(name)}; registered: "
            f"{[m for m in METHODS if m != 'attention']} (a new one: its module's run(name, call) and an "
            "entry in r3lab.explain.contract.METHODS)"
        )
    spec = METHODS[name]
    if call.stream is None:
        targets = {"each": list(call.config.targets), "box": ["box"], "none": [None]}[spec.targets]
        return [_na(name, t, unavailable) for t in targets]
    return importlib.import_module(spec.module, __package__).run(name, call)


def _attention(policy, traj, records, positions, gts, cfg) -> None:
    """The main image's attention, one forward for every call and target: from the tokens that ask, the call and
    the `window` tokens before it (target "box", and the summary: mass in the box, top cells, mass in the landmark,
    attention vs box), or from the target's own tokens ("read" / "answer")."""
    asks = {"box": "call", "read": "read", "answer": "answer"}
    wanted = [q for pos in positions for t in ("box", *cfg.targets) for q in pos[asks[t]]]
    t0 = time.perf_counter()
    try:
        with capture_attention(
            policy, layers=cfg.attention_layers, heads=cfg.heads, queries=sorted(set(wanted)) or "last"
        ) as cap:
            cap.forward(traj)
    except ValueError as e:  # e.g. layers that are linear attention (Qwen3.5's Gated DeltaNet): no matrix
        for rec in records:
            rec.methods["attention"] = {t: _na("attention", t, str(e)) for t in cfg.targets}
        return
    maps = cap.maps
    agg = dict(sink=cfg.sink)
    for rec, pos in zip(records, positions):
        for t in cfg.targets:
            q = pos[asks[t]]
            rec.methods.setdefault("attention", {})[t] = (
                MethodResult(
                    "attention",
                    t,
                    map=maps.grid(0, queries=q, **agg).tolist(),
                    data={"layers": list(maps.layers), "queries": len(q)},
                    seconds=time.perf_counter() - t0,
                )
                if q
                else _na("attention", t, f"no {t} tokens to take the attention of")
            )
        q = pos["call"]
        if rec.box is None or not q:
            continue
        mass = maps.mass(rec.box, image=0, queries=q, **agg)
        a = rec.attention = AttentionSummary(
            mass, mass / rec.area_frac if rec.area_frac else None, maps.top_regions(0, k=cfg.top_k, queries=q, **agg)
        )
        if rec.landmark is None:
            continue
        a.gt_mass = maps.mass(rec.landmark, image=0, queries=q, **agg)
        top = a.top_regions[0]["box"] if a.top_regions else None
        a.top_in_gt = top is not None and any(box_iou(top, g) > 0 for g in gts)
        cells = maps.cell_boxes(0, "input").double()
        cx, cy = (cells[:, 0] + cells[:, 2]) / 2, (cells[:, 1] + cells[:, 3]) / 2
        lm = rec.landmark
        inside = (cx >= lm[0]) & (cx <= lm[2]) & (cy >= lm[1]) & (cy <= lm[3])
        peak = int(maps.grid(0, queries=q, **agg).reshape(-1).argmax())
        W, H = rec.input_size
        a.vs_box = AttentionBox(
            rec.event,
            lm,
            bool(inside[peak]),
            a.gt_mass,
            box_area(lm) / (W * H),
            float(inside.double().mean()),
            float(rec.gt_iou),
            rec.gt_iou >= cfg.iou,
        ).to_dict()


def _faithfulness(rec: CropRecord, stream: Stream, blank: Stream, positions: Sequence[int], cfg: WhyConfig) -> None:
    t = cfg.faithfulness_target
    if not positions:
        rec.notes.append(f"no {t} tokens: faithfulness not measured")
        return
    maps = {m: rec.map(m, t) for m in map_methods() if rec.map(m, t) is not None}
    maps["random"] = faith.random_map(stream.grid, f"{rec.sample_id}/{rec.event}", cfg.seed)
    for name, mp in maps.items():
        c = faith.curves(stream, blank, mp, positions, cfg.curve_steps, cfg.chunk)
        if rec.landmark is None:
            point = None
        elif name == "random":
            point = faith.chance_pointing(stream.grid, stream.cell, rec.landmark)
        else:
            point = float(faith.pointing_game(mp, rec.landmark, stream.cell))
        rec.faithfulness[name] = {
            "pointing_game": point,
            "deletion_auc": c["deletion_auc"],
            "insertion_auc": c["insertion_auc"],
            "deletion": c["deletion"],
            "insertion": c["insertion"],
        }
