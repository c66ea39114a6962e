"""r3lab's reward functions in TRL's current signature, reading a tool-calling rollout.

TRL (huggingface/trl `GRPOTrainer._calculate_rewards`) calls each function as
`f(prompts=..., completions=..., completion_ids=..., **columns)`, where `completions` are message lists
(assistant turns and tool results), every dataset column arrives by name (`answers`, `gt_boxes` from
`to_trl_rows`), and `environments` holds each rollout's `CropEnvironment`. `trl_reward` turns that into
the columns r3lab's functions read (`r3lab.train.rewards`: final text, executed crop boxes in original
pixels, crop verdicts) and calls them unchanged, so a term means the same on both trainers.
"""

from __future__ import annotations

from typing import Sequence

from ..core.settings import short
from ..importers.trl import completion_text
from ..train import rewards as R
from ..train.rewards import RewardFunc, RewardSpec, RewardTerm, term_list


def rollout_columns(completions, environments=None, gt_boxes=None) -> dict:
    """The keyword columns r3lab's reward functions read, for a batch of TRL rollouts."""
    n = len(completions)
    envs = list(environments) if environments is not None else [None] * n
    return {
        "model_texts": [completion_text(c) for c in completions],
        "crop_boxes": [list(e.crop_boxes) if e is not None else [] for e in envs],
        "crop_verdicts": [list(e.verdicts) if e is not None else [] for e in envs],
        "gt_boxes": [[tuple(b) for b in (g or [])] for g in (gt_boxes if gt_boxes is not None else [[]] * n)],
    }


def trl_reward(func: RewardFunc, name: str | None = None) -> RewardFunc:
    """`func` (an r3lab reward function) as a TRL reward function named `name` (TRL logs `rewards/<name>`)."""

    def reward(prompts, completions, completion_ids=None, environments=None, gt_boxes=None, **columns):
        cols = rollout_columns(completions, environments, gt_boxes)
        texts = cols.pop("model_texts")
        return list(func(prompts, texts, model_texts=texts, **cols, **columns))

    reward.__name__ = reward.__qualname__ = name or func.__name__
    reward.__doc__ = f"r3lab's `{func.__name__}` on TRL rollouts (see r3lab.integrations.trl_rewards)."
    return reward


def reward_funcs(terms: str | RewardSpec | Sequence[RewardTerm] = "code") -> tuple[list[RewardFunc], list[float]]:
    """(reward functions, weights) for `GRPOTrainer(reward_funcs=..., args=GRPOConfig(reward_weights=...))`.

    TRL sums weighted terms and has no gate: a gated r3lab term (the region term on accuracy) becomes the
    product of the two, which is what the gate computes.
    """
    terms = term_list(terms)
    by_name = {t.name: t for t in terms}
    funcs, weights = [], []
    for t in terms:
        if t.gate is None:
            funcs.append(trl_reward(t.func, t.name))
        else:
            if t.gate not in by_name:
                raise ValueError(
                    f"term {short(t.name)} is gated by {short(t.gate)}, which is not among the terms "
                    f"{short(list(by_name))}"
                )
            funcs.append(trl_reward(_gated(t.func, by_name[t.gate].func), f"{t.name}_if_{t.gate}"))
        weights.append(float(t.weight))
    return funcs, weights


def _gated(func: RewardFunc, gate: RewardFunc) -> RewardFunc:
    def gated(prompts, completions, **kw):
        g = gate(prompts, completions, **kw)
        vals = func(prompts, completions, **kw)
        return [None if v is None else (v if (ok or 0.0) >= 1.0 else 0.0) for v, ok in zip(vals, g)]

    return gated


# the single terms, ready to pass to GRPOTrainer (format, accuracy with alternatives, region IoU / dense GIoU)
format_reward = trl_reward(R.format_answer, "format")
think_format_reward = trl_reward(R.format_think_answer, "think_format")
accuracy_reward = trl_reward(R.accuracy, "accuracy")
region_iou_reward = trl_reward(R.region_iou, "region_iou")
region_giou_reward = trl_reward(R.region_giou, "region_giou")
crop_valid_reward = trl_reward(R.region_valid, "crop_valid")
