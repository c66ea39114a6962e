"""A miniature finished sweep, in `r3lab sweep`'s exact folder format, without running anything: for the report's
tests and benchmarks/sweep.py (100 points x 3 seeds of a report built in seconds).

Each point's accuracy on each question is drawn around `base + effect * (point index)`, so a sweep has a known
trend; crop IoU is set where a question cropped (and left empty where it did not, as `r3lab eval` leaves it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..sweep.folder import prepare
from ..sweep.scores import SCORES
from ..sweep.spec import spec_from_dict
from ..sweep.status import RunStatus, write_status

FAMILIES = ("read_one", "compare_two", "control")
CHANCE = {"read_one": 0.2, "compare_two": 0.5, "control": 0.5}


def write_mini_sweep(
    folder: str | Path,
    values: list | None = None,
    seeds: tuple = (0, 1, 2),
    questions: int = 30,
    base: float = 0.5,
    effect: float = 0.2,
    setting: str = "reward-region-weight",
    failed: int = 0,
    seed: int = 0,
    label: str = "",
) -> Path:
    """A finished `train rgrpo` sweep over `setting` x `seeds` in `folder`, `questions` held-out questions a run;
    the last `failed` runs failed (exit code 1 with an error line). `label`: text put in the spec's settings (a
    page must show it escaped)."""
    values = list(values if values is not None else [0.0, 1.0])
    spec = spec_from_dict(
        {
            "command": "train rgrpo",
            "settings": {"data": "runs/train-set", "steps": 20, **({"reward-preset": label} if label else {})},
            "grid": {setting: values},
            "seeds": list(seeds),
            "eval": {"data": "runs/held-out", "n": questions},
            "baseline": {setting: values[0]},
        }
    )
    runs, _ = prepare(
        folder, spec, extra={"facts": {"families": list(FAMILIES), "chance": dict(CHANCE), "questions": questions}}
    )
    rng = np.random.default_rng(seed)
    ids = [(f"{FAMILIES[i % 3]}-{i:05d}", FAMILIES[i % 3]) for i in range(questions)]
    hard = rng.random(questions)  # a question's difficulty, shared by every run: what pairing removes
    for k, (run, d) in enumerate(runs):
        if k >= len(runs) - failed:
            write_status(
                d,
                RunStatus(
                    "failed",
                    cause="exit code 2",
                    error="error: the run's data is not a dataset",
                    exit_code=2,
                    step="train",
                    attempts=1,
                    seconds=1.5,
                    host="mini",
                ),
            )
            continue
        level = base + effect * values.index(run.point[setting]) / max(1, len(values) - 1)
        level += rng.normal(0, 0.03)  # the seed's own luck
        qs = []
        for (sid, fam), h in zip(ids, hard):
            right = float(h < level + rng.normal(0, 0.1))
            cropped = fam != "control"
            qs.append(
                {
                    "sample_id": sid,
                    "family": fam,
                    "accuracy": right,
                    "crop_rate": float(cropped),
                    "crops": float(cropped),
                    "crop_iou": float(np.clip(rng.normal(0.8, 0.05), 0, 1)) if cropped else None,
                    "answered": 1.0,
                    "tokens": 40.0,
                    "reward": 1.0 + right,
                }
            )
        (d / "eval").mkdir(parents=True, exist_ok=True)
        (d / "eval" / SCORES).write_text(json.dumps({"questions": qs}))
        rows = {
            f: {
                "n": sum(q["family"] == f for q in qs),
                "accuracy": float(np.mean([q["accuracy"] for q in qs if q["family"] == f])),
            }
            for f in FAMILIES
        }
        (d / "eval" / "results.json").write_text(json.dumps({"rows": rows, "complete": True}))
        write_status(
            d,
            RunStatus(
                "done",
                exit_code=0,
                steps_done=["train", "eval", "scores"],
                attempts=1,
                seconds=float(round(20 + rng.random() * 5, 2)),
                host="mini",
            ),
        )
    return Path(folder)
