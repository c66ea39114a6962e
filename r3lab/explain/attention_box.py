"""Attention vs box per crop (ConFoThinking, arXiv 2603.00165): a model can look at the right place and still write
the wrong box, or the reverse.

For every crop call with a ground-truth region: whether the peak of the main image's attention, read from the call
and the `window` tokens before it, lies in that region (the hottest cell's centre inside it, the pointing game), the
share of that attention inside the region against the region's share of the image, and whether the box the model
wrote lands on the region (IoU >= `iou`). `attention_box_counts` makes the 2x2 table: both right, attention only
(looked right, wrote wrong: ConFoThinking's case), box only, neither.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

from ..core.regions import Box, box_area, box_iou
from ..core.settings import short
from ..core.trajectory import Trajectory
from .capture import capture_attention
from .swaps import call_queries, piece_starts

if TYPE_CHECKING:
    from ..model.policy import Policy

CELLS = ("both", "attention_only", "box_only", "neither")  # the 2x2 table: attention in the region x box on it


@dataclass
class AttentionBox:
    """One crop call against its ground-truth region (boxes in the main image's model-input frame)."""

    event: int  # index into the trajectory's crop events
    region: Box  # the ground-truth region this call is about (the one its box overlaps most, else the k-th)
    peak_in_region: bool  # the most attended cell's centre lies inside the region
    mass_in_region: float  # share of the main image's attention inside the region
    region_area: float  # the region's share of the image: the mass a uniform map puts inside
    peak_chance: float  # share of cells whose centre is inside: a random peak's chance of landing there
    box_iou: float  # IoU of the written box with the region
    box_on_region: bool  # box_iou >= the threshold

    @property
    def cell(self) -> str:
        """Which cell of the 2x2 table this call falls in (`CELLS`)."""
        return CELLS[(0 if self.peak_in_region else 2) + (0 if self.box_on_region else 1)]

    def to_dict(self) -> dict:
        return {**asdict(self), "cell": self.cell}


def landmark(box: Box | None, regions: Sequence[Box], k: int) -> Box | None:
    """The region crop `k` is about: the one its box overlaps most, else the k-th (the last when there are fewer)."""
    if not regions:
        return None
    if box is not None:
        ious = [box_iou(box, g) for g in regions]
        if max(ious) > 0:
            return tuple(regions[max(range(len(regions)), key=ious.__getitem__)])
    return tuple(regions[min(k, len(regions) - 1)])


def attention_vs_box(
    policy: "Policy", trajectory: Trajectory, layers=(-1,), window: int = 8, iou: float = 0.5, sink: str = "renorm"
) -> list[AttentionBox]:
    """One `AttentionBox` per crop call of `trajectory` that wrote a box, when it has ground-truth regions
    (one teacher-forced forward; [] without regions or calls)."""
    if not 0 < iou <= 1:
        raise ValueError(f"iou = {short(iou)}: the box threshold must be in (0, 1]")
    traj = trajectory.tokenize(policy).copy()
    events = traj.crop_events()
    frame = traj.frame
    regions = [frame.to_input(b) for b in traj.gt_boxes]
    if not events or not regions:
        return []
    starts = piece_starts(traj)
    queries = {k: call_queries(policy, traj, e, starts, window) for k, e in enumerate(events)}
    todo = [k for k, e in enumerate(events) if e.call.box is not None and queries[k]]
    if not todo:
        return []
    with capture_attention(policy, layers=layers, queries=sorted({q for k in todo for q in queries[k]})) as cap:
        cap.forward(traj)
    maps = cap.maps
    cells = maps.cell_boxes(0, "input").double()
    cx, cy = (cells[:, 0] + cells[:, 2]) / 2, (cells[:, 1] + cells[:, 3]) / 2
    area = float(frame.input_w * frame.input_h)
    out = []
    for k in todo:
        box = events[k].call.box
        lm = landmark(box, regions, k)
        inside = (cx >= lm[0]) & (cx <= lm[2]) & (cy >= lm[1]) & (cy <= lm[3])
        g = maps.grid(0, queries=queries[k], sink=sink).reshape(-1)
        peak = int(g.argmax())
        b_iou = box_iou(box, lm)
        out.append(
            AttentionBox(
                k,
                tuple(float(v) for v in lm),
                bool(inside[peak]),
                maps.mass(lm, image=0, queries=queries[k], sink=sink),
                box_area(lm) / area,
                float(inside.double().mean()),
                float(b_iou),
                b_iou >= iou,
            )
        )
    return out


def attention_box_counts(per_crop: Sequence[AttentionBox | dict]) -> dict[str, float]:
    """The 2x2 counts (`attn_box_<cell>`), the two rates with their chance levels, and the mean attention share
    in the region against the region's share of the image; NaN rates when no crop had a region."""
    rows = [a.to_dict() if isinstance(a, AttentionBox) else a for a in per_crop]
    n = len(rows)

    def mean(key):
        return sum(float(r[key]) for r in rows) / n if n else math.nan

    out = {f"attn_box_{c}": sum(r["cell"] == c for r in rows) for c in CELLS}
    out.update(
        attn_box_n=n,
        attn_in_region=mean("peak_in_region"),
        attn_in_region_chance=mean("peak_chance"),
        attn_mass_in_region=mean("mass_in_region"),
        attn_mass_in_region_chance=mean("region_area"),
        box_on_region=mean("box_on_region"),
    )
    return out
