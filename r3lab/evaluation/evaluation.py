"""Held-out evaluation: one (greedy) rollout per sample, scored by rules, summarised per task family.

`evaluate(policy, samples)` returns an `EvalResult` with per-family accuracy, crop rate, crops per
answer, invalid-crop rate, crop IoU against the ground-truth regions, share of crops holding a detail,
answer rate, length and
reward (`r3lab.train.metrics.rollout_metrics`, the numbers R-GRPO logs) with bootstrap intervals on
accuracy and crop IoU; `.table()` prints it, `r3lab.viz.results.plot_results({...})` sets several results side
by side (SFT vs R-GRPO vs a model that cannot crop: `rollout={"max_crops": 0}`).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..core.files import atomic_write_text
from ..core.settings import SEED, WHY, check_ranges, nested, read_nested
from ..core.trajectory import Trajectory
from ..data.sample import Sample
from ..engine.config import ENGINE, RolloutConfig, RolloutSettings
from ..engine.rollouts import rollout
from ..model.policy import Policy
from ..train import dist
from ..train.checkpoint import nonfinite_parameters
from ..train.loop import MAX_ROWS
from ..train.metrics import rollout_metrics, rollout_values
from ..train.rewards import RewardSpec, score
from .audit_settings import AuditSettings
from .cost import VisionClock
from .necessity import ablation_rollouts, necessity_rows
from .questions import nan_to_none, reward_hit, save_questions, trajectory_records

# more rollouts after the model's own (the audit's, `r3lab.audit.eval_audit`): (policy, samples, their own trajectories,
# each one's seconds) -> (keys per family, one record per question)
Extras = Callable[[Policy, list, list, list], tuple[dict, list]]

METRICS = (
    "n",
    "accuracy",
    "crop_rate",
    "crops",
    "invalid_crop_rate",
    "crop_iou",
    "contains_detail",
    "answered",
    "tokens",
    "reward",
)


# r3lab.json files written before the rollout settings were nested hold these at the top of "evaluation"
_FLAT = ("max_crops", "max_new_tokens", "max_segment_tokens", "temperature", "top_p")


@dataclass
class EvalConfig:
    """What `evaluate` generates and how it scores."""

    data: str = ""
    """dataset folder or samples.jsonl (CLI); notebooks pass samples directly"""
    n: int = 0
    """evaluate the first n samples (0 = all)"""
    rollout: RolloutSettings = nested(RolloutSettings, temperature=0.0)
    """crops (0: the no-crop baseline), token budgets, greedy"""
    reward: RewardSpec = nested(RewardSpec, "reward-")
    """the reward reported alongside accuracy"""
    batch_rows: int = 32
    """trajectories decoded together"""
    seed: int = 0
    """sampling seed when temperature > 0"""
    out: str = ""
    """CLI: write results.json (and trajectories.jsonl) into this folder"""
    # five more rollouts of the samples (r3lab.evaluation.necessity)
    necessity: bool = False
    """tool necessity: accuracy with crops disabled / swapped (blank, coarse, random box, ground-truth box), tool_gain,
    tool_harm, crop rate on need / no-need questions, zooming_gap in every family's row"""
    # five more settings rolled out (r3lab.audit.eval_audit), attention vs box per crop, cost per correct answer
    audit: bool = False
    """the 2026 audit: format-only, dummy crop, result-only, no crops (greedy and a majority of k sampled), the
    tool-only solved set, attention vs box, cost per correct answer, each with its chance level"""
    audit_settings: AuditSettings = nested(AuditSettings, "audit-")
    """the audit's k, temperature, box IoU, attention"""

    def __post_init__(self):
        read_nested(self)
        self.validate()

    def validate(self) -> "EvalConfig":
        """A ValueError naming the field, its value and the allowed range (checked when the config is built)."""
        check_ranges(
            self,
            ints=dict(n=(0, 10**7), batch_rows=(1, MAX_ROWS), seed=SEED),
            why=dict(
                seed=WHY["seed"],
                n="the samples are loaded and their trajectories held in memory",
                batch_rows=WHY["batch"],
            ),
        )
        self.rollout.validate()
        self.reward.validate()
        self.audit_settings.validate()
        return self

    @classmethod
    def for_policy(cls, policy, **overrides) -> "EvalConfig":
        """Defaults from the checkpoint (the settings its recipe evaluated it with, `meta["evaluation"]`),
        then `overrides` (`rollout` / `reward` may be dicts of some of their fields); an override EvalConfig does
        not know is an error (a saved setting it does not know was written by another r3lab version and is left
        out, so old and new checkpoints both load)."""
        known = {f.name for f in fields(cls)}
        if bad := sorted(set(overrides) - known):
            raise ValueError(f"EvalConfig has no field(s) {bad}; known: {sorted(known)}")
        saved = dict((getattr(policy, "meta", {}) or {}).get("evaluation", {}))
        saved["rollout"] = {**{k: saved.pop(k) for k in _FLAT if k in saved}, **saved.get("rollout", {})}
        saved["rollout"] = {k: v for k, v in saved["rollout"].items() if k not in ENGINE}  # that machine's, not ours
        merged = {k: v for k, v in saved.items() if k in known}
        for k, v in overrides.items():
            if v is None:
                continue
            nested_dict = isinstance(v, dict) and k in ("rollout", "reward", "audit_settings")
            merged[k] = {**merged.get(k, {}), **v} if nested_dict else v
        return cls(**merged)


@dataclass
class EvalResult:
    """Per-family metrics (plus "all") and the trajectories they were computed from."""

    rows: dict[str, dict[str, float]]
    trajectories: list = field(default_factory=list, repr=False)
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    complete: bool = True  # False: Ctrl-C stopped the evaluation; the rows cover the samples finished before it
    questions: list = field(default_factory=list, repr=False)  # the audit's record per question (questions.jsonl)

    def __getitem__(self, family: str) -> dict[str, float]:
        return self.rows[family]

    @property
    def accuracy(self) -> float:
        return self.rows["all"]["accuracy"]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "config": self.config, "seconds": self.seconds, "complete": self.complete}

    def table(self, metrics: Sequence[str] = METRICS) -> str:
        """A markdown table: one row per family, then "all"."""
        head = "| family | " + " | ".join(metrics) + " |"
        lines = [head, "|" + "---|" * (len(metrics) + 1)]
        for fam, row in self.rows.items():
            lines.append(f"| {fam} | " + " | ".join(_fmt(row.get(m)) for m in metrics) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:  # Jupyter shows the result as a rendered table
        return self.table()

    def save(self, folder: str | Path, trajectories: bool = True) -> Path:
        """results.json, trajectories.jsonl (images left out) and questions.jsonl (one record per question, crops
        embedded: what `r3lab report` reads)."""
        folder = Path(folder)
        atomic_write_text(
            folder / "results.json", json.dumps({**self.to_dict(), "rows": nan_to_none(self.rows)}, indent=2)
        )
        if trajectories:
            atomic_write_text(
                folder / "trajectories.jsonl", "".join(json.dumps(t.to_dict("none")) + "\n" for t in self.trajectories)
            )
        save_questions(folder, self.records())
        return folder

    def records(self) -> list[dict]:
        """One record per question (questions.jsonl, what `r3lab report` reads): the audit's, or, without the audit,
        the question, the accepted answers, the model's answer, right or wrong, and the crops it took."""
        return self.questions or trajectory_records(
            self.trajectories, [reward_hit(t, t.model_text()) for t in self.trajectories]
        )


def summarize(trajectories: Sequence, terms="code") -> dict[str, dict[str, float]]:
    """Per-family metrics of already generated trajectories (one per sample), then "all"."""
    trajectories = list(trajectories)
    values = rollout_values(trajectories, score(trajectories, terms))
    families = sorted({t.family or "?" for t in trajectories})
    rows = {}
    for fam in families + ["all"]:
        vals = [v for t, v in zip(trajectories, values) if fam == "all" or (t.family or "?") == fam]
        m = rollout_metrics(vals)
        lo, hi = bootstrap_ci([v["accuracy"] for v in vals] if "accuracy" in m else [])
        iou_lo, iou_hi = bootstrap_ci([v["crop_iou"] for v in vals if v["crop_iou"] is not None])
        rows[fam] = {
            "n": m["n"],
            "accuracy": m.get("accuracy", math.nan),
            "accuracy_lo": lo,
            "accuracy_hi": hi,
            **{
                k: m[k] for k in ("crop_rate", "crops", "invalid_crop_rate", "crop_iou", "answered", "tokens", "reward")
            },
            "crop_iou_lo": iou_lo,
            "crop_iou_hi": iou_hi,
        }
    return rows


def evaluate(
    policy: Policy,
    samples: Sequence,
    config: EvalConfig | None = None,
    progress: bool | None = None,
    crop_boxes=None,
    extras: Extras | None = None,
) -> EvalResult:
    """One rollout per sample (greedy by default) and `summarize` of the result.

    crop_boxes: passed to `rollout` (the environment picks where each crop goes: oracle / random ablations).
    extras: more rollouts after the model's own, their keys added to each family's row (`config.audit` needs the
    audit's: `r3lab.audit.eval_audit`).
    """
    if bad := nonfinite_parameters(policy.model):  # else sampling fails deep inside with "probability tensor ..."
        where = (getattr(policy, "meta", None) or {}).get("path", "this policy")
        raise ValueError(
            f"{where}: the model's parameters {bad[:3]} hold NaN/inf (saved from a run that diverged?), "
            "so it cannot be evaluated; use an earlier checkpoint"
        )
    cfg = config or EvalConfig()
    if cfg.audit and extras is None:
        raise ValueError(
            "EvalConfig.audit = True needs the audit's rollouts: run "
            "r3lab.audit.eval_audit(policy, samples, config) (as `r3lab eval --audit` does)"
        )
    samples = _sample_list(samples)[: cfg.n or None]
    if not samples:
        raise ValueError("no samples to evaluate")
    rcfg = RolloutConfig.of(cfg.rollout, group_size=1, batch_rows=cfg.batch_rows, seed=cfg.seed)
    t0 = time.perf_counter()
    got, seconds = [None] * len(samples), [None] * len(samples)
    try:  # chunk by chunk (the batches rollout makes anyway), so that Ctrl-C keeps every finished rollout
        k = 0
        for block in _blocks(samples, extras is not None):
            with VisionClock(policy) as clock:
                t1 = time.perf_counter()
                for a in range(0, len(block), cfg.batch_rows):
                    idx = block[a : a + cfg.batch_rows]
                    for i, t in zip(
                        idx,
                        rollout(
                            policy,
                            [samples[i] for i in idx],
                            replace(rcfg, seed=rcfg.seed + k),
                            progress=progress,
                            crop_boxes=crop_boxes,
                        ),
                    ):
                        got[i] = t
                    k += 1
            for i in block:  # a family's seconds, shared evenly: what its cost per correct answer divides
                seconds[i] = {"wall_s": (time.perf_counter() - t1) / len(block), "vision_s": clock.seconds / len(block)}
    except KeyboardInterrupt:
        if not any(got):
            raise
        warnings.warn(
            f"interrupted after {sum(t is not None for t in got)} of {len(samples)} samples: the result "
            "covers those only (EvalResult.complete is False)",
            stacklevel=2,
        )
    done = [s for s, t in zip(samples, got) if t is not None]
    trajs = [t for t in got if t is not None]
    complete = len(trajs) == len(samples)
    rows = _rows(trajs, done, cfg)
    questions = []
    if extras is not None and complete:
        try:
            more, questions = extras(policy, done, trajs, seconds)
        except KeyboardInterrupt:
            warnings.warn(
                "interrupted during the audit: the result holds the model's own rollouts only "
                "(EvalResult.complete is False)",
                stacklevel=2,
            )
            complete = False
        else:
            for fam, row in more.items():
                rows.setdefault(fam, {}).update(row)
    elif cfg.necessity and trajs and extras is None:
        ablations = ablation_rollouts(policy, done, cfg.rollout, cfg.batch_rows, cfg.seed, progress)
        for fam, row in necessity_rows(done, trajs, ablations, cfg.reward.terms()).items():
            rows.setdefault(fam, {}).update(row)
    return EvalResult(rows, trajs, asdict(cfg), time.perf_counter() - t0, complete=complete, questions=questions)


def _blocks(samples: list, by_family: bool) -> list[list[int]]:
    """The samples' indices in the order they are rolled out: as given, or (with extras) family by family, so that each
    family's seconds are its own."""
    if not by_family:
        return [list(range(len(samples)))]
    out: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        out.setdefault(getattr(s, "family", "") or "?", []).append(i)
    return list(out.values())


def _sample_list(samples) -> list:
    """`samples` as a list of Samples; TypeError for anything else (a string would be read as its characters)."""
    what = "samples must be a list of r3lab Samples (load_samples or build_samples make them)"
    if isinstance(samples, (str, bytes, dict)) or not hasattr(samples, "__iter__"):
        raise TypeError(f"{what}, got {type(samples).__name__} {samples!r:.60}")
    samples = list(samples)
    if wrong := [s for s in samples if not isinstance(s, Sample)]:
        raise TypeError(f"{what}, got a list holding {type(wrong[0]).__name__} {wrong[0]!r:.60}")
    return samples


def evaluate_rows(policy: Policy, samples: Sequence, config: EvalConfig | None = None) -> dict[str, dict[str, float]]:
    """`evaluate(...).rows`, the samples dealt out over the ranks of a distributed run (every rank rolls out each
    world_size-th sample, then every rank scores them all), so a check inside DDP training costs 1/world_size of
    its time; the same rows on every rank. A single process: `evaluate`'s rows."""
    cfg = config or EvalConfig()
    d = dist.info()
    if not d.distributed:
        return evaluate(policy, samples, cfg, progress=False).rows
    if cfg.necessity or cfg.n:
        raise ValueError("evaluate_rows over ranks takes neither necessity nor n; call evaluate on one rank")
    samples = list(samples)
    mine = evaluate(policy, samples[d.rank :: d.world_size], cfg, progress=False).trajectories
    parts = dist.gather_objects([t.to_dict("none") for t in mine])  # images stay behind: the scores need none
    trajs = [Trajectory.from_dict(parts[i % d.world_size][i // d.world_size]) for i in range(len(samples))]
    return _rows(trajs, samples, cfg)


def _rows(trajs: list, samples: list, cfg: EvalConfig) -> dict[str, dict[str, float]]:
    rows = summarize(trajs, cfg.reward.terms())
    for fam, share in detail_shares(trajs, samples).items():
        rows[fam]["contains_detail"] = share
    return rows


def contains_detail(crop_orig, detail) -> bool:
    """Whether a crop (inclusive original pixels, as the environment cuts it) holds a detail box (end-exclusive)."""
    o, d = crop_orig, detail
    return o[0] <= d[0] and o[1] <= d[1] and o[2] >= d[2] - 1 and o[3] >= d[3] - 1


def detail_shares(trajectories, samples) -> dict[str, float]:
    """Per family (and "all"), the share of crops that hold one of their sample's details (NaN: no crop)."""
    details = {s.sample_id: list(getattr(s, "details", None) or ()) for s in samples}
    hits: dict[str, list[bool]] = {"all": []}
    for t in trajectories:
        found = [
            any(contains_detail(p.info.box_orig, d) for d in details.get(t.sample_id, ()))
            for p in t.crops
            if p.info.box_orig is not None
        ]
        hits.setdefault(t.family or "?", []).extend(found)
        hits["all"].extend(found)
    return {fam: sum(v) / len(v) if v else math.nan for fam, v in hits.items()}


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (NaN, NaN when empty)."""
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got level={level}, n_boot={n_boot}")
    x = torch.as_tensor([float(v) for v in values], dtype=torch.float64)
    if x.numel() == 0:
        return math.nan, math.nan
    if not torch.isfinite(x).all():
        raise ValueError("bootstrap_ci: values must be finite (drop or score the NaN / inf entries first)")
    g = torch.Generator().manual_seed(seed)
    means = x[torch.randint(0, x.numel(), (n_boot, x.numel()), generator=g)].mean(1)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(lo), float(hi)


def _mean(xs) -> float:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs) if xs else math.nan


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return str(v) if isinstance(v, int) else f"{v:.3f}"
