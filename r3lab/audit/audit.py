"""Did the crop matter? The 2026 audit protocols as rollout variants through the same engine (exact, batched).

Beside the model's own rollout (and tool necessity's swaps, `necessity.py`), the samples are rolled out again:

- `format_only` (arXiv 2606.02357): every accepted crop call is answered with the image markers alone
  (`<|vision_start|><|vision_end|>`), no pixels: what the ritual of calling is worth;
- `dummy_crop` (arXiv 2605.18445, 2606.01287): the crop's image tokens replaced by as many copies of one fixed
  dummy token (the pad token, as text: no vision tower) between the markers: the slots without content;
- `result_only` (2606.02357): the crops the model took in its own rollout given up front, as more images after
  the main one, and no crop call allowed: the pixels without the act;
- `no_crop`: greedy with crops disabled, and `majority_no_crop`: the majority of `k` sampled answers with crops
  disabled (ties to the answer written first), the two tool-free settings of the tool-only solved set.

Keys per family (`audit_table`): `acc_<setting>` with `acc_<setting>_chance`, the chance level of a uniform guess;
`pass_at_k_no_crop` (any of the k right) with its chance `1 - (1 - c)^k`, which on a small answer set nears 1
by guessing (yes / no, k = 5: 0.97): the reason the tool-only set uses the majority, never pass@k; `tool_only`
(share of samples solved with the model's own crops and by no tool-free setting) and `also_solved_without` (share
of those it solves with crops that a tool-free setting solves too: the 93-96 % of the paper), each with the
value a guessing model would get. Cost keys are `cost.py`'s; attention vs box per crop, `explain.attention_box`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Sequence

from ..core.trajectory import IMAGE, Piece
from ..engine.config import RolloutConfig, RolloutSettings
from ..engine.rollouts import rollout
from ..evaluation.audit_settings import AuditSettings
from ..train.rewards import normalize_answer

if TYPE_CHECKING:
    from ..model.policy import Policy

AUDIT_TABLE = (
    "n",
    "accuracy",
    "chance",
    "acc_format_only",
    "acc_dummy_crop",
    "acc_result_only",
    "acc_no_crop",
    "acc_majority_no_crop",
    "pass_at_k_no_crop",
    "tool_only",
    "also_solved_without",
    "attn_box_both",
    "attn_box_attention_only",
    "attn_box_box_only",
    "attn_box_neither",
    "tokens_per_correct_own",
)
SETTINGS = ("format_only", "dummy_crop", "result_only", "no_crop", "majority_no_crop")
TOOL_FREE = ("no_crop", "majority_no_crop")  # the settings without crops the tool-only solved set is checked against
WHAT = {  # what each setting shows the model where its own rollout shows a crop (the report's legend)
    "own": "its own crops",
    "format_only": "the call answered with the image markers only, no pixels",
    "dummy_crop": "the crop's image tokens replaced by one fixed dummy token, as many",
    "result_only": "its own crops given up front, no call allowed",
    "no_crop": "no crops (greedy)",
    "majority_no_crop": "no crops, the majority of k sampled answers",
    "blank": "each crop swapped for a blank view",
    "coarse": "each crop swapped for the coarse view of its region",
    "random_box": "each crop cut at a random box of the region's size",
    "gt_box": "each crop cut at the ground-truth box",
}


def markers_only(policy: "Policy") -> Callable:
    """`rollout(crop_ids=...)`: each accepted call answered with the image's markers and nothing between."""
    ids = [policy.vision_start_id, policy.vision_end_id]
    return lambda sample, k, piece, traj: ids


def dummy_tokens(policy: "Policy", token: int | None = None) -> Callable:
    """`rollout(crop_ids=...)`: the crop's image tokens with every image pad replaced by `token` (default the pad
    token): the same count of slots between the same markers, no pixels."""
    dummy = policy.pad_id if token is None else int(token)

    def ids(sample, k, piece, traj):
        w, h = piece.info.input_size
        grid = (1, h // policy.patch_size, w // policy.patch_size)
        return [dummy if t == policy.image_token_id else t for t in policy.image_ids(grid)]

    return ids


class GivenCrops:
    """A sample whose prompt shows `crops` (image pieces of another rollout) right after its main image."""

    def __init__(self, sample, crops: Sequence[Piece]):
        self.sample, self.crops = sample, list(crops)

    def __getattr__(self, name):
        return getattr(self.sample, name)

    def prompt(self, view, prompt=None):
        traj = self.sample.prompt(view, prompt)
        at = next(i for i, p in enumerate(traj.pieces) if p.kind == IMAGE) + 1
        traj.pieces[at:at] = [
            Piece(IMAGE, image=p.image, info=replace(p.info, role="given", grid_thw=None), tag="given")
            for p in self.crops
        ]
        return traj


def audit_rollouts(
    policy: "Policy",
    samples: Sequence,
    own: Sequence,
    settings: RolloutSettings,
    audit: AuditSettings | None = None,
    batch_rows: int = 32,
    seed: int = 0,
    progress=None,
    only: Sequence[str] = SETTINGS,
    scripts=None,
) -> dict[str, list]:
    """The samples rolled out under each setting of `only` (`SETTINGS`), one trajectory per sample (majority_no_crop:
    a list of k per sample); own: the model's own trajectories, one per sample (result_only shows their crops)."""
    if bad := sorted(set(only) - set(SETTINGS)):
        raise ValueError(f"unknown audit setting(s) {bad}; choose from {list(SETTINGS)}")
    audit = audit or AuditSettings()
    samples = list(samples)

    def run(s, data=samples, group=1, **kw):
        cfg = RolloutConfig.of(s, group_size=group, batch_rows=max(batch_rows, group), seed=seed)
        return rollout(policy, list(data), cfg, progress=progress, scripts=scripts, **kw)

    off = replace(settings, max_crops=0)
    how = {
        "format_only": lambda: run(settings, crop_ids=markers_only(policy)),
        "dummy_crop": lambda: run(settings, crop_ids=dummy_tokens(policy)),
        "result_only": lambda: run(off, [GivenCrops(s, t.crops) for s, t in zip(samples, own)]),
        "no_crop": lambda: run(off),
        "majority_no_crop": lambda: _per_sample(
            run(replace(off, temperature=audit.temperature), group=audit.k), audit.k
        ),
    }
    return {v: how[v]() for v in only}


def _per_sample(trajs: list, k: int) -> list[list]:
    return [trajs[i : i + k] for i in range(0, len(trajs), k)]


def majority(answers: Sequence[str | None]) -> str | None:
    """The most frequent answer after normalisation (ties: the one written first); None when none answered."""
    keys = [normalize_answer(a) if a is not None else None for a in answers]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a, k in zip(answers, keys) if k is not None and counts[k] == top)


def audit_table(groups: Sequence[str], acc: dict[str, Sequence], k: int, chance: dict[str, float]) -> dict[str, dict]:
    """The audit keys per group (and "all") from per-sample numbers, however they were scored.

    acc: "own" and each setting of `SETTINGS` run -> per-sample accuracy (None: not run on that sample);
    "pass_at_k_no_crop" -> per-sample 1 / 0 (any of the k sampled answers right). chance: per group, a uniform
    guess's accuracy ("all": the samples' mean)."""
    n = len(groups)
    if "own" not in acc or any(len(a) != n for a in acc.values()):
        raise ValueError(f"audit_table needs acc['own'] and one entry per sample ({n}) in every list")
    per = [chance.get(g, math.nan) for g in groups]
    rows = {}
    for fam in sorted(set(groups)) + ["all"]:
        idx = [i for i, g in enumerate(groups) if fam == "all" or g == fam]
        c = _mean([per[i] for i in idx])
        row = {"chance": c}
        for key in (*SETTINGS, "pass_at_k_no_crop"):
            name = key if key.startswith("pass") else f"acc_{key}"
            vals = [acc[key][i] for i in idx if acc[key][i] is not None] if key in acc else []
            row[name] = _mean(vals)
            row[f"{name}_lo"], row[f"{name}_hi"] = wilson(sum(v >= 0.5 for v in vals), len(vals))
            row[f"{name}_chance"] = 1 - (1 - c) ** k if key.startswith("pass") else c
        free = [s for s in TOOL_FREE if s in acc]
        if len(free) == len(TOOL_FREE):
            on = [i for i in idx if acc["own"][i] is not None and all(acc[s][i] is not None for s in free)]
            without = {i: any(acc[s][i] >= 0.5 for s in free) for i in on}
            solved = [i for i in on if acc["own"][i] >= 0.5]
            only = [i for i in solved if not without[i]]
            lo, hi = wilson(len(only), len(on))
            also_lo, also_hi = wilson(len(solved) - len(only), len(solved))
            row.update(
                tool_only=len(only) / len(on) if on else math.nan,
                tool_only_lo=lo,
                tool_only_hi=hi,
                tool_only_n=len(only),
                solved_own_n=len(solved),
                also_solved_without=1 - len(only) / len(solved) if solved else math.nan,
                also_solved_without_lo=also_lo,
                also_solved_without_hi=also_hi,
                tool_only_chance=c * (1 - c) ** len(free),
                also_solved_without_chance=1 - (1 - c) ** len(free),
            )
        rows[fam] = row
    return rows


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion k / n (NaN, NaN when n is 0): right at 0 and 1, where a
    bootstrap of a few hundred all-right answers collapses to a point."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    den = 1 + z * z / n
    return max(0.0, (mid - half) / den), min(1.0, (mid + half) / den)


def _mean(xs) -> float:
    xs = [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else math.nan
