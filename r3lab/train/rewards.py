"""Reward functions with TRL's signature, the `code` and `paper` presets, and `score`.

Every function is `f(prompts, completions, **kwargs) -> list[float | None]` (TRL's contract: extra
columns arrive as keyword arguments, `None` means "not applicable to this sample"), so TRL reward
functions drop in. Functions return a value in [0, 1]; the preset's `RewardTerm` carries the weight
and the correctness gate, so the gate does not depend on the order of the functions (in the
official trainer it does) and weights are configuration, not constants inside the functions.

`score(trajectories, "code")` builds the keyword columns from each Trajectory: `answers`,
`gt_boxes` (original pixels), `crop_boxes` (executed crops, original pixels), `crop_verdicts`,
`family`, `model_texts`, `calls` (each trajectory's `CallStyle`) and `trajectories`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ..core.answer import extract_answer
from ..core.crop_calls import Verdict, find_crop_calls
from ..core.regions import box_giou, box_iou
from ..core.settings import check_choice, check_ranges, short

RewardFunc = Callable[..., list]
_END = re.compile(r"(<\|im_end\|>|<\|endoftext\|>)\s*$")


# -- answer normalisation (after the EvalAI VQA normaliser, trimmed) -----------------------------------
_NUMBERS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {
    "dont": "don't",
    "doesnt": "doesn't",
    "isnt": "isn't",
    "arent": "aren't",
    "cant": "can't",
    "wont": "won't",
    "its": "it's",
    "whats": "what's",
    "thats": "that's",
}
_PUNCT = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$~|:]")
_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation and articles, number words to digits, British/US colour.

    >>> normalize_answer("The  Yellow.")
    'yellow'
    >>> normalize_answer("Three dots!")
    '3 dots'
    >>> normalize_answer("3.5")
    '3.5'
    """
    t = text.strip().lower().replace("\n", " ").replace("\t", " ")
    t = _PERIOD.sub("", _PUNCT.sub(" ", t))
    words = []
    for w in t.split():
        w = _NUMBERS.get(w, w)
        w = _CONTRACTIONS.get(w, w)
        if w in _ARTICLES:
            continue
        words.append("colour" if w == "color" else "grey" if w == "gray" else w)
    return " ".join(words)


def _alternatives(ans) -> list[str]:
    # official RL data: one string with "/"-separated alternatives; r3lab samples: a list
    if isinstance(ans, str):
        return [a for a in ans.split("/") if a.strip()]
    return [a for a in ans if str(a).strip()]


def _strip_end(text: str) -> str:
    return _END.sub("", text).rstrip()


# -- reward functions ------------------------------------------------------------------------------
def accuracy(prompts, completions, answers, **kwargs) -> list[float]:
    """1 when the last <answer> matches any accepted answer after normalisation, else 0 (no judge).

    >>> accuracy(None, ["<answer>Two</answer>", "<answer>red</answer>", "red"], [["2"], ["blue", "red"], ["red"]])
    [1.0, 1.0, 0.0]
    """
    out = []
    for comp, ans in zip(completions, answers):
        got = extract_answer(comp)
        ok = got is not None and normalize_answer(got) in {normalize_answer(a) for a in _alternatives(ans)}
        out.append(1.0 if ok else 0.0)
    return out


def format_answer(prompts, completions, **kwargs) -> list[float]:
    """The released code's format check: the completion ends with `<answer>...</answer>`.

    >>> format_answer(None, ["<think>x</think><answer>3</answer><|im_end|>", "<answer>3"])
    [1.0, 0.0]
    """
    pat = re.compile(r".*<answer>.*?</answer>\s*$", re.S)
    return [1.0 if pat.fullmatch(_strip_end(c)) else 0.0 for c in completions]


def format_think_answer(prompts, completions, **kwargs) -> list[float]:
    """The paper's format check: one `<think>...</think>` followed by one `<answer>...</answer>`.

    >>> format_think_answer(None, ["<think>a <image> b</think><answer>3</answer>", "<answer>3</answer>"])
    [1.0, 0.0]
    """
    pat = re.compile(
        r"\s*<think>(?:(?!</?think>|</?answer>).)*</think>\s*<answer>(?:(?!</?answer>).)*</answer>\s*", re.S
    )
    return [1.0 if pat.fullmatch(_strip_end(c)) else 0.0 for c in completions]


_JSON_WITH_BBOX = {
    Verdict.OK,
    Verdict.WRONG_ARITY,
    Verdict.NON_NUMERIC,
    Verdict.NON_FINITE,
    Verdict.INVERTED,
    Verdict.ZERO_AREA,
}


def region_json(prompts, completions, **kwargs) -> list[float]:
    """The released code's region check: >= 1 crop call, and every one is JSON with a bbox_2d key.

    >>> region_json(None, ['a {"bbox_2d": [1, 2, 30, 40]} b', 'a {"bbox_2d": [1, 2]}', "none", '{"bbox": 1}'])
    [1.0, 1.0, 0.0, 0.0]
    """
    texts = kwargs.get("model_texts") or completions
    styles = kwargs.get("calls") or [None] * len(texts)  # each trajectory's CallStyle (default: bare JSON)
    out = []
    for t, style in zip(texts, styles):
        calls = find_crop_calls(t, style=style)
        out.append(1.0 if calls and all(c.verdict in _JSON_WITH_BBOX for c in calls) else 0.0)
    return out


def region_valid(prompts, completions, crop_verdicts, **kwargs) -> list[float]:
    """The paper's region check, made geometric: 1 when >= 1 crop call was executed (verdict ok).

    >>> region_valid(None, ["", "", ""], [["ok"], ["outside_image", "ok"], ["inverted"]])
    [1.0, 1.0, 0.0]
    """
    return [1.0 if any(str(v) == Verdict.OK.value for v in vs) else 0.0 for vs in crop_verdicts]


def region_iou(prompts, completions, gt_boxes, crop_boxes, **kwargs) -> list[float | None]:
    """For each ground-truth region, the best IoU among the executed crops; averaged (original pixels).

    None where a sample has no ground-truth region (not applicable), 0 when it made no crop.

    >>> region_iou(None, ["", "", ""], [[(0, 0, 10, 10)], [], [(0, 0, 10, 10)]], [[(0, 0, 10, 20)], [], []])
    [0.5, None, 0.0]
    """
    out = []
    for gts, crops in zip(gt_boxes, crop_boxes):
        if not gts:
            out.append(None)
            continue
        out.append(sum(max((box_iou(g, c) for c in crops), default=0.0) for g in gts) / len(gts))
    return out


def region_giou(prompts, completions, gt_boxes, crop_boxes, **kwargs) -> list[float | None]:
    """The dense region reward: like `region_iou`, with (GIoU + 1) / 2 in place of IoU (0-1).

    A crop that misses the region still scores more the nearer it lands (IoU is 0 for every miss, so a
    policy whose crops all miss gets no signal from it); None without a ground-truth region, 0 with no crop.

    >>> [round(v, 3) for v in region_giou(None, ["", ""], [[(0, 0, 10, 10)]] * 2,
    ...                                   [[(20, 0, 30, 10)], [(40, 0, 50, 10)]])]
    [0.333, 0.2]
    """
    out = []
    for gts, crops in zip(gt_boxes, crop_boxes):
        if not gts:
            out.append(None)
            continue
        out.append(sum(max(((box_giou(g, c) + 1) / 2 for c in crops), default=0.0) for g in gts) / len(gts))
    return out


_CALL = re.compile(r'\{[^{}]*"?bbox_2d"?[^{}]*\}')


def _reasoning(completion: str) -> str:
    text = _strip_end(completion).split("<answer>")[0]
    return re.sub(r"\s+", " ", text.replace("<think>", "").replace("</think>", "").replace("<image>", "")).strip()


def length_shortest_span(prompts, completions, chars: int = 10, **kwargs) -> list[float]:
    """The released code's length reward, scaled to [0, 1]: min(1, shortest text span between crop calls / 10 chars).

    >>> length_shortest_span(None, ['look {"bbox_2d": [1, 2, 3, 4]} now it is red<answer>red</answer>'])
    [0.4]
    """
    out = []
    for c in completions:
        parts = [p.strip() for p in _CALL.split(_reasoning(c))]
        keep = [p for k, p in enumerate(parts) if p or k in (0, len(parts) - 1)]
        out.append(min(1.0, min(len(p) for p in keep) / chars))
    return out


def length_chars(prompts, completions, chars: int = 250, **kwargs) -> list[float]:
    """The paper's length reward, scaled to [0, 1]: min(1, reasoning characters / 250).

    >>> length_chars(None, ["<think>" + "x" * 100 + "</think><answer>1</answer>"])
    [0.4]
    """
    return [min(1.0, len(_reasoning(c)) / chars) for c in completions]


# -- terms, presets and scoring --------------------------------------------------------------------
@dataclass
class RewardTerm:
    """One weighted reward function; `gate` names a term whose raw value must be 1 for this one to count."""

    name: str
    func: RewardFunc
    weight: float = 1.0
    gate: str | None = None


PRESETS = ("code", "paper", "accuracy")
REGIONS = ("iou", "giou")


def preset(name: str = "code", region_weight: float = 0.0, region: str = "iou") -> list[RewardTerm]:
    """`code` (as released: accuracy 1, format 0.5, region 0.5 gated on accuracy, length <= 0.1),
    `paper` (accuracy 1, format 1, region 0.5 gated, length 0.001/char <= 0.25), or `accuracy`.
    `region_weight` > 0 adds the ground-truth region reward with that weight: `region_iou`, or with
    `region="giou"` the GIoU-based `region_giou`, which still rewards a near miss.
    """
    acc = RewardTerm("accuracy", accuracy, 1.0)
    if name == "code":
        terms = [
            acc,
            RewardTerm("format", format_answer, 0.5),
            RewardTerm("region", region_json, 0.5, gate="accuracy"),
            RewardTerm("length", length_shortest_span, 0.1),
        ]
    elif name == "paper":
        terms = [
            acc,
            RewardTerm("format", format_think_answer, 1.0),
            RewardTerm("region", region_valid, 0.5, gate="accuracy"),
            RewardTerm("length", length_chars, 0.25),
        ]
    elif name == "accuracy":
        terms = [acc]
    else:
        raise ValueError(
            f"unknown reward preset {short(name)}: use 'code', 'paper' or 'accuracy' (or a list of RewardTerm)"
        )
    if region not in REGIONS:
        raise ValueError(f"unknown region reward {short(region)}: use 'iou' or 'giou'")
    if region_weight:
        terms.append(RewardTerm("iou", region_giou if region == "giou" else region_iou, float(region_weight)))
    return terms


@dataclass
class RewardSpec:
    """The reward: a preset's terms and the ground-truth region reward. One object nested in every config that
    scores rollouts (R-GRPO, evaluation, the recipe, TRL), so a run is reported with the reward it trained on."""

    preset: str = "code"
    """reward preset: "code" (as released), "paper" or "accuracy" """
    region_weight: float = 0.0
    """> 0 adds the ground-truth region reward with this weight"""
    region: str = "iou"
    """the region reward: "iou", or "giou" (dense: a near miss still scores)"""

    def __post_init__(self):
        self.validate()

    def validate(self) -> "RewardSpec":
        check_ranges(self, floats=dict(region_weight=(0.0, None)))
        check_choice(self, "preset", PRESETS)
        check_choice(self, "region", REGIONS)
        return self

    def terms(self) -> list[RewardTerm]:
        return preset(self.preset, self.region_weight, self.region)


@dataclass
class Scores:
    """Weighted, gated contribution of each term (None = not applicable) and their sum per trajectory."""

    terms: dict[str, list[float | None]]
    raw: dict[str, list[float | None]]
    total: list[float]

    def table(self, labels: Sequence[str] | None = None) -> str:
        """A markdown table: one row per trajectory, one column per term, then the total."""
        names = list(self.terms)
        labels = labels or [str(i) for i in range(len(self.total))]
        fmt = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
        lines = ["| | " + " | ".join(names) + " | total |", "|---" * (len(names) + 2) + "|"]
        for i, lab in enumerate(labels):
            cells = " | ".join(fmt(self.terms[n][i]) for n in names)
            lines.append(f"| {lab} | {cells} | {fmt(self.total[i])} |")
        return "\n".join(lines)

    def mean(self) -> dict[str, float]:
        out = {}
        for k, vs in self.terms.items():
            vals = [v for v in vs if v is not None]
            out[k] = sum(vals) / len(vals) if vals else float("nan")
        out["total"] = sum(self.total) / max(1, len(self.total))
        return out


def term_list(terms: str | RewardSpec | Sequence[RewardTerm]) -> list[RewardTerm]:
    """The terms of a preset's name, of a `RewardSpec`, or the terms given."""
    if isinstance(terms, str):
        return preset(terms)
    return terms.terms() if isinstance(terms, RewardSpec) else list(terms)


def reward_columns(trajectories) -> dict:
    """The keyword columns reward functions receive, built from Trajectories."""
    cols = {
        "answers": [],
        "gt_boxes": [],
        "crop_boxes": [],
        "crop_verdicts": [],
        "family": [],
        "model_texts": [],
        "calls": [],
        "trajectories": list(trajectories),
    }
    for t in trajectories:
        cols["answers"].append(list(t.answers))
        cols["gt_boxes"].append([tuple(b) for b in t.gt_boxes])
        cols["crop_boxes"].append([tuple(p.info.box_orig) for p in t.crops if p.info.box_orig is not None])
        cols["crop_verdicts"].append([e.call.verdict.value for e in t.events] if t.events else ["ok"] * len(t.crops))
        cols["family"].append(t.family)
        cols["model_texts"].append(t.model_text())
        cols["calls"].append(t.calls)
    return cols


def score(trajectories, terms: str | RewardSpec | Sequence[RewardTerm] = "code", write_meta: bool = True) -> Scores:
    """Run every reward term over the trajectories; gates apply; None counts as 0 in the total.

    With `write_meta`, each trajectory's `meta["rewards"]` gets its per-term values and total.
    """
    trajectories = list(trajectories)
    terms = term_list(terms)
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise ValueError(f"reward term names must be unique, got {names}")
    for t in terms:
        if t.gate is not None and t.gate not in names:
            raise ValueError(f"term {short(t.name)} is gated by {short(t.gate)}, which is not among the terms {names}")
    cols = reward_columns(trajectories)
    prompts = [t.question for t in trajectories]
    completions = [t.completion() for t in trajectories]
    raw = {}
    for term in terms:
        vals = list(term.func(prompts, completions, **cols))
        if len(vals) != len(trajectories):
            raise ValueError(
                f"reward {short(term.name)} returned {len(vals)} values for {len(trajectories)} trajectories"
            )
        raw[term.name] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in vals]
    weighted = {}
    for term in terms:
        gate = raw[term.gate] if term.gate else None
        weighted[term.name] = [
            None if v is None else (term.weight * v if gate is None or (gate[i] or 0.0) >= 1.0 else 0.0)
            for i, v in enumerate(raw[term.name])
        ]
    total = [sum(weighted[n][i] or 0.0 for n in names) for i in range(len(trajectories))]
    if write_meta:
        for i, t in enumerate(trajectories):
            t.meta["rewards"] = {n: weighted[n][i] for n in names} | {"total": total[i]}
    return Scores(weighted, raw, total)
