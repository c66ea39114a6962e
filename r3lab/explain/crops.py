"""Why did the model crop there? One explanation record per crop decision of a Trajectory.

For each crop call: how much of the main-image attention of the tokens just before (and of) the call
fell inside the chosen box, against its share of the area; the top attended regions; the answer's
log-prob with the crop against the same trajectory whose crop is swapped for a blank view, the coarse
view the model already had, or a crop of the wrong region (counterfactual importance); IoU with the
ground-truth region; and whether a crop was needed at all (the `control` family needs none).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

from ..core.regions import Box, box_area, box_iou
from ..core.trajectory import Trajectory
from .capture import capture_attention
from .swaps import (VARIANTS, answer_logprobs, call_queries, counterfactual_trajectory, importance, piece_starts,
                    read_span, scored_trajectory, variant_image)

if TYPE_CHECKING:
    from ..model.policy import Policy


@dataclass
class ExplainConfig:
    """How crop decisions are explained."""

    layers: Sequence[int] | str = (-1,)  # text layers whose attention is read (try "all" or the middle layers)
    heads: Sequence[int] | None = None  # heads kept; None = all, averaged
    sink: str = "renorm"  # attention-sink handling, see AttentionMaps ("renorm" | "keep" | "image")
    window: int = 8  # tokens before the crop call that count as "just before the call" (the call's own tokens too)
    top_k: int = 3  # top attended cells reported per call
    variants: tuple = VARIANTS  # counterfactual views that replace the crop: "blank" | "coarse" | "wrong"
    target: str = "model"  # answer scored: "model" (what the trajectory answered) or "gt" (traj.answers[0])
    # what the importance scores: "answer" (the final <answer>) or "read" (the model's text right after the crop,
    # up to its next call: what it read there). A model whose answer copies its rationale's read shows the crop's
    # effect in the read, not in the answer (research/FINDINGS.md, reading)
    score: str = "answer"


@dataclass
class CropExplanation:
    """One crop decision, explained. Boxes are in the main image's model-input frame unless named _orig."""

    event: int  # index into traj.events
    piece: int  # model_text piece holding the call
    ok: bool  # the environment accepted the call (a crop was inserted)
    box: Box | None  # the box as called, read into the input frame (whatever frame the model wrote it in)
    box_orig: tuple | None  # the original-pixel box that was cut
    area_frac: float | None  # box area / main image area
    mass_in_box: float | None  # share of the main image's attention inside the box (tokens before the call)
    mass_outside: float | None  # 1 - mass_in_box
    concentration: float | None  # mass_in_box / area_frac: > 1 means the box got more than its share
    top_regions: list = field(default_factory=list)  # [{"box", "mass", "cell"}] most attended cells
    gt_iou: float | None = None  # best IoU of the box with a ground-truth region (input frame)
    gt_index: int | None = None  # which ground-truth region that is
    gt_mass: float | None = None  # share of attention inside that ground-truth region
    top_in_gt: bool | None = None  # the most attended cell overlaps a ground-truth region
    needed: bool | None = None  # False for the control family (answerable without cropping)
    logp: float | None = None  # log-prob of the scored text (ExplainConfig.score) with this crop
    logp_variants: dict = field(default_factory=dict)  # variant -> log-prob with the crop replaced
    importance: dict = field(default_factory=dict)  # variant -> logp - logp_variant (> 0: the crop helped)
    answer: str | None = None  # the trajectory's scored answer text
    read: str | None = None  # the model's text right after the crop, up to its next call (score="read" scores it)
    coords: str = "absolute"  # the frame the model wrote the box in: "absolute" pixels | "relative" 0-1000
    box_written: Box | None = None  # the box's numbers in that frame (what the model's text says)

    def to_dict(self) -> dict:
        return asdict(self)


def explain_crops(policy: "Policy", trajectory: Trajectory, config: ExplainConfig | None = None,
                  **overrides) -> list[CropExplanation]:
    """One `CropExplanation` per crop event of `trajectory` (refused calls get attention only)."""
    cfg = replace(config or ExplainConfig(), **overrides)
    bad = [v for v in cfg.variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"unknown counterfactual variants {bad}; choose from {VARIANTS}")
    if cfg.score not in ("answer", "read"):
        raise ValueError(f"score={cfg.score!r}: use 'answer' (the final answer) or 'read' (the text after each crop)")
    traj = trajectory.tokenize(policy).copy()
    traj.events = traj.crop_events()
    if not traj.events:
        return []
    starts = piece_starts(traj)
    queries = {k: call_queries(policy, traj, e, starts, cfg.window) for k, e in enumerate(traj.events)}
    allq = sorted({q for qs in queries.values() for q in qs})
    with capture_attention(policy, layers=cfg.layers, heads=cfg.heads, queries=allq or "last") as cap:
        cap.forward(traj)
    maps = cap.maps
    frame = traj.frame
    gts = [frame.to_input(b) for b in traj.gt_boxes]
    agg = dict(sink=cfg.sink)
    scored, answer = scored_trajectory(policy, traj, cfg.target)
    out = []
    for k, ev in enumerate(traj.events):
        box = ev.call.box if ev.call.box is not None else None
        if box is not None:
            W, H = frame.input_size
            box = (max(0.0, box[0]), max(0.0, box[1]), min(float(W), box[2]), min(float(H), box[3]))
        rec = CropExplanation(event=k, piece=ev.piece, ok=ev.ok, box=box, box_orig=None, area_frac=None,
                              mass_in_box=None, mass_outside=None, concentration=None, answer=answer,
                              needed=(traj.family != "control") if traj.family else None,
                              coords=traj.calls.coords, box_written=None if box is None else traj.calls.written(box, frame))
        if ev.ok:
            rec.box_orig = tuple(traj.pieces[ev.image_piece].info.box_orig)
            if (span := read_span(traj, ev)) is not None:
                rec.read = traj.pieces[span[0]].text[:span[1]]
        if box is not None and queries[k]:
            q = queries[k]
            rec.area_frac = box_area(box) / (frame.input_w * frame.input_h)
            rec.mass_in_box = maps.mass(box, image=0, queries=q, **agg)
            rec.mass_outside = 1.0 - rec.mass_in_box
            rec.concentration = rec.mass_in_box / rec.area_frac if rec.area_frac > 0 else None
            rec.top_regions = maps.top_regions(0, k=cfg.top_k, queries=q, **agg)
            if gts:
                ious = [box_iou(box, g) for g in gts]
                rec.gt_index = max(range(len(gts)), key=ious.__getitem__)
                rec.gt_iou = ious[rec.gt_index]
                rec.gt_mass = maps.mass(gts[rec.gt_index], image=0, queries=q, **agg)
                top = rec.top_regions[0]["box"] if rec.top_regions else None
                rec.top_in_gt = top is not None and any(box_iou(top, g) > 0 for g in gts)
        out.append(rec)
    importance(policy, scored, out, cfg.variants, cfg.score)
    return out


def disagreements(explanations: Sequence[CropExplanation], iou: float = 0.3, concentration: float = 1.0) -> list[dict]:
    """Crop decisions whose explanation disagrees with the ground truth, with the reasons."""
    out = []
    for e in explanations:
        why = []
        if e.needed is False:
            why.append("cropped although the question needs no crop (control)")
        if e.gt_iou is not None and e.gt_iou < iou:
            why.append(f"box IoU with the ground truth {e.gt_iou:.2f} < {iou}")
        if e.top_in_gt is False:
            why.append("the most attended cell is outside every ground-truth region")
        if e.concentration is not None and e.concentration < concentration:
            why.append(f"the box got less attention than its area ({e.concentration:.2f}x)")
        for v, imp in e.importance.items():
            if e.needed and imp is not None and imp <= 0:
                why.append(f"the scored text is no less likely with the {v} view (importance {imp:+.2f})")
        if why:
            out.append({"event": e.event, "reasons": why})
    return out


def explanation_table(explained: dict[str, Sequence[CropExplanation]]) -> str:
    """One line per crop decision (sample id -> its explanations): IoU with the truth, attention in the box
    and against its area, whether the top cell is in the truth, importance against each view, needed."""
    lines = [f"{'sample':22s} crop  IoU   in-box  x-area  top-in-gt  imp(blank) imp(coarse) imp(wrong) needed"]
    for sid, exps in explained.items():
        for e in exps:
            imp = {k: (f"{v:+.3f}" if v is not None else "  -  ") for k, v in e.importance.items()}
            lines.append(f"{sid:22s} {e.event + 1:4d}  {e.gt_iou or 0:.2f}  {e.mass_in_box or 0:.3f}  "
                         f"{e.concentration or 0:5.2f}  {str(e.top_in_gt):9s}  {imp.get('blank', '-'):>9s} "
                         f"{imp.get('coarse', '-'):>10s} {imp.get('wrong', '-'):>10s} {e.needed}")
    return "\n".join(lines)



__all__ = ["VARIANTS", "ExplainConfig", "CropExplanation", "explain_crops", "disagreements", "explanation_table",
           "counterfactual_trajectory", "variant_image", "answer_logprobs"]
