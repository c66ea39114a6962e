"""Did the tool matter? Tool necessity per task family, from the same samples rolled out under ablations.

Beside the model's own crops (the evaluation itself), the samples are rolled out again greedily with crops
disabled (max_crops = 0), and with every crop the model asks for swapped by the environment: a blank view,
the coarse view (the region of the image the model already had, blown up: no new detail), a random box of
the ground-truth region's size, the ground-truth box (the model still decides *when* to crop and what to
write; the environment decides what the crop shows). Keys added to each family's row of `results.json`:

- `acc_own`, `acc_no_crop`, `acc_blank`, `acc_coarse`, `acc_random_box`, `acc_gt_box`: accuracies;
- `tool_gain`: share of samples wrong without crops and right with the model's own; `tool_harm`: right
  without, wrong with (Tool-Gain / Tool-Harm);
- `crop_rate_need` / `crop_rate_no_need`: the model's crop rate on questions that need a crop (a family other
  than `control`, with a ground-truth region) and on those that do not (mode adaptiveness);
- `zooming_gap`: `acc_gt_box - acc_no_crop`, what zooming into the right place is worth over the whole image.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from ..engine.config import RolloutConfig, RolloutSettings
from ..engine.rollouts import rollout
from ..explain.crops import variant_image
from ..train.metrics import rollout_values
from ..train.rewards import score
from .ablations import oracle_boxes, random_boxes

if TYPE_CHECKING:
    from ..model.policy import Policy

VARIANTS = ("no_crop", "blank", "coarse", "random_box", "gt_box")
KEYS = ("acc_own", *(f"acc_{v}" for v in VARIANTS), "tool_gain", "tool_harm", "crop_rate_need", "crop_rate_no_need",
        "zooming_gap")


def needs_crop(sample) -> bool:
    """Whether a question needs a crop: a ground-truth region and a family other than `control`."""
    return bool(getattr(sample, "regions", None)) and getattr(sample, "family", "") != "control"


def ablation_rollouts(policy: "Policy", samples: Sequence, settings: RolloutSettings, batch_rows: int = 32,
                      seed: int = 0, progress=None) -> dict[str, list]:
    """The samples rolled out under each ablation of `VARIANTS` (greedy unless `settings` say otherwise)."""
    view = policy.view

    def swap(kind):
        return lambda sample, k, piece, traj: variant_image(kind, traj, piece, view)

    def run(settings_, **kw):
        cfg = RolloutConfig.of(settings_, group_size=1, batch_rows=batch_rows, seed=seed)
        return rollout(policy, list(samples), cfg, progress=progress, **kw)

    off = replace(settings, max_crops=0)
    return {"no_crop": run(off), "blank": run(settings, crop_images=swap("blank")),
            "coarse": run(settings, crop_images=swap("coarse")),
            "random_box": run(settings, crop_boxes=random_boxes(view, seed)),
            "gt_box": run(settings, crop_boxes=oracle_boxes(view))}


def necessity_rows(samples: Sequence, own: Sequence, ablations: dict[str, list], terms="code") -> dict[str, dict]:
    """Per family (and "all"), the keys of `KEYS` from the model's own trajectories and the ablations' (each one
    trajectory per sample, in the samples' order)."""
    samples = list(samples)
    acc = {"own": _accuracy(own, terms), **{v: _accuracy(ablations[v], terms) for v in VARIANTS if v in ablations}}
    fams = sorted({getattr(s, "family", "") or "?" for s in samples})
    rows = {}
    for fam in fams + ["all"]:
        idx = [i for i, s in enumerate(samples) if fam == "all" or (getattr(s, "family", "") or "?") == fam]
        row = {f"acc_{k}": _mean([a[i] for i in idx]) for k, a in acc.items()}
        if "no_crop" in acc:
            row["tool_gain"] = _mean([float(acc["no_crop"][i] < 0.5 <= acc["own"][i]) for i in idx])
            row["tool_harm"] = _mean([float(acc["own"][i] < 0.5 <= acc["no_crop"][i]) for i in idx])
        need = [i for i in idx if needs_crop(samples[i])]
        free = [i for i in idx if not needs_crop(samples[i])]
        row["crop_rate_need"] = _mean([float(bool(own[i].crops)) for i in need])
        row["crop_rate_no_need"] = _mean([float(bool(own[i].crops)) for i in free])
        row["zooming_gap"] = (row["acc_gt_box"] - row["acc_no_crop"]) if "gt_box" in acc and "no_crop" in acc \
            else math.nan
        rows[fam] = row
    return rows


def _accuracy(trajs: Sequence, terms) -> list[float]:
    vals = rollout_values(list(trajs), score(list(trajs), terms))
    if vals and vals[0]["accuracy"] is None:
        raise ValueError("tool necessity needs an accuracy term in the reward (RewardSpec): none was scored")
    return [float(v["accuracy"]) for v in vals]


def _mean(xs) -> float:
    return sum(xs) / len(xs) if xs else math.nan
