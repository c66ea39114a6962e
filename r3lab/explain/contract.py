"""The explanation contract: what `explain` is asked (`WhyConfig`, with presets), the methods it can run (`METHODS`,
a registry: one module and one entry each), and what it returns per crop decision (`CropRecord`: identity and
geometry, the attention summary and the crop's importance nested, one `MethodResult` per method and target).
`explain_crops` (`crops.py`) is `explain` with `WhyConfig.quick()`.

No torch at import: the CLI builds `r3lab explain`'s flags from `WhyConfig`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..core.regions import Box
from ..core.settings import check_bools, check_ranges, short

if TYPE_CHECKING:
    import torch

TARGETS = ("box", "read", "answer")  # what a map explains (`stream.target_positions`)
# what replaces a crop (`swaps.counterfactual_trajectory`): a blank view, the coarse view the model already had, or a
# crop of another region (of the same image, same size; patch_layers: another sample's crop when one is given)
SWAPS = ("blank", "coarse", "other")
BLANK = (128, 128, 128)  # the blank image's grey, as `crops.counterfactual_trajectory` paints it


@dataclass(frozen=True)
class Method:
    """An explanation method: the module whose `run(name, call) -> list[MethodResult]` computes it for one crop
    call (`Call`), imported when it runs, and what it returns."""

    module: str  # relative to r3lab.explain (".gradients"), or absolute (a method of your own)
    map: bool = False  # maps over the main image's cells, per target (faithfulness measures them)
    targets: str = "each"  # "each": one result per WhyConfig.targets; "box": the call's digits; "none": one in all


METHODS: dict[str, Method] = {  # the registry: a new method is its module and one entry here
    "attention": Method(".record", map=True),  # one forward for every call (`record`), not per call
    "gradient_x_input": Method(".gradients", map=True),
    "integrated_gradients": Method(".gradients", map=True),
    "patching": Method(".patching", map=True),
    "patch_layers": Method(".patching", targets="none"),
    "logit_lens": Method(".lens", targets="box"),
}


def map_methods() -> tuple:
    """The registered methods that return maps (the faithfulness curves and the figures draw them)."""
    return tuple(m for m, spec in METHODS.items() if spec.map)


MAP_METHODS = map_methods()  # as registered at import (`map_methods()` sees methods registered later)


def names(text) -> tuple:
    """ "a,b" (a command line) or a sequence -> a tuple of names."""
    return tuple(x.strip() for x in text.split(",") if x.strip()) if isinstance(text, str) else tuple(text)


_LIST = {"type": names, "metavar": "A,B"}  # CLI: comma-separated names


@dataclass
class WhyConfig:
    """Which explanations `explain` computes and at what cost. `WhyConfig.quick()`: attention and the crop's
    importance only, what `explain_crops` computes."""

    methods: tuple = field(default=tuple(METHODS), metadata=_LIST)
    """any of METHODS"""
    targets: tuple = field(default=("box", "answer"), metadata=_LIST)
    """what the maps explain: "box" (the call's digits) | "read" | "answer" """
    steps: int = 16
    """integrated gradients: integration points"""
    chunk: int = 8
    """rows per batched pass (integrated gradients' internal batch, patching, curves)"""
    recompute: bool = False
    """gradients: recompute each decoder layer in backward (peak: one layer's activations, not all; ~1.4x the time)"""
    block: int = 1
    """patching map: cells per block side (1: every cell patched alone)"""
    attention_layers: object = (-1,)
    """text layers whose attention the "attention" map averages"""
    window: int = 8
    """attention: tokens before the call that count as asking "where?" (the call's own too)"""
    swaps: tuple = field(default=SWAPS, metadata=_LIST)
    """patch_layers: what replaces the crop ("blank" | "coarse" | "other": another sample's crop)"""
    faithfulness: bool = True
    """measure the maps (pointing game, deletion / insertion, random baseline)"""
    faithfulness_target: str = "box"
    """the target the curves score"""
    curve_steps: int = 8
    """deletion / insertion: fractions 0, 1/steps, ..., 1"""
    seed: int = 0
    """random baseline maps"""
    heads: object = None
    """attention: heads kept (None: all, averaged)"""
    sink: str = "renorm"
    """attention: sink handling, see AttentionMaps ("renorm" | "keep" | "image")"""
    top_k: int = 3
    """attention: the most attended cells reported per call"""
    iou: float = 0.5
    """attention vs box: the written box is on the ground-truth region from this IoU"""
    importance: tuple = field(default=(), metadata=_LIST)
    """what the crop is swapped for: "blank" | "coarse" | "other" """
    importance_target: str = "answer"
    """what importance scores: "answer" (the final answer) | "read" (after the crop)"""
    answer_from: str = "model"
    """the answer scored: "model" (the trajectory's) or "gt" (its first accepted answer)"""

    @classmethod
    def quick(cls, **overrides) -> "WhyConfig":
        """Attention and the crop's importance against every swap, no other method and no faithfulness: the quick
        view `explain_crops` computes (`overrides`: any field)."""
        return cls(
            **{"methods": ("attention",), "targets": ("box",), "importance": SWAPS, "faithfulness": False, **overrides}
        )

    def __post_init__(self):
        self.methods, self.targets, self.swaps = names(self.methods), names(self.targets), names(self.swaps)
        self.importance = tuple(swap_name(v) for v in names(self.importance))
        if bad := [v for v in self.importance if v not in SWAPS]:
            raise ValueError(f"unknown swap(s) {short(bad)} in importance; choose from {list(SWAPS)}")
        if self.importance_target not in ("answer", "read"):
            raise ValueError(
                f"importance_target={short(self.importance_target)}: use 'answer' (the final answer) or "
                "'read' (the text after each crop)"
            )
        if self.answer_from not in ("model", "gt"):
            raise ValueError(f"answer_from={short(self.answer_from)}: use 'model' or 'gt'")
        if bad := [m for m in self.methods if m not in METHODS]:
            raise ValueError(f"unknown explanation method(s) {short(bad)}; choose from {list(METHODS)}")
        if bad := [t for t in (*self.targets, self.faithfulness_target) if t not in TARGETS]:
            raise ValueError(f"unknown target(s) {short(bad)}; choose from {list(TARGETS)}")
        if bad := [s for s in self.swaps if s not in SWAPS]:
            raise ValueError(f"unknown swap(s) {short(bad)}; choose from {list(SWAPS)}")
        check_ranges(
            self,
            ints={
                "steps": (1, 1024),
                "chunk": (1, 4096),
                "block": (1, 64),
                "curve_steps": (1, 1024),
                "window": (0, 65_536),
                "seed": (0, 2**32 - 1),
                "top_k": (1, 4096),
            },
            floats={"iou": (0.0, 1.0)},
            why={
                "steps": "each point is a forward and backward pass; 16-64 is the usual range",
                "curve_steps": "each fraction is a forward pass per call",
                "block": "cells per side of a patched block; the image has fewer",
                "window": "tokens of one context",
                "top_k": "cells of one image",
            },
        )
        check_bools(self, "recompute", "faithfulness")


def swap_name(name: str) -> str:
    if name == "wrong":  # its name before one word named every swap
        warnings.warn(
            "the swap 'wrong' is now 'other' (a crop of another region); 'wrong' goes in r3lab 0.3",
            FutureWarning,
            stacklevel=4,
        )
        return "other"
    return name


@dataclass
class Call:
    """One crop call being explained: what a method's `run(name, call)` reads."""

    policy: Any
    trajectory: Any  # tokenised, its events found
    stream: Any  # the decoder's inputs (`stream.Stream`); None where the model cannot give them
    blank: Any  # the same with the main image blank
    event: Any  # the `CropEvent`
    index: int  # which crop of the trajectory
    positions: dict  # target (and "call") -> token positions
    config: WhyConfig
    other: Any = None  # another sample's trajectory (patch_layers' "other" swap)


@dataclass
class AttentionSummary:
    """Where the main image's attention went from the tokens that ask for the crop (the call and `window` before)."""

    mass_in_box: float  # share inside the written box
    concentration: float | None  # mass_in_box / the box's share of the area: > 1, the box got more than its share
    top_regions: list = field(default_factory=list)  # [{"box", "mass", "cell"}] the most attended cells
    gt_mass: float | None = None  # share inside the named landmark
    top_in_gt: bool | None = None  # the most attended cell overlaps a ground-truth region
    vs_box: dict | None = None  # attention vs box (`attention_box.AttentionBox`): peak on the landmark, box on it

    @property
    def mass_outside(self) -> float:
        return 1.0 - self.mass_in_box


@dataclass
class Importance:
    """The crop's importance: the scored text's log-prob with the crop against each swap in its place."""

    target: str  # what is scored: "answer" (the final answer) | "read" (the model's text after the crop)
    logp: float  # with the crop
    swapped: dict = field(default_factory=dict)  # swap -> log-prob with the crop replaced
    effect: dict = field(default_factory=dict)  # swap -> logp - swapped (> 0: the crop helped)


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
    gt_index: int | None = None  # which ground-truth region the landmark is
    read: str | None = None  # the model's text right after the crop, up to its next call
    coords: str = "absolute"  # the frame the model wrote the box in: "absolute" pixels | "relative" 0-1000
    box_written: Box | None = None  # the box's numbers in that frame (what the model's text says)
    attention: AttentionSummary | None = None  # the "attention" method's summary of this call
    importance: Importance | None = None  # with WhyConfig.importance: the crop against each swap

    def __repr__(self) -> str:  # the numbers, not the maps (print(record) in a notebook)
        skip = {"methods", "faithfulness", "answers", "n_tokens"}
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name not in skip and getattr(self, f.name) not in (None, [], {})
        )
        return f"CropRecord({shown}, methods={sorted(self.methods)})"

    def result(self, method: str, target: str | None = "box") -> MethodResult | None:
        return self.methods.get(method, {}).get(target or "all")

    def map(self, method: str, target: str = "box") -> "torch.Tensor | None":
        import torch  # the contract itself loads no torch (the CLI's flags come from WhyConfig)

        r = self.result(method, target)
        return torch.tensor(r.map) if r is not None and r.map is not None else None

    def to_dict(self) -> dict:
        return asdict(self)

    def effect(self, swap: str) -> float | None:
        """The crop's importance against `swap` (None: not measured)."""
        return None if self.importance is None else self.importance.effect.get(swap)

    @classmethod
    def from_dict(cls, d: dict) -> "CropRecord":
        d = _nested(dict(d))
        d["methods"] = {m: {t: MethodResult(**r) for t, r in v.items()} for m, v in d.get("methods", {}).items()}
        if isinstance(d.get("attention"), dict):
            d["attention"] = AttentionSummary(**d["attention"])
        if isinstance(d.get("importance"), dict):
            d["importance"] = Importance(**d["importance"])
        for k in ("box", "landmark", "grid", "input_size", "box_orig", "box_written"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


_ATTENTION = ("mass_in_box", "concentration", "top_regions", "gt_mass", "top_in_gt")


def _nested(d: dict) -> dict:
    """A record written before the attention summary and the importance were nested (records.jsonl of earlier runs):
    their flat fields read into the nested parts, the swap "wrong" as "other"."""
    if "mass_in_box" in d or "attention_box" in d:
        flat = {k: d.pop(k, None) for k in (*_ATTENTION, "mass_outside", "attention_box")}
        if flat["mass_in_box"] is not None:
            d["attention"] = {
                **{k: flat[k] for k in _ATTENTION},
                "top_regions": flat["top_regions"] or [],
                "vs_box": flat["attention_box"],
            }
    if "logp" in d or "logp_variants" in d:
        logp, swapped, effect = d.pop("logp", None), d.pop("logp_variants", None) or {}, d.pop("importance", None) or {}
        rename = lambda m: {("other" if k == "wrong" else k): v for k, v in m.items()}  # noqa: E731
        d["importance"] = (
            None
            if logp is None
            else {
                "target": d.pop("importance_target", "answer"),
                "logp": logp,
                "swapped": rename(swapped),
                "effect": rename(effect),
            }
        )
    return d
