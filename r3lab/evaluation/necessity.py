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
- `zooming_gap`: `acc_gt_box - acc_no_crop` on the samples both ran on, what zooming into the right place is
  worth over the whole image.

`necessity_table` is the rule, from per-sample numbers: `r3lab eval` scores them with the reward's accuracy term
(`necessity_rows`), `r3lab bench --necessity true` with the benchmark's own scoring, per question, where only the
questions with target boxes get the `random_box` / `gt_box` rollouts (`bench_need`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from ..bench.run import BenchConfig, BenchResult, run_bench
from ..bench.scoring import score_item
from ..engine.config import RolloutConfig, RolloutSettings
from ..engine.rollouts import rollout
from ..explain.swaps import variant_image
from ..train.metrics import rollout_values
from ..train.rewards import score
from .ablations import oracle_boxes, random_boxes

if TYPE_CHECKING:
    from ..model.policy import Policy

VARIANTS = ("no_crop", "blank", "coarse", "random_box", "gt_box")
KEYS = (
    "acc_own",
    *(f"acc_{v}" for v in VARIANTS),
    "tool_gain",
    "tool_harm",
    "crop_rate_need",
    "crop_rate_no_need",
    "zooming_gap",
)


def needs_crop(sample) -> bool:
    """Whether a question needs a crop: a ground-truth region and a family other than `control`."""
    return bool(getattr(sample, "regions", None)) and getattr(sample, "family", "") != "control"


def bench_need(sample) -> bool | None:
    """Whether a benchmark question needs a crop: yes when the benchmark names its target region (V*, TreeBench:
    the answer hangs on a small object there), unknown (None) when it names none (HR-Bench, MME-RealWorld), so
    that neither crop rate counts it."""
    return True if getattr(sample, "regions", None) else None


def ablation_rollouts(
    policy: "Policy",
    samples: Sequence,
    settings: RolloutSettings,
    batch_rows: int = 32,
    seed: int = 0,
    progress=None,
    variants: Sequence[str] = VARIANTS,
    scripts=None,
) -> dict[str, list]:
    """The samples rolled out under each ablation of `variants` (greedy unless `settings` say otherwise).

    scripts: forced text per sample (see `rollout`), the same for every ablation."""
    if bad := sorted(set(variants) - set(VARIANTS)):
        raise ValueError(f"unknown ablation(s) {bad}; choose from {list(VARIANTS)}")
    view = policy.view

    def swap(kind):
        return lambda sample, k, piece, traj: variant_image(kind, traj, piece, view)

    def run(settings_, **kw):
        cfg = RolloutConfig.of(settings_, group_size=1, batch_rows=batch_rows, seed=seed)
        return rollout(policy, list(samples), cfg, progress=progress, scripts=scripts, **kw)

    how = {
        "no_crop": lambda: run(replace(settings, max_crops=0)),
        "blank": lambda: run(settings, crop_images=swap("blank")),
        "coarse": lambda: run(settings, crop_images=swap("coarse")),
        "random_box": lambda: run(settings, crop_boxes=random_boxes(view, seed)),
        "gt_box": lambda: run(settings, crop_boxes=oracle_boxes(view)),
    }
    return {v: how[v]() for v in variants}


def necessity_rows(samples: Sequence, own: Sequence, ablations: dict[str, list], terms="code") -> dict[str, dict]:
    """Per family (and "all"), the keys of `KEYS` from the model's own trajectories and the ablations' (each one
    trajectory per sample, in the samples' order), accuracy as the reward's accuracy term scores it."""
    samples = list(samples)
    acc = {"own": _accuracy(own, terms), **{v: _accuracy(ablations[v], terms) for v in VARIANTS if v in ablations}}
    return necessity_table(
        [getattr(s, "family", "") or "?" for s in samples],
        acc,
        [bool(t.crops) for t in own],
        [needs_crop(s) for s in samples],
    )


def necessity_table(
    groups: Sequence[str], acc: dict[str, Sequence], cropped: Sequence[bool], need: Sequence[bool | None]
) -> dict[str, dict]:
    """The keys of `KEYS` per group (and "all") from per-sample numbers, however they were scored.

    groups: each sample's family / category; acc: "own" and each ablation of `VARIANTS` -> per-sample accuracy
    (None: that ablation was not run on the sample, e.g. `gt_box` without a ground-truth region); cropped: the
    model's own rollout cropped; need: the question needs a crop (None: unknown, neither crop rate counts it).
    An ablation run on no sample of a group gives NaN ("not available") for the keys that use it; `tool_gain`,
    `tool_harm` and `zooming_gap` compare the two rollouts of the same samples."""
    n = len(groups)
    if "own" not in acc or any(len(a) != n for a in acc.values()) or len(cropped) != n or len(need) != n:
        raise ValueError(f"necessity_table needs acc['own'] and one entry per sample ({n}) in every list")
    rows = {}
    for fam in sorted(set(groups)) + ["all"]:
        idx = [i for i, g in enumerate(groups) if fam == "all" or g == fam]

        def both(a, b, idx=idx):  # the samples `a` and `b` were both run on
            return [i for i in idx if a in acc and b in acc and acc[a][i] is not None and acc[b][i] is not None]

        row = {
            f"acc_{k}": _mean([acc[k][i] for i in idx if acc[k][i] is not None]) if k in acc else math.nan
            for k in ("own", *VARIANTS)
        }
        on = both("own", "no_crop")
        row["tool_gain"] = _mean([float(acc["no_crop"][i] < 0.5 <= acc["own"][i]) for i in on])
        row["tool_harm"] = _mean([float(acc["own"][i] < 0.5 <= acc["no_crop"][i]) for i in on])
        row["crop_rate_need"] = _mean([float(bool(cropped[i])) for i in idx if need[i] is True])
        row["crop_rate_no_need"] = _mean([float(bool(cropped[i])) for i in idx if need[i] is False])
        row["zooming_gap"] = _mean([acc["gt_box"][i] - acc["no_crop"][i] for i in both("gt_box", "no_crop")])
        rows[fam] = row
    return rows


class BenchNecessity:
    """`run_bench`'s extras for tool necessity: each chunk of questions rolled out again under the ablations, each
    answer scored by the benchmark's own rule (`r3lab.bench.scoring.score_item`). A question's record gets
    `necessity`: `need` (`bench_need`) and, per ablation, `{"hit", "crops"}` (null: not run, `random_box` and
    `gt_box` need a target box); every row gets the keys of `KEYS` (`necessity_table`)."""

    def __init__(self, settings: RolloutSettings, batch_rows: int = 4, seed: int = 0):
        self.settings, self.batch_rows, self.seed = settings, batch_rows, seed

    def items(self, policy, name: str, samples: list, trajectories: list, scripts: list | None) -> list[dict]:
        def run(idx, variants):
            if not idx:
                return {}
            forced = None if scripts is None else [scripts[j] for j in idx]
            got = ablation_rollouts(
                policy, [samples[j] for j in idx], self.settings, self.batch_rows, self.seed, False, variants, forced
            )
            return {v: dict(zip(idx, ts)) for v, ts in got.items()}

        done = {
            **run(list(range(len(samples))), ("no_crop", "blank", "coarse")),
            **run([j for j, s in enumerate(samples) if s.regions], ("random_box", "gt_box")),
        }
        out = []
        for j, s in enumerate(samples):
            rec = {"need": bench_need(s)}
            for v in VARIANTS:
                t = done.get(v, {}).get(j)
                rec[v] = (
                    None
                    if t is None
                    else {
                        "hit": score_item(name, t.model_text(), s.provenance, s.regions)["hit"],
                        "crops": len(t.crops),
                    }
                )
            out.append({"necessity": rec})
        return out

    def rows(self, items: list[dict], groups: list[str]) -> dict[str, dict]:
        return bench_rows(items, groups)


def bench_rows(items: Sequence[dict], groups: Sequence[str]) -> dict[str, dict]:
    """`necessity_table` of benchmark items (`hit`, `crops` and the `necessity` record `BenchNecessity` wrote)."""
    if any(not isinstance(it.get("necessity"), dict) for it in items):
        raise ValueError("bench_rows: every item needs its 'necessity' record (an `r3lab bench --necessity true` run)")
    acc = {
        "own": [float(it["hit"]) for it in items],
        **{
            v: [None if it["necessity"].get(v) is None else float(it["necessity"][v]["hit"]) for it in items]
            for v in VARIANTS
        },
    }
    return necessity_table(
        groups, acc, [bool(it["crops"]) for it in items], [it["necessity"].get("need") for it in items]
    )


def bench_necessity(policy, name: str, config: BenchConfig | None = None, **kw) -> BenchResult:
    """`run_bench` with tool necessity in every category's row (`config.necessity` is set); `kw` go to
    `run_bench` (progress, keep_images, scripts)."""
    cfg = replace(config or BenchConfig(), necessity=True)
    return run_bench(policy, name, cfg, extras=BenchNecessity(cfg.rollout, cfg.batch, cfg.seed), **kw)


def _accuracy(trajs: Sequence, terms) -> list[float]:
    vals = rollout_values(list(trajs), score(list(trajs), terms))
    if vals and vals[0]["accuracy"] is None:
        raise ValueError("tool necessity needs an accuracy term in the reward (RewardSpec): none was scored")
    return [float(v["accuracy"]) for v in vals]


def _mean(xs) -> float:
    return sum(xs) / len(xs) if xs else math.nan
