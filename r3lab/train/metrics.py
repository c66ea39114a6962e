"""Training metrics: the log (one dict per step, saved as JSONL) and what a batch of rollouts scored.

`rollout_metrics` is the one computation of reward, accuracy, crop behaviour, crop IoU, answer rate
and length over trajectories: R-GRPO logs it every step (summed over processes), evaluation reports
it per task family. The figures of a log are `r3lab.viz.training`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..core.files import atomic_write_text, read_text
from ..core.trajectory import MODEL, Trajectory
from .rewards import Scores, region_iou, reward_columns


class MetricLog:
    """Rows of `{"step": int, key: float, ...}` in the order they were logged."""

    def __init__(self, rows: Iterable[dict] | None = None, settings: dict | None = None, resumed_at: int | None = None):
        self.rows: list[dict] = [dict(r) for r in rows or []]
        self.interrupted = False  # set by the training loop when Ctrl-C ended the run before its last step
        self.settings = settings  # the run's config (its fields), set by the training loop
        self.resumed_at = resumed_at  # the step the run continued from a checkpoint (None: it started there)

    def log(self, step: int, **values) -> dict:
        row = {"step": int(step)}
        for k, v in values.items():
            row[k] = _plain(v)
        self.rows.append(row)
        return row

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and values of one metric (rows without it, or with NaN, are skipped)."""
        xs, ys = [], []
        for r in self.rows:
            v = r.get(key)
            if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                xs.append(r["step"])
                ys.append(float(v))
        return xs, ys

    def mean(self, key: str, last: int | None = None) -> float:
        ys = self.series(key)[1]
        ys = ys[-last:] if last else ys
        return sum(ys) / len(ys) if ys else float("nan")

    # -- persistence ---------------------------------------------------------------------------
    def save_jsonl(self, path: str | os.PathLike) -> Path:
        """Write one JSON object per line, atomically (temp file + rename)."""
        return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in self.rows))

    @classmethod
    def load_jsonl(cls, path: str | os.PathLike) -> "MetricLog":
        rows = []
        for n, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise ValueError(f"{path}:{n} is not a JSON object ({e})") from None
        return cls(rows)


def _plain(v):
    if hasattr(v, "item") and getattr(v, "numel", lambda: 1)() == 1:
        v = v.item()
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    v = float(v)
    return None if math.isnan(v) else v  # "not measured this step": null in JSONL


def rollout_values(trajectories: Sequence[Trajectory], scores: Scores) -> list[dict]:
    """Per trajectory, what the batch metrics average; `crop_iou` is None unless it has a ground-truth
    region and made a crop, `accuracy` None when the scores have no accuracy term."""
    cols = reward_columns(trajectories)
    ious = region_iou(None, [""] * len(trajectories), cols["gt_boxes"], cols["crop_boxes"])
    acc = scores.raw.get("accuracy")
    return [
        {
            "reward": scores.total[i],
            "accuracy": None if acc is None else acc[i] or 0.0,
            "crops": len(t.crops),
            "calls": len(t.events),
            "refused": sum(not e.ok for e in t.events),
            "crop_iou": ious[i] if ious[i] is not None and cols["crop_boxes"][i] else None,
            "answered": t.final_answer() is not None,
            "tokens": sum(len(p.ids or []) for p in t.pieces if p.kind == MODEL),
        }
        for i, t in enumerate(trajectories)
    ]


def rollout_metrics(values: Sequence[dict], total: Callable[[float], float] = float) -> dict[str, float]:
    """Means over a batch of `rollout_values`: per trajectory, except `invalid_crop_rate` (per crop call)
    and `crop_iou` (over the trajectories that have a ground-truth region and cropped: a trajectory
    without a crop has no box to score). `total` sums over processes (`dist.all_sum`); NaN where
    nothing was measured. Keys: n, reward, accuracy, accuracy_crop and accuracy_no_crop (with an
    accuracy term: over all trajectories, those that cropped, those that did not), crop_rate, crops,
    invalid_crop_rate, crop_iou, answered, tokens."""

    def mean(key, rows=values, per=None):
        num, den = total(sum(v[key] for v in rows)), total(per if per is not None else len(rows))
        return num / den if den else math.nan

    n = total(len(values))
    out = {"n": len(values), "reward": mean("reward")}
    if values and values[0]["accuracy"] is not None:
        out["accuracy"] = mean("accuracy")
        out["accuracy_crop"] = mean("accuracy", [v for v in values if v["crops"]])  # NaN: no trajectory cropped
        out["accuracy_no_crop"] = mean("accuracy", [v for v in values if not v["crops"]])
    calls = total(sum(v["calls"] for v in values))
    scored = [v for v in values if v["crop_iou"] is not None]
    out.update(
        crop_rate=total(sum(bool(v["crops"]) for v in values)) / n if n else math.nan,
        crops=mean("crops"),
        invalid_crop_rate=total(sum(v["refused"] for v in values)) / calls if calls else 0.0,
        crop_iou=mean("crop_iou", scored),
        answered=mean("answered"),
        tokens=mean("tokens"),
    )
    return out


def mismatch_sums(logp, sampled, mask, eps_low: float, eps_high: float) -> dict[str, float]:
    """How far a training forward's log-probs (before the update) are from those recorded at sampling, over the
    tokens where `mask` is set and a log-prob was recorded: sums of |d| (d = trainer - sampler), of the k3 estimate
    exp(d) - 1 - d of KL(sampler || trainer), of importance ratios exp(d) outside [1 - eps_low, 1 + eps_high], the
    token count and the largest |d|. Zero up to rounding when both run the same weights in float32."""
    keep = mask & (sampled == sampled)  # NaN: no log-prob was recorded there
    d = (logp.detach().double() - sampled.double())[keep]  # float64: k3 of a 1e-6 gap is 5e-13
    if not d.numel():
        return {"abs": 0.0, "kl": 0.0, "clipped": 0.0, "tokens": 0.0, "max": 0.0}
    r = d.exp()
    return {
        "abs": float(d.abs().sum()),
        "kl": float((d.expm1() - d).sum()),
        "tokens": float(d.numel()),
        "clipped": float(((r < 1 - eps_low) | (r > 1 + eps_high)).sum()),
        "max": float(d.abs().max()),
    }


def mismatch_metrics(
    sums: Sequence[dict], total: Callable[[float], float] = float, top: Callable[[float], float] = float
) -> dict[str, float]:
    """The rollout-trainer mismatch R-GRPO logs every step, from `mismatch_sums` of each batch (`total` sums over
    processes, `top` takes the maximum over them): mean and max |d log p|, the KL estimate per token and the share
    of importance ratios outside the clip."""
    tok = total(sum(s["tokens"] for s in sums))
    mean = (lambda key: total(sum(s[key] for s in sums)) / tok) if tok else (lambda key: math.nan)
    return {
        "mismatch/abs_mean": mean("abs"),
        "mismatch/abs_max": top(max((s["max"] for s in sums), default=0.0)),
        "mismatch/kl": mean("kl"),
        "mismatch/clip_share": mean("clipped"),
    }
