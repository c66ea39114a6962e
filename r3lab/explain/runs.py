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

from tqdm.auto import tqdm

from ..core.env import progress_disabled
from ..core.files import atomic_write_text
from ..core.trajectory import Trajectory
from ..engine.config import RolloutConfig, RolloutSettings
from ..engine.rollouts import rollout
from .faithfulness import summarize
from .record import CropRecord, WhyConfig, explain

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


def explain_trajectories(policy: "Policy", trajectories: Sequence[Trajectory], config: WhyConfig | None = None,
                         progress: bool | None = None) -> ExplainRun:
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
        other = next((o for o in with_crop[i % max(1, len(with_crop)):] + with_crop if o is not t), None)
        records += explain(policy, t, cfg, other=other)
    na = sorted({f"{m}/{k}: {r.reason}" for rec in records for m, d in rec.methods.items() for k, r in d.items()
                 if not r.available})
    info = {"samples": len(trajs), "crops": len(records), "no_crop": len(skipped), "no_crop_samples": skipped[:50],
            "not_available": na, "landmarks": sum(r.landmark is not None for r in records),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}}
    if not records:
        info["message"] = (f"none of the {len(trajs)} trajectories made a crop call: there is nothing to explain "
                           "(a policy that never crops; try a checkpoint trained to crop or more samples)")
    return ExplainRun(records, trajs, summarize(records), info)


def explain_samples(policy: "Policy", samples: Sequence, config: WhyConfig | None = None,
                    rollout_settings: RolloutSettings | None = None, progress: bool | None = None) -> ExplainRun:
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


def crop_table(records: Sequence[CropRecord], target: str = "box") -> str:
    """One markdown line per crop: IoU with the landmark, whether each map method's hottest cell is on it
    (yes / no / - where not available), the read's drop with a blank crop at the input, and the box digits the
    logit lens sees settle."""
    from .faithfulness import pointing_game
    from .record import MAP_METHODS

    head = ["sample", "crop", "IoU"] + [m.replace("_", " ") for m in MAP_METHODS] + ["read drop (blank)", "digits settled"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        marks = ["-" if r.map(m, target) is None or r.landmark is None else
                 ("yes" if pointing_game(r.map(m, target), r.landmark, r.cell) else "no") for m in MAP_METHODS]
        pl, lens = r.result("patch_layers", None), r.result("logit_lens", "box")
        fx = (pl.data.get("crop:blank", {}).get("effect", {}).get("read") if pl is not None and pl.available else None)
        settled = (f"{sum(s is not None for s in lens.data['settled'])}/{len(lens.data['settled'])}"
                   if lens is not None and lens.available else "-")
        iou = "-" if r.gt_iou is None else f"{r.gt_iou:.2f}"
        drop = "-" if not fx else f"{fx[0]:+.2f}"
        lines.append(f"| {r.sample_id} | {r.event + 1} | {iou} | " + " | ".join(marks) + f" | {drop} | {settled} |")
    return "\n".join(lines)
