"""Why did the model crop there? `explain_crops`: the quick view of `explain`, attention and counterfactual importance
only, one `CropRecord` per crop decision of a Trajectory.

For each crop call: how much of the main-image attention of the tokens just before (and of) the call fell inside the
chosen box, against its share of the area; the top attended regions; whether the attention peak and the written box
lie on the ground-truth region (attention vs box); the scored text's log-prob with the crop against the same
trajectory whose crop is swapped for a blank view, the coarse view the model already had, or a crop of the wrong
region (counterfactual importance); IoU with the ground-truth region; and whether a crop was needed at all (the
`control` family needs none). `crop_table` is the one table of records, whatever `explain` computed in them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Mapping, Sequence

from ..core.trajectory import Trajectory
from .contract import MAP_METHODS, VARIANTS, CropRecord, WhyConfig
from .faithfulness import pointing_game
from .record import explain
from .swaps import answer_logprobs, counterfactual_trajectory, variant_image

if TYPE_CHECKING:
    from ..model.policy import Policy

CropExplanation = CropRecord  # the record `explain_crops` returns is `explain`'s


@dataclass
class ExplainConfig:
    """How `explain_crops` explains crop decisions (a `WhyConfig` with attention and importance only: `.why()`)."""

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

    def why(self) -> WhyConfig:
        """The same request as `explain`'s config (ValueError naming a bad variant, target or score)."""
        if self.score not in ("answer", "read"):
            raise ValueError(f"score={self.score!r}: use 'answer' (the final answer) or 'read' (the text after each "
                             "crop)")
        if self.target not in ("model", "gt"):
            raise ValueError(f"target={self.target!r}: use 'model' or 'gt'")
        return WhyConfig(methods=("attention",), targets=("box",), attention_layers=self.layers, heads=self.heads,
                         sink=self.sink, window=self.window, top_k=self.top_k, importance=tuple(self.variants),
                         importance_target=self.score, answer_from=self.target, faithfulness=False)


def explain_crops(policy: "Policy", trajectory: Trajectory, config: ExplainConfig | None = None,
                  **overrides) -> list[CropRecord]:
    """One `CropRecord` per crop event of `trajectory` (refused calls get attention only): `explain` with
    `config.why()`."""
    cfg = replace(config or ExplainConfig(), **overrides)
    return explain(policy, trajectory, cfg.why())


def disagreements(explanations: Sequence[CropRecord], iou: float = 0.3, concentration: float = 1.0) -> list[dict]:
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
        if (e.attention_box or {}).get("cell") == "attention_only":
            why.append("the attention peak is on the ground-truth region, the written box is not")
        for v, imp in e.importance.items():
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
    maps = [m for m in MAP_METHODS if m != "attention" and any(r.map(m, target) is not None for r in rows)]
    views = [v for v in VARIANTS if any(v in r.importance for r in rows)]
    cols = {"sample": lambda r: r.sample_id, "crop": lambda r: r.event + 1, "IoU": lambda r: _f(r.gt_iou, "{:.2f}"),
            "attention in box": lambda r: _f(r.mass_in_box, "{:.3f}"),
            "x area": lambda r: _f(r.concentration, "{:.2f}"),
            "attention peak / box on truth": lambda r: _cell(r.attention_box),
            **{m.replace("_", " "): (lambda r, m=m: _point(r, m, target)) for m in maps},
            **{f"importance ({v})": (lambda r, v=v: _f(r.importance.get(v), "{:+.3f}")) for v in views},
            "read drop (blank)": _drop, "digits settled": _settled, "needed": lambda r: r.needed}
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


__all__ = ["VARIANTS", "ExplainConfig", "CropExplanation", "explain_crops", "disagreements", "crop_table",
           "explanation_table", "counterfactual_trajectory", "variant_image", "answer_logprobs"]
