"""Explaining many crops: greedy rollouts of a policy on samples, every crop of them explained, the faithfulness
summary. What `r3lab explain` runs; a notebook calls it the same way.

`explain_samples(policy, samples, config)` returns an `ExplainRun`; `.save(folder)` writes `records.jsonl`
(one JSON record per crop), `faithfulness.json` (`{"methods": {name: {"pointing_game", "deletion_auc",
"insertion_auc", "n"}}}` with a `random` entry) and `summary.json` (how many samples made no crop, which
methods were not available and why).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from tqdm.auto import tqdm

from ..core.env import progress_disabled
from ..core.files import atomic_write_text
from ..core.trajectory import Trajectory
from ..engine.config import RolloutConfig, RolloutSettings
from ..engine.rollouts import rollout
from .contract import CropRecord, WhyConfig
from .faithfulness import summarize
from .record import explain

if TYPE_CHECKING:
    from ..model.policy import Policy


@dataclass
class ExplainRun:
    """Every crop explained, the trajectories they come from and the faithfulness summary."""

    records: list[CropRecord]
    trajectories: list[Trajectory] = field(repr=False, default_factory=list)
    summary: dict = field(default_factory=dict)  # faithfulness.json
    info: dict = field(default_factory=dict)  # summary.json: samples, crops, skipped, not available

    def images(self) -> dict:
        """sample id -> main image (what the figures draw under the maps)."""
        return {t.sample_id: t.main.image for t in self.trajectories}

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "records.jsonl", "".join(json.dumps(r.to_dict()) + "\n" for r in self.records))
        atomic_write_text(folder / "faithfulness.json", json.dumps(self.summary, indent=2))
        atomic_write_text(folder / "summary.json", json.dumps(self.info, indent=2))
        return folder


def explain_trajectories(
    policy: "Policy", trajectories: Sequence[Trajectory], config: WhyConfig | None = None, progress: bool | None = None
) -> ExplainRun:
    """Explain every crop of `trajectories`; each one's "other" swap is the next trajectory's first crop."""
    cfg = config or WhyConfig()
    trajs = list(trajectories)
    with_crop = [t for t in trajs if t.crops]
    records, skipped = [], []
    bar = tqdm(trajs, desc="explain", disable=progress_disabled() if progress is None else not progress)
    for i, t in enumerate(bar):
        if not t.crop_events():
            skipped.append(t.sample_id)
            continue
        other = next((o for o in with_crop[i % max(1, len(with_crop)) :] + with_crop if o is not t), None)
        records += explain(policy, t, cfg, other=other)
    na = sorted(
        {
            f"{m}/{k}: {r.reason}"
            for rec in records
            for m, d in rec.methods.items()
            for k, r in d.items()
            if not r.available
        }
    )
    info = {
        "samples": len(trajs),
        "crops": len(records),
        "no_crop": len(skipped),
        "no_crop_samples": skipped[:50],
        "not_available": na,
        "landmarks": sum(r.landmark is not None for r in records),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
    }
    if not records:
        info["message"] = (
            f"none of the {len(trajs)} trajectories made a crop call: there is nothing to explain "
            "(a policy that never crops; try a checkpoint trained to crop or more samples)"
        )
    return ExplainRun(records, trajs, summarize(records), info)


def explain_samples(
    policy: "Policy",
    samples: Sequence,
    config: WhyConfig | None = None,
    rollout_settings: RolloutSettings | None = None,
    progress: bool | None = None,
) -> ExplainRun:
    """Greedy rollouts of `policy` on `samples` (its checkpoint's evaluation settings unless given), then
    `explain_trajectories`."""
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to explain")
    settings = rollout_settings or RolloutSettings.saved(policy, temperature=0.0)
    trajs = rollout(policy, samples, RolloutConfig.of(settings, group_size=1), progress=progress)
    for t, s in zip(trajs, samples):  # ground truth rides along for the pointing game
        t.sample_id = t.sample_id or s.sample_id
    return explain_trajectories(policy, trajs, config, progress)


def mean_effects(records: Sequence[CropRecord], key: str = "crop:blank", target: str = "read") -> dict:
    """patch_layers' effect on `target` averaged over the records that have it, level by level:
    {"levels": [...], "effect": [...], "n": records}; `key`: "crop:blank" | "crop:coarse" | "crop:other" |
    "region:blank"."""
    rows = [r.result("patch_layers", None) for r in records]
    got = [
        x.data[key] for x in rows if x is not None and x.available and target in x.data.get(key, {}).get("effect", {})
    ]
    if not got:
        return {"levels": [], "effect": [], "n": 0}
    eff = torch.tensor([g["effect"][target] for g in got]).mean(0)
    return {"levels": got[0]["levels"], "effect": eff.tolist(), "n": len(got)}


def lens_summary(records: Sequence[CropRecord]) -> dict:
    """The logit lens over every box digit: how many became the top prediction for good ("settled"), at which
    layer on average, how many after each layer (`by_layer`, layer -> count), and the decoder's depth."""
    rows = [r.result("logit_lens", "box") for r in records]
    settled = [s for x in rows if x is not None and x.available for s in x.data["settled"]]
    done = [s for s in settled if s is not None]
    depth = next((len(x.data["rank"][0]) for x in rows if x is not None and x.available and x.data["rank"]), 0)
    return {
        "digits": len(settled),
        "settled": len(done),
        "mean_layer": sum(done) / len(done) if done else None,
        "layers": depth,
        "by_layer": {layer: done.count(layer) for layer in range(depth)},
    }
