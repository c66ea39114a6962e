"""The explanation contract: what `explain` is asked (`WhyConfig`) and what it returns per crop decision (`CropRecord`,
with one `MethodResult` per method and target). `explain_crops` (`crops.py`) returns the same records.

No torch at import: the CLI builds `r3lab explain`'s flags from `WhyConfig`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

from ..core.regions import Box

if TYPE_CHECKING:
    import torch

TARGETS = ("box", "read", "answer")  # what a map explains (`stream.target_positions`)
VARIANTS = ("blank", "coarse", "wrong")  # the views a crop is swapped for (`swaps.counterfactual_trajectory`)
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
    targets: tuple = field(default=("box", "answer"), metadata=_LIST)  # what the maps explain:
        # "box" (the call's digits) | "read" | "answer"
    steps: int = 16  # integrated gradients: integration points
    chunk: int = 8  # rows per batched pass (integrated gradients' internal batch, patching, curves)
    recompute: bool = False  # gradients: recompute each decoder layer in backward
        # (peak: one layer's activations, not all; ~1.4x the time)
    block: int = 1  # patching map: cells per block side (1: every cell patched alone)
    attention_layers: object = (-1,)  # text layers whose attention the "attention" map averages
    window: int = 8  # attention: tokens before the call that count as asking "where?" (the call's own too)
    swaps: tuple = field(default=SWAPS, metadata=_LIST)  # patch_layers: what replaces the crop ("blank" |
        # "coarse" | "other": another sample's crop)
    faithfulness: bool = True  # measure the maps (pointing game, deletion / insertion, random baseline)
    faithfulness_target: str = "box"  # the target the curves score
    curve_steps: int = 8  # deletion / insertion: fractions 0, 1/steps, ..., 1
    seed: int = 0  # random baseline maps
    heads: object = None  # attention: heads kept (None: all, averaged)
    sink: str = "renorm"  # attention: sink handling, see AttentionMaps ("renorm" | "keep" | "image")
    top_k: int = 3  # attention: the most attended cells reported per call
    iou: float = 0.5  # attention vs box: the written box is on the ground-truth region from this IoU
    importance: tuple = field(default=(), metadata=_LIST)  # views the crop is swapped for: "blank" | "coarse" | "wrong"
    importance_target: str = "answer"  # what importance scores: "answer" (the final answer) | "read" (after the crop)
    answer_from: str = "model"  # the answer scored: "model" (the trajectory's) or "gt" (its first accepted answer)

    def __post_init__(self):
        self.methods, self.targets, self.swaps = names(self.methods), names(self.targets), names(self.swaps)
        self.importance = names(self.importance)
        if bad := [v for v in self.importance if v not in VARIANTS]:
            raise ValueError(f"unknown counterfactual variants {bad}; choose from {VARIANTS}")
        if self.importance_target not in ("answer", "read"):
            raise ValueError(f"importance_target={self.importance_target!r}: use 'answer' (the final answer) or "
                             "'read' (the text after each crop)")
        if self.answer_from not in ("model", "gt"):
            raise ValueError(f"answer_from={self.answer_from!r}: use 'model' or 'gt'")
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


@dataclass(repr=False)
class CropRecord:
    """One crop decision and its explanations. Boxes are in the main image's model-input frame unless named _orig."""

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
    piece: int | None = None  # the model_text piece holding the call
    box_orig: tuple | None = None  # the original-pixel box that was cut (an accepted call)
    area_frac: float | None = None  # box area / main image area
    mass_in_box: float | None = None  # share of the main image's attention inside the box (the call's tokens, before)
    mass_outside: float | None = None  # 1 - mass_in_box
    concentration: float | None = None  # mass_in_box / area_frac: > 1 means the box got more than its share
    top_regions: list = field(default_factory=list)  # [{"box", "mass", "cell"}] most attended cells
    gt_index: int | None = None  # which ground-truth region the landmark is
    gt_mass: float | None = None  # share of that attention inside the landmark
    top_in_gt: bool | None = None  # the most attended cell overlaps a ground-truth region
    attention_box: dict | None = None  # attention vs box (`AttentionBox`): peak in the landmark, box on it, cell
    logp: float | None = None  # log-prob of the scored text (WhyConfig.importance_target) with this crop
    logp_variants: dict = field(default_factory=dict)  # variant -> log-prob with the crop replaced
    importance: dict = field(default_factory=dict)  # variant -> logp - logp_variant (> 0: the crop helped)
    read: str | None = None  # the model's text right after the crop, up to its next call
    coords: str = "absolute"  # the frame the model wrote the box in: "absolute" pixels | "relative" 0-1000
    box_written: Box | None = None  # the box's numbers in that frame (what the model's text says)

    def __repr__(self) -> str:  # the numbers, not the maps (print(record) in a notebook)
        skip = {"methods", "faithfulness", "top_regions", "logp_variants", "answers", "n_tokens"}
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name not in skip
                          and getattr(self, f.name) not in (None, [], {}))
        return f"CropRecord({shown}, methods={sorted(self.methods)})"

    def result(self, method: str, target: str | None = "box") -> MethodResult | None:
        return self.methods.get(method, {}).get(target or "all")

    def map(self, method: str, target: str = "box") -> "torch.Tensor | None":
        import torch  # the contract itself loads no torch (the CLI's flags come from WhyConfig)

        r = self.result(method, target)
        return torch.tensor(r.map) if r is not None and r.map is not None else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CropRecord":
        d = dict(d)
        d["methods"] = {m: {t: MethodResult(**r) for t, r in v.items()} for m, v in d.get("methods", {}).items()}
        for k in ("box", "landmark", "grid", "input_size", "box_orig", "box_written"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)
