"""Per-question scores of an evaluation folder (scores.json beside its results.json), so runs compare question by
question: each trajectory's values as `r3lab eval` averages them (`r3lab.train.metrics.rollout_values`, the
evaluation's own reward), keyed by sample id.

`python -m r3lab.sweep.scores EVAL_DIR` is a sweep run's last step; a run's mean over its questions is the
evaluation's own number (tests/sweep/test_scores.py holds them equal).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from ..core.files import atomic_write_text, read_text

SCORES = "scores.json"
# the evaluation's numbers that are means over questions (crop_iou over the questions that cropped): these compare
# question by question; every other key of results.json compares run by run
PER_QUESTION = ("accuracy", "crop_rate", "crops", "crop_iou", "answered", "tokens", "reward")


def question_scores(eval_dir: str | os.PathLike) -> list[dict]:
    """One record per evaluated question: sample_id, family and the PER_QUESTION values (crop_iou None where the
    question made no crop or has no region)."""
    from ..core.trajectory import Trajectory  # torch: only where a run's scores are made, not where they are read
    from ..train.metrics import rollout_values
    from ..train.rewards import RewardSpec, score

    folder = Path(eval_dir)
    results = json.loads(read_text(folder / "results.json"))
    trajs = [
        Trajectory.from_dict(json.loads(ln))
        for ln in read_text(folder / "trajectories.jsonl").splitlines()
        if ln.strip()
    ]
    spec = RewardSpec(**(results.get("config") or {}).get("reward", {}))
    values = rollout_values(trajs, score(trajs, spec.terms(), write_meta=False))
    out = []
    for t, v in zip(trajs, values):
        out.append(
            {
                "sample_id": str(t.sample_id),
                "family": t.family or "?",
                "accuracy": None if v["accuracy"] is None else float(v["accuracy"]),
                "crop_rate": float(bool(v["crops"])),
                "crops": float(v["crops"]),
                "crop_iou": v["crop_iou"] if v["crop_iou"] is None or math.isfinite(v["crop_iou"]) else None,
                "answered": float(v["answered"]),
                "tokens": float(v["tokens"]),
                "reward": float(v["reward"]),
            }
        )
    return out


def write_scores(eval_dir: str | os.PathLike) -> Path:
    path = Path(eval_dir) / SCORES
    atomic_write_text(path, json.dumps({"questions": question_scores(eval_dir)}))
    return path


def read_scores(eval_dir: str | os.PathLike) -> list[dict]:
    path = Path(eval_dir) / SCORES
    try:
        return json.loads(read_text(path))["questions"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is not a sweep's scores file ({e}); rerun that run (delete its status.json)"
        ) from None


if __name__ == "__main__":
    print(f"wrote {write_scores(sys.argv[1])}")
