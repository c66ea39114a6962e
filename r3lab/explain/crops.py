"""Why did the model crop there? `explain_crops`: `explain` with `WhyConfig.quick()` (attention and the crop's
importance only), one `CropRecord` per crop decision of a Trajectory.

For each crop call: how much of the main-image attention of the tokens just before (and of) the call fell inside the
chosen box, against its share of the area; the top attended regions; whether the attention peak and the written box
lie on the ground-truth region (attention vs box); the scored text's log-prob with the crop against the same
trajectory whose crop is swapped for a blank view, the coarse view the model already had, or a crop of another
region (the crop's importance); IoU with the ground-truth region; and whether a crop was needed at all (the
`control` family needs none). `crop_table` is the one table of records, whatever `explain` computed in them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Mapping, Sequence

from ..core.trajectory import Trajectory
from .contract import SWAPS, CropRecord, WhyConfig, map_methods
from .faithfulness import pointing_game
from .record import explain
from .swaps import answer_logprobs, counterfactual_trajectory, variant_image

if TYPE_CHECKING:
    from ..model.policy import Policy

CropExplanation = CropRecord  # the record `explain_crops` returns is `explain`'s


def explain_crops(
    policy: "Policy", trajectory: Trajectory, config: WhyConfig | None = None, **overrides
) -> list[CropRecord]:
    """One `CropRecord` per crop event of `trajectory` (refused calls get attention only): `explain` with `config`,
    by default `WhyConfig.quick()` (attention and importance only), and `overrides` of its fields."""
    cfg = config or WhyConfig.quick()
    return explain(policy, trajectory, replace(cfg, **overrides) if overrides else cfg)


def disagreements(explanations: Sequence[CropRecord], iou: float = 0.3, concentration: float = 1.0) -> list[dict]:
    """Crop decisions whose explanation disagrees with the ground truth, with the reasons."""
    out = []
    for e in explanations:
        why = []
        if e.needed is False:
            why.append("cropped although the question needs no crop (control)")
        if e.gt_iou is not None and e.gt_iou < iou:
            why.append(f"box IoU with the ground truth {e.gt_iou:.2f} < {iou}")
        a = e.attention
        if a is not None and a.top_in_gt is False:
            why.append("the most attended cell is outside every ground-truth region")
        if a is not None and a.concentration is not None and a.concentration < concentration:
            why.append(f"the box got less attention than its area ({a.concentration:.2f}x)")
        if a is not None and (a.vs_box or {}).get("cell") == "attention_only":
            why.append("the attention peak is on the ground-truth region, the written box is not")
        for v, imp in (e.importance.effect if e.importance else {}).items():
            if e.needed and imp is not None and imp <= 0:
                why.append(f"the scored text is no less likely with the {v} view (importance {imp:+.2f})")
        if why:
            out.append({"event": e.event, "reasons": why})
    return out


def crop_table(records: Sequence[CropRecord] | Mapping[str, Sequence[CropRecord]], target: str = "box") -> str:
    """One markdown line per crop decision (records, or sample id -> records): IoU with the landmark, attention in
    the box and against its area, whether the attention peak and the box are on the landmark, whether each map
    method's hottest cell is on it, the importance against each view, the read's drop with a blank crop at the input,
    the box digits the logit lens sees settle, and whether a crop was needed; a column only where some record has
    its number."""
    rows = [r for rs in records.values() for r in rs] if isinstance(records, Mapping) else list(records)
    maps = [m for m in map_methods() if m != "attention" and any(r.map(m, target) is not None for r in rows)]
    views = [v for v in SWAPS if any(r.effect(v) is not None for r in rows)]
    att = lambda r, k: getattr(r.attention, k) if r.attention is not None else None  # noqa: E731
    cols = {
        "sample": lambda r: r.sample_id,
        "crop": lambda r: r.event + 1,
        "IoU": lambda r: _f(r.gt_iou, "{:.2f}"),
        "attention in box": lambda r: _f(att(r, "mass_in_box"), "{:.3f}"),
        "x area": lambda r: _f(att(r, "concentration"), "{:.2f}"),
        "attention peak / box on truth": lambda r: _cell(att(r, "vs_box")),
        **{m.replace("_", " "): (lambda r, m=m: _point(r, m, target)) for m in maps},
        **{f"importance ({v})": (lambda r, v=v: _f(r.effect(v), "{:+.3f}")) for v in views},
        "read drop (blank)": _drop,
        "digits settled": _settled,
        "needed": lambda r: r.needed,
    }
    keep = [k for k, f in cols.items() if k in ("sample", "crop", "needed") or any(f(r) != "-" for r in rows)]
    lines = ["| " + " | ".join(keep) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(str(cols[k](r)) for k in keep) + " |" for r in rows]
    return "\n".join(lines)


explanation_table = crop_table  # the name `explain_crops`' table had


def _f(v, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def _cell(ab: dict | None) -> str:
    if not ab:
        return "-"
    return f"{'yes' if ab['peak_in_region'] else 'no'} / {'yes' if ab['box_on_region'] else 'no'}"


def _point(r: CropRecord, method: str, target: str) -> str:
    m = r.map(method, target)
    if m is None or r.landmark is None:
        return "-"
    return "yes" if pointing_game(m, r.landmark, r.cell) else "no"


def _drop(r: CropRecord) -> str:
    pl = r.result("patch_layers", None)
    fx = pl.data.get("crop:blank", {}).get("effect", {}).get("read") if pl is not None and pl.available else None
    return "-" if not fx else f"{fx[0]:+.2f}"


def _settled(r: CropRecord) -> str:
    lens = r.result("logit_lens", "box")
    if lens is None or not lens.available:
        return "-"
    return f"{sum(s is not None for s in lens.data['settled'])}/{len(lens.data['settled'])}"


__all__ = [
    "SWAPS",
    "CropExplanation",
    "explain_crops",
    "disagreements",
    "crop_table",
    "explanation_table",
    "counterfactual_trajectory",
    "variant_image",
    "answer_logprobs",
]
