"""A sweep's results: `load_sweep(DIR)` reads its folder; `.frame()` is one row per run (pandas), `.summary()` each
point's metrics with seed-aware intervals and its paired comparison with the baseline (`r3lab.sweep.stats`).

A metric is a key of the runs' results: `family.name` (`read_one.accuracy`; a bare `crop_iou` means family `all`)
of `r3lab eval`'s rows for training and eval sweeps, `row.family.name` of the recipe's table, a key number of the
lesson for `notebook NN`. The evaluation's per-question numbers (`scores.PER_QUESTION`) compare question by
question; any other key compares run by run (a table of one question).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.files import read_text
from .folder import RUNS, read_sweep
from .scores import PER_QUESTION, SCORES
from .spec import TRAINING, SweepSpec, spec_from_dict
from .stats import Comparison, Estimate, bootstrap_tables, holm, overlaps, rng_for
from .status import RunStatus, read_status


@dataclass
class PointResult:
    """One point's numbers for one metric."""

    point: dict
    metric: str
    estimate: Estimate
    chance: float | None = None  # a uniform guess's score, where the metric is an accuracy
    comparison: Comparison | None = None  # against the baseline (None for the baseline itself)

    @property
    def within_chance(self) -> bool:
        return overlaps(self.estimate.lo, self.estimate.hi, self.chance)


@dataclass
class Sweep:
    """A sweep folder as read: its spec, each run's status and numbers."""

    folder: Path
    spec: SweepSpec
    record: dict
    runs: list = field(default_factory=list)  # dicts: id, folder, point, seed, status (RunStatus)

    def frame(self):
        """One row per run: its folder, grid values, seed, status (state, cause, error, seconds) and each metric's
        value (a per-question metric: its mean over the run's questions, the evaluation's own number)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Sweep.frame() needs pandas: pip install 'r3lab[sweep]'") from None
        metrics = self.metrics()
        rows = []
        for r in self.runs:
            st: RunStatus = r["status"]
            row = {
                "run": r["folder"],
                "id": r["id"],
                **r["point"],
                "seed": r["seed"],
                "state": st.state,
                "cause": st.cause,
                "error": st.error,
                "seconds": st.seconds,
                "attempts": st.attempts,
                "host": st.host,
            }
            for m in metrics:
                row[m] = self.run_value(r, m)
            rows.append(row)
        return pd.DataFrame(rows)

    # -- what the runs hold -------------------------------------------------------------------------------
    def metrics(self) -> list[str]:
        """The spec's metrics, or its default: each family's accuracy and crop IoU (training / eval), each row's
        accuracy (recipe), every key number (notebook)."""
        if self.spec.metrics:
            return list(self.spec.metrics)
        done = [r for r in self.runs if r["status"].state == "done"]
        if self.spec.kind in (*TRAINING, "eval"):
            fams = sorted({q["family"] for r in done for q in self._scores(r)} - {"?"})
            return [f"{f}.accuracy" for f in fams] + ["crop_iou"]
        if self.spec.kind == "recipe":
            rows = {k for r in done for k in self._results(r).get("rows", {})}
            return [f"{row}.all.accuracy" for row in sorted(rows)]
        return sorted({k for r in done for k, v in self._results(r).items() if isinstance(v, (int, float))})

    def run_value(self, run: dict, metric: str) -> float:
        """A run's number for `metric` (NaN: the run has none, e.g. it failed)."""
        q = self._questions(run, metric)
        if q is not None:
            vals = [v for v in q.values() if not math.isnan(v)]
            return float(np.mean(vals)) if vals else math.nan
        return self._run_number(run, metric)

    def _split(self, metric: str) -> tuple[str, str]:
        fam, _, name = metric.rpartition(".")
        return fam or "all", name

    def _questions(self, run: dict, metric: str) -> dict | None:
        """sample id -> value for a per-question metric of a training / eval sweep (None: not one)."""
        if self.spec.kind not in (*TRAINING, "eval"):
            return None
        fam, name = self._split(metric)
        if name not in PER_QUESTION:
            return None
        if run["status"].state != "done":
            return {}
        return {
            q["sample_id"]: math.nan if q.get(name) is None else float(q[name])
            for q in self._scores(run)
            if fam == "all" or q["family"] == fam
        }

    def _run_number(self, run: dict, metric: str) -> float:
        if run["status"].state != "done":
            return math.nan
        res = self._results(run)
        try:
            if self.spec.kind == "notebook":
                v = res[metric]
            elif self.spec.kind == "recipe":
                row, rest = metric.split(".", 1)
                fam, name = self._split(rest)
                v = res["rows"][row][fam][name]
            else:
                fam, name = self._split(metric)
                v = res["rows"][fam][name]
        except (KeyError, ValueError, TypeError):
            return math.nan
        return math.nan if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) else float(v)

    def _dir(self, run: dict) -> Path:
        return self.folder / RUNS / run["folder"]

    def _scores(self, run: dict) -> list[dict]:
        if "_scores" not in run:
            path = self._dir(run) / "eval" / SCORES
            run["_scores"] = json.loads(read_text(path))["questions"] if path.is_file() else []
        return run["_scores"]

    def _results(self, run: dict) -> dict:
        if "_results" not in run:
            sub = {"recipe": "recipe", "notebook": "notebook"}.get(self.spec.kind, "eval")
            path = self._dir(run) / sub / "results.json"
            data = json.loads(read_text(path)) if path.is_file() else {}
            if self.spec.kind == "notebook":  # the runner's list: one entry per lesson run
                data = (data[0].get("numbers") or {}) if isinstance(data, list) and data else {}
            run["_results"] = data
        return run["_results"]

    # -- statistics ---------------------------------------------------------------------------------------
    def points(self) -> list[dict]:
        return self.spec.points()

    def table(self, point: dict, metric: str, seeds=None, questions=None) -> tuple[np.ndarray, list, list]:
        """(seeds x questions table, seeds, question ids) of a point's done runs (a run-level metric: one column)."""
        runs = [
            r
            for r in self.runs
            if r["point"] == point and r["status"].state == "done" and (seeds is None or r["seed"] in seeds)
        ]
        runs.sort(key=lambda r: r["seed"])
        per = [self._questions(r, metric) for r in runs]
        if runs and per[0] is not None:
            ids = questions if questions is not None else sorted(set.intersection(*(set(p) for p in per)))
            return (
                np.array([[p.get(i, math.nan) for i in ids] for p in per]).reshape(len(runs), len(ids)),
                [r["seed"] for r in runs],
                ids,
            )
        return (
            np.array([[self._run_number(r, metric)] for r in runs]).reshape(len(runs), 1),
            [r["seed"] for r in runs],
            ["run"],
        )

    def chance(self, metric: str, point: dict | None = None) -> float | None:
        """A uniform guess's score for an accuracy metric (the evaluation's chance levels), else None."""
        levels = (self.record.get("facts") or {}).get("chance") or {}
        parts = metric.split(".")
        if parts[-1] != "accuracy" or not levels:
            return None
        fam = parts[-2] if len(parts) >= 2 else "all"
        if fam != "all":
            return levels.get(fam)
        done = [r for r in self.runs if r["status"].state == "done" and (point is None or r["point"] == point)]
        fams = [q["family"] for q in (self._scores(done[0]) if done else [])]
        if not fams or any(f not in levels for f in fams):
            return None
        return float(np.mean([levels[f] for f in fams]))

    def summary(self, reps: int | None = None) -> list[PointResult]:
        """Every point x metric: its estimate, chance level and (but the baseline) its paired comparison with the
        baseline; Holm-adjusted over the points of each metric. The resamples are drawn once per table shape (seeds
        x questions) and shared by every point and metric of that shape (`stats.bootstrap_tables`), from a
        generator named by the sweep and the shape: the same report every time, whatever the order."""
        from .stats import RESAMPLES

        reps = reps or RESAMPLES
        base = self.spec.baseline_point()
        jobs = {}  # shape -> [(x, y or None, where the result goes)]
        out = []
        for metric in self.metrics():
            bx, bseeds, bq = self.table(base, metric)
            for p in self.points():
                res = PointResult(p, metric, Estimate(math.nan, math.nan, math.nan, 0, 0), self.chance(metric, p))
                out.append(res)
                x, seeds, ids = self.table(p, metric)
                if not len(seeds) or not len(ids):
                    continue
                common = [s for s in seeds if s in bseeds] if p != base else []
                qs = [i for i in ids if i in set(bq)] if common else []
                if common == seeds and qs == ids:  # the point's own table pairs with the baseline's
                    jobs.setdefault(x.shape, []).append((x, self.table(base, metric, common, qs)[0], res, "both"))
                    continue
                jobs.setdefault(x.shape, []).append((x, None, res, "estimate"))
                if qs:  # seeds or questions only one side holds: the point alone, then the pairs
                    xc, yc = self.table(p, metric, common, qs)[0], self.table(base, metric, common, qs)[0]
                    jobs.setdefault(xc.shape, []).append((xc, yc, res, "comparison"))
        for shape, todo in jobs.items():  # draws seeded by the shape alone: the same numbers, the same report anywhere
            found = bootstrap_tables([(x, y) for x, y, _, _ in todo], rng_for("r3lab sweep", *shape), reps)
            for (_, _, res, what), (est, cmp) in zip(todo, found):
                if what != "comparison":
                    res.estimate = est
                if what != "estimate":
                    res.comparison = cmp
        for metric in self.metrics():
            family = [r for r in out if r.metric == metric and r.comparison is not None]
            for res, adj in zip(family, holm([r.comparison.p for r in family])):
                res.comparison.p_holm = adj
        return out


def notes(sweep: Sweep, results: list[PointResult]) -> list[str]:
    """What a sweep's numbers support, one sentence per point compared with the baseline and metric: the difference
    one seed alone shows, the paired difference over every seed with its interval, and whether that is more than
    the seeds' noise (Holm-adjusted)."""
    out = []
    base = sweep.spec.baseline_point()
    for r in results:
        c = r.comparison
        if c is None:
            continue
        own = seed_differences(sweep, r.point, r.metric)
        single = (
            (
                "one run per setting would have shown "
                + (
                    ", ".join(f"{d:+.3f}" for d in own.values()) + " by seed; "
                    if len(own) > 1
                    else f"{next(iter(own.values())):+.3f}; "
                )
            )
            if own
            else ""
        )
        verdict = (
            "more than the seeds' noise"
            if c.p_holm < 0.05
            else "within the seeds' noise: the interval holds 0"
            if c.lo <= 0 <= c.hi
            else "an interval clear of 0, but not after Holm's correction"
        )
        chance = " (its interval overlaps chance)" if r.within_chance else ""
        out.append(
            f"{r.metric}, {_label(r.point)} against {_label(base)}: {single}over {c.seeds} seeds x "
            f"{c.questions} questions, paired, {c.diff:+.3f} [{c.lo:+.3f}, {c.hi:+.3f}], P(improvement) "
            f"{c.poi:.2f}, Holm p {c.p_holm:.3f}: {verdict}{chance}"
        )
    return out


def seed_differences(sweep: Sweep, point: dict, metric: str) -> dict:
    """seed -> the point's run value minus the baseline's run of the same seed (what one run per setting shows)."""
    base = sweep.spec.baseline_point()
    value = {(json.dumps(x["point"], sort_keys=True), x["seed"]): sweep.run_value(x, metric) for x in sweep.runs}
    out = {}
    for s in sweep.spec.seeds:
        a, b = (value.get((json.dumps(p, sort_keys=True), s), math.nan) for p in (point, base))
        if not (math.isnan(a) or math.isnan(b)):
            out[s] = a - b
    return out


def _label(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def load_sweep(folder: str | os.PathLike) -> Sweep:
    """A sweep folder written by `r3lab sweep` (finished or not)."""
    folder = Path(folder)
    record = read_sweep(folder)
    spec = spec_from_dict(record["spec"], str(folder / "sweep.json"))
    runs = [{**r, "status": read_status(folder / RUNS / r["folder"])} for r in record["runs"]]
    return Sweep(folder, spec, record, runs)
