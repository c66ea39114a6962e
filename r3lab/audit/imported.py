"""The audit of an imported run (the official VLM-R3 evaluation, DeepEyes, verl agent loops, TRL completions, an r3lab
run), from its logs alone, and with a local policy the rest.

From the logs (`audit_log`, no model): per family the accuracy by r3lab's rule (the last <answer> against the
accepted answers, normalised), the answer rate, crop rate, crops and calls per answer, the refused-call rate, the
crop IoU and the share of boxes on a ground-truth region where the run names one, characters (and tokens where the
log holds ids) per answer and per correct answer; and one record per question (`questions.py`). Seconds are not in
the logs: the cost keys that need them stay NaN.

With a local policy (`audit_with_policy`): attention vs box on the imported trajectories (one teacher-forced forward
of the policy each), and every audit setting rolled out by the policy on the imported questions, set against the
run's own answers: meaningful when the policy is the model that wrote the run (its released checkpoint).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..core.regions import box_iou
from ..core.settings import short
from ..core.trajectory import MODEL
from ..data.sample import Sample
from ..evaluation.behaviour import load_run
from ..evaluation.chance import chance_of
from ..evaluation.questions import reward_hit, trajectory_records
from .audit import wilson
from .audit_run import AuditRun, run_audit

if TYPE_CHECKING:
    from ..model.policy import Policy

LOG_KEYS = (
    "n",
    "accuracy",
    "answered",
    "crop_rate",
    "crops",
    "calls",
    "refused_rate",
    "crop_iou",
    "box_on_region",
    "chars",
    "tokens",
    "chars_per_correct_own",
    "tokens_per_correct_own",
    "crops_per_correct_own",
    "chance",
)


def audit_log(trajectories: Sequence, iou: float = 0.5, images: bool = True) -> AuditRun:
    """Every audit number the logs hold, per family (and "all"), and one record per question; no model."""
    trajs = list(trajectories)
    if not trajs:
        raise ValueError("audit_log: the run holds no trajectories")
    hits = [reward_hit(t, t.model_text()) if t.answers else None for t in trajs]
    chance = chance_of([_Question(t) for t in trajs])
    groups = [t.family or "?" for t in trajs]
    rows = {}
    for fam in sorted(set(groups)) + ["all"]:
        idx = [i for i, g in enumerate(groups) if fam in ("all", g)]
        ts = [trajs[i] for i in idx]
        scored = [hits[i] for i in idx if hits[i] is not None]
        right = sum(h >= 0.5 for h in scored)
        calls = sum(len(t.events) for t in ts)
        ious = [_crop_iou(t) for t in ts]
        on = [b for t in ts for b in _boxes_on_region(t, iou)]
        chars = sum(len(t.model_text()) for t in ts)
        tokens = (
            sum(len(p.ids) for t in ts for p in t.pieces if p.kind == MODEL)
            if all(p.ids is not None for t in ts for p in t.pieces if p.kind == MODEL)
            else math.nan
        )
        crops = sum(len(t.crops) for t in ts)
        lo, hi = wilson(right, len(scored))
        box_lo, box_hi = wilson(sum(on), len(on))
        rows[fam] = {
            "n": len(ts),
            "accuracy": right / len(scored) if scored else math.nan,
            "accuracy_lo": lo,
            "accuracy_hi": hi,
            "answered": _mean([t.final_answer() is not None for t in ts]),
            "crop_rate": _mean([bool(t.crops) for t in ts]),
            "crops": crops / len(ts),
            "calls": calls / len(ts),
            "refused_rate": sum(not e.ok for t in ts for e in t.events) / calls if calls else math.nan,
            "crop_iou": _mean([v for v in ious if v is not None]),
            "box_on_region": _mean(on),
            "box_on_region_lo": box_lo,
            "box_on_region_hi": box_hi,
            "box_on_region_n": len(on),
            "chars": chars / len(ts),
            "tokens": tokens / len(ts),
            "chars_per_correct_own": chars / right if right else math.nan,
            "tokens_per_correct_own": tokens / right if right else math.nan,
            "crops_per_correct_own": crops / right if right else math.nan,
            "chance": _mean([chance.get(g, math.nan) for g in (groups[i] for i in idx)]),
        }
    return AuditRun(rows, trajectory_records(trajs, hits, images), {"own": trajs}, {"own": hits})


def load_trajectories(
    path, format: str = "auto", image_root=None, tokenizer=None, view=None, load_images: bool = True
) -> list:
    """The trajectories of a run (`behaviour.load_run`; an `r3lab eval` folder: its trajectories.jsonl), or a
    ValueError for a training log, which holds no questions."""
    path = Path(path)
    if format == "auto" and path.is_dir() and (path / "trajectories.jsonl").is_file():
        format = "r3lab"  # an evaluation folder holds results.json too, which reads as a set of evaluations
    trajs = load_run(path, format, image_root, tokenizer, view, load_images=load_images)
    if not isinstance(trajs, list):
        raise ValueError(
            f"{path} is a training log or a set of evaluations: it holds no questions (`r3lab dashboard "
            f"{path}` draws it)"
        )
    return trajs


def samples_of(trajectories: Sequence) -> list[Sample]:
    """The imported questions as samples a local policy can answer: main image, question, answers, regions."""
    out = []
    for t in trajectories:
        if t.main.image is None:
            raise ValueError(
                f"trajectory {short(t.sample_id)} was imported without its image: import with "
                "load_images=True to roll a policy out on it"
            )
        out.append(
            Sample(
                t.main.image,
                t.question,
                list(t.answers),
                list(t.gt_boxes),
                family=t.family or "?",
                sample_id=t.sample_id,
            )
        )
    return out


def audit_with_policy(
    policy: "Policy",
    trajectories: Sequence,
    audit=None,
    settings=None,
    batch_rows: int = 8,
    seed: int = 0,
    necessity: bool = False,
    progress=None,
) -> AuditRun:
    """`audit_log`'s numbers, then the rest with `policy`: attention vs box on the imported trajectories and every
    audit setting rolled out on their questions (`run_audit`, the run's own answers as the model's own)."""
    from ..engine.config import RolloutSettings

    trajs = [t.tokenize(policy) for t in trajectories]
    logs = audit_log(trajs)
    settings = settings or RolloutSettings.saved(policy, temperature=0.0)
    samples = [s for s, t in zip(samples_of(trajs), trajs) if t.answers]
    own = [t for t in trajs if t.answers]
    if not samples:
        raise ValueError("audit_with_policy: no imported question holds an accepted answer to score against")
    res = run_audit(
        policy, samples, own, settings, audit, batch_rows=batch_rows, seed=seed, necessity=necessity, progress=progress
    )
    for fam, row in logs.rows.items():
        res.rows.setdefault(fam, {}).update({k: v for k, v in row.items() if k not in res.rows[fam]})
    return res


class _Question:
    """What `chance_of` reads of a sample: family and accepted answers (an imported run is not the world's)."""

    def __init__(self, t):
        self.family, self.answers, self.provenance = t.family or "?", list(t.answers), {}


def _crop_iou(t) -> float | None:
    """Best IoU of the trajectory's crops with a ground-truth region (input frame), None without either."""
    if not t.gt_boxes or not t.crops:
        return None
    gts = [t.frame.to_input(b) for b in t.gt_boxes]
    return max(box_iou(p.info.box_input, g) for p in t.crops for g in gts if p.info.box_input is not None)


def _boxes_on_region(t, iou: float) -> list[bool]:
    """Per crop call with a box, whether it lands on a ground-truth region (IoU >= iou)."""
    if not t.gt_boxes:
        return []
    gts = [t.frame.to_input(b) for b in t.gt_boxes]
    return [max(box_iou(e.call.box, g) for g in gts) >= iou for e in t.events if e.call.box is not None]


def _mean(xs) -> float:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs) if xs else math.nan
