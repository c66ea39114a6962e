"""Where crop boxes go wrong: each executed crop against its ground-truth region, in the model's own frame.

A mean crop IoU says how good the boxes are, not why. `box_errors(trajectories)` splits it per family into
misses (crops on the wrong region) and, for the hits, the signed and absolute error of each side in the pixels
the model writes (the main image's input frame), the written against the true size, and the IoU that perfect
integer coordinates would get (`grid_iou`: the ground truth rounded to that frame), which is the ceiling of a
model that writes whole input pixels. Works on fresh `evaluate` results and on saved `trajectories.jsonl`.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..core.regions import box_iou
from ..core.trajectory import Trajectory

SIDES = ("x1", "y1", "x2", "y2")
COLUMNS = (
    "crops",
    "crop_iou",
    "miss_rate",
    "hit_iou",
    "grid_iou",
    "abs_err",
    "size_written",
    "size_true",
    "size_corr",
    "px_per_input",
)


def crop_records(trajectories: Sequence[Trajectory]) -> list[dict]:
    """One record per executed crop of a trajectory with ground-truth regions: the best-matching region,
    the IoU (original pixels) and both boxes in the input frame."""
    out = []
    for i, t in enumerate(trajectories):
        if not isinstance(t, Trajectory):
            raise TypeError(
                f"box_errors: item {i} is a {type(t).__name__}, not a Trajectory (pass "
                "EvalResult.trajectories, or load a trajectories.jsonl with r3lab.evaluation.load_run)"
            )
        if not t.gt_boxes:
            continue
        frame = t.frame
        for piece in t.crops:
            if piece.info.box_orig is None or piece.info.box_input is None:
                continue
            got = tuple(piece.info.box_orig)
            gt = max(t.gt_boxes, key=lambda g: box_iou(g, got))
            out.append(
                {
                    "family": t.family or "?",
                    "sample_id": t.sample_id,
                    "iou": box_iou(gt, got),
                    "written": tuple(float(v) for v in piece.info.box_input),
                    "true": tuple(float(v) for v in frame.to_input(gt)),
                    "grid_iou": box_iou(gt, frame.to_orig([round(v) for v in frame.to_input(gt)])),
                    "px_per_input": frame.orig_w / frame.input_w,
                }
            )
    return out


def box_errors(trajectories: Sequence[Trajectory], min_iou: float = 0.3) -> dict[str, dict[str, float]]:
    """Per family (and "all"): `crops`, mean `crop_iou`, `miss_rate` (IoU < min_iou), and over the hits
    `hit_iou`, `grid_iou` (the rounding ceiling), `err_<side>` / `abs_err_<side>` (written minus true, input
    pixels), `abs_err` (their mean), `size_written` / `size_true` (mean side length, input pixels),
    `size_corr` (Pearson correlation of written and true side lengths; NaN when either is constant) and
    `px_per_input` (original pixels per input pixel). Families without a scored crop are left out."""
    if not 0.0 <= min_iou < 1.0:
        raise ValueError(f"min_iou must be in [0, 1), got {min_iou}")
    records = crop_records(trajectories)
    rows = {}
    for fam in sorted({r["family"] for r in records}) + (["all"] if records else []):
        recs = [r for r in records if fam == "all" or r["family"] == fam]
        hits = [r for r in recs if r["iou"] >= min_iou]
        row = {
            "crops": len(recs),
            "crop_iou": _mean(r["iou"] for r in recs),
            "miss_rate": 1 - len(hits) / len(recs),
            "hit_iou": _mean(r["iou"] for r in hits),
            "grid_iou": _mean(r["grid_iou"] for r in hits),
            "px_per_input": _mean(r["px_per_input"] for r in recs),
        }
        for j, side in enumerate(SIDES):
            row[f"err_{side}"] = _mean(r["written"][j] - r["true"][j] for r in hits)
            row[f"abs_err_{side}"] = _mean(abs(r["written"][j] - r["true"][j]) for r in hits)
        row["abs_err"] = _mean(row[f"abs_err_{s}"] for s in SIDES)
        written = [r["written"][j + 2] - r["written"][j] for r in hits for j in (0, 1)]
        true = [r["true"][j + 2] - r["true"][j] for r in hits for j in (0, 1)]
        row.update(size_written=_mean(written), size_true=_mean(true), size_corr=_corr(written, true))
        rows[fam] = row
    return rows


def format_box_errors(rows: dict[str, dict[str, float]], columns: Sequence[str] = COLUMNS) -> str:
    """A plain-text table of `box_errors` (one line per family)."""
    if not rows:
        return "no crops with a ground-truth region to score"
    lines = ["family".ljust(12) + "".join(c.rjust(13) for c in columns)]
    for fam, row in rows.items():
        lines.append(fam.ljust(12) + "".join(_fmt(row[c]).rjust(13) for c in columns))
    return "\n".join(lines)


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else math.nan


def _corr(a: list[float], b: list[float]) -> float:
    if len(a) < 2:
        return math.nan
    ma, mb = _mean(a), _mean(b)
    va, vb = sum((x - ma) ** 2 for x in a), sum((y - mb) ** 2 for y in b)
    if va == 0 or vb == 0:  # a constant written size: no correlation to speak of
        return math.nan
    return sum((x - ma) * (y - mb) for x, y in zip(a, b)) / math.sqrt(va * vb)


def _fmt(v) -> str:
    if isinstance(v, int):
        return str(v)
    return "-" if math.isnan(v) else f"{v:.3f}"
