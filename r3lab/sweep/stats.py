"""Seed-aware statistics of a sweep: a run's scores are a seeds x questions table per point and metric.

* **Mean and 95 % interval**: a bootstrap stratified over seeds and questions (rliable's stratified bootstrap with its
  task level, tasks here the questions): seeds and questions are resampled independently, each resample's mean taken
  over the seeds x questions it drew. Resampling is `scipy.stats.bootstrap` (the two index sets are its two
  samples), drawn once for every table of one shape (`bootstrap_tables`: a sweep's points and metrics in one
  vectorised pass, each table's numbers those it would get alone from the same draws). Percentile intervals: BCa,
  scipy's default, returns NaN on the degenerate 0/1 tables a small held-out set gives (all right or all wrong), and
  rliable (1.2) no longer imports beside pandas 3 (its `arch < 8` pin).
* **Against the baseline**: the paired difference, seed s of a point against seed s of the baseline on the same
  question, with its interval from the same resamples; its two-sided p-value (the smallest level whose percentile
  interval leaves out 0); and rliable's probability of improvement: per question, P(X > Y) + P(X = Y) / 2 over
  the point's and the baseline's seeds, averaged over questions, with its interval.
* **Holm** adjusts the p-values of every point compared with one baseline (one family per metric).
Empty cells (NaN: crop IoU of a question without a crop) are left out of every mean.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
METHOD = "percentile"
_CELLS = 4_000_000  # floats one chunk of tables may hold (the probability of improvement with empty cells)


@dataclass
class Estimate:
    mean: float
    lo: float
    hi: float
    seeds: int
    questions: int


@dataclass
class Comparison:
    diff: float  # mean paired difference, point - baseline
    lo: float
    hi: float
    p: float  # two-sided, from the bootstrap
    poi: float  # probability of improvement (rliable's definition)
    poi_lo: float
    poi_hi: float
    seeds: int  # seeds both hold
    questions: int
    p_holm: float = math.nan  # set by `holm` over the points compared with one baseline


def rng_for(*names) -> np.random.Generator:
    """A generator seeded by names (the sweep, point and metric), so a report's intervals are the same every time
    and do not depend on the order things are computed in."""
    h = hashlib.sha256("\x1f".join(map(str, names)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def estimate(x: np.ndarray, rng: np.random.Generator, reps: int = RESAMPLES, level: float = LEVEL) -> Estimate:
    """Mean of the seeds x questions table `x` with its stratified bootstrap interval."""
    return bootstrap_tables([(x, None)], rng, reps, level)[0][0]


def compare(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, reps: int = RESAMPLES, level: float = LEVEL
) -> tuple[Estimate, Comparison]:
    """A point's table `x` against the baseline's `y` (the same seeds in the same rows, the same questions): the
    point's estimate and the paired comparison, from one set of resamples."""
    return bootstrap_tables([(x, y)], rng, reps, level)[0]


def bootstrap_tables(
    pairs, rng: np.random.Generator, reps: int = RESAMPLES, level: float = LEVEL
) -> list[tuple[Estimate, Comparison | None]]:
    """Every `(x, y)` of `pairs` (tables of one shape; `y` the baseline's, or None for the estimate alone) from ONE
    set of resamples: the seeds and questions are drawn once and every table is weighed by the same draws, so a
    sweep's points and metrics cost one vectorised pass (each table's numbers are what `compare` / `estimate` give
    it alone with the same generator)."""
    pairs = [(_table(x), None if y is None else _table(y)) for x, y in pairs]
    if not pairs:
        return []
    shape = pairs[0][0].shape
    for x, y in pairs:
        if x.shape != shape or (y is not None and y.shape != shape):
            raise ValueError(
                f"compare: tables of shape {x.shape} and {shape if y is None else y.shape}; pair them on "
                "seeds and questions first (bootstrap_tables takes tables of one shape)"
            )
    xs = np.stack([x for x, _ in pairs])
    cmp = [i for i, (_, y) in enumerate(pairs) if y is not None]
    ys = np.stack([pairs[i][1] for i in cmp]) if cmp else xs[:0]
    n, m = len(pairs), len(cmp)

    def stat(c, d):  # (n + 2 m, resamples): each table's mean, then the paired differences, then P(improvement)
        return np.concatenate([_means(xs, c, d), _means(xs[cmp] - ys, c, d), _poi(xs[cmp], ys, c, d)])

    full = stat(*_once(shape))[:, 0]
    lo, hi, dist = _bootstrap(stat, shape, rng, reps, level)
    out = [[Estimate(float(full[i]), float(lo[i]), float(hi[i]), *shape), None] for i in range(n)]
    for j, i in enumerate(cmp):
        a, b = n + j, n + m + j
        p = _p_value(dist[a]) if dist is not None else math.nan
        out[i][1] = Comparison(
            float(full[a]), float(lo[a]), float(hi[a]), p, float(full[b]), float(lo[b]), float(hi[b]), *shape
        )
    return [tuple(o) for o in out]


def holm(ps) -> list[float]:
    """Holm's step-down adjustment of p-values (NaN stays NaN and does not count in the family)."""
    ps = [float(p) for p in ps]
    idx = sorted((i for i, p in enumerate(ps) if not math.isnan(p)), key=lambda i: ps[i])
    out, running = [math.nan] * len(ps), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - rank) * ps[i]))
        out[i] = running
    return out


def overlaps(lo: float, hi: float, level: float | None) -> bool:
    """Whether an interval holds a chance level (None / NaN: no chance level, False)."""
    return level is not None and not math.isnan(level) and lo <= level <= hi


def _table(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or not x.size:
        raise ValueError(f"expected a seeds x questions table with at least one cell, got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("a score is infinite: a run's results hold inf; rerun it or leave the metric out")
    return x


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of 0..n-1 was drawn, per resample: (resamples, n) from indices (resamples, draws)."""
    flat = idx.reshape(-1, idx.shape[-1])
    offset = np.arange(flat.shape[0])[:, None] * n
    return np.bincount((flat + offset).ravel(), minlength=flat.shape[0] * n).reshape(flat.shape[0], n).astype(float)


def _once(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The draw counts of the table itself: every seed and question once."""
    return np.ones((1, shape[0])), np.ones((1, shape[1]))


def _means(x: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per table and resample, the mean (NaN left out) of the tables `x` (tables, seeds, questions) over the seeds
    and questions drawn, as draw counts weigh it (`c`: (resamples, seeds), `d`: (resamples, questions)): sum of
    c_s x_sq d_q over the sum of c_s d_q where x is scored. (tables, resamples)."""
    ok = ~np.isnan(x)
    num = np.einsum("tsr,rs->tr", np.where(ok, x, 0.0) @ d.T, c)
    if ok.all():
        den = (c.sum(-1) * d.sum(-1))[None, :]
    else:
        den = np.einsum("tsr,rs->tr", ok.astype(float) @ d.T, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)


def _poi(x: np.ndarray, y: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """rliable's probability of improvement over the seeds and questions drawn, per pair of tables `x[t]`, `y[t]`:
    per question, over every pair of a point's seed and a baseline's seed, P(x > y) + P(x = y) / 2; then the mean
    over questions. (tables, resamples)."""
    t, s, q = x.shape
    out = np.empty((t, c.shape[0]))
    if not t:
        return out
    a, b = x[:, :, None, :], y[:, None, :, :]  # (tables, seeds, seeds, questions)
    ok = ~(np.isnan(a) | np.isnan(b))
    wins = np.where(ok, (a > b) + 0.5 * (a == b), 0.0).reshape(t, s * s, q)
    pair = (c[:, :, None] * c[:, None, :]).reshape(-1, s * s)  # (resamples, seed pairs): how often each was drawn
    full = ok.reshape(t, -1).all(-1)  # every question has every pair: the mean is linear in the question counts
    if full.any():
        won = np.einsum("tkr,rk->tr", wins[full] @ d.T, pair)
        out[full] = won / (pair.sum(-1) * d.sum(-1))
    # with empty cells: a question every pair scores is linear as above, one no pair scores counts for nothing, and
    # only the questions some pairs score need each resample's own share (per_q)
    rest = np.flatnonzero(~full)
    okf = ok.reshape(t, s * s, q)[rest].astype(float)
    wins, every = wins[rest], okf.all(1)
    some = okf.any(1) & ~every  # (tables, questions)
    num = np.einsum("tkr,rk->tr", (wins * every[:, None, :]) @ d.T, pair) / pair.sum(-1)
    den = every.astype(float) @ d.T
    step = max(1, _CELLS // max(1, pair.shape[0] * q))
    for k in range(0, len(rest), step):
        i = slice(k, k + step)
        cols = np.flatnonzero(some[i].any(0))
        if not cols.size:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            per_q = (pair @ wins[i][..., cols]) / (pair @ okf[i][..., cols])  # (tables, resamples, questions)
        w = d[None, :, cols] * (~np.isnan(per_q) & some[i][:, None, cols])  # NaN: no scored pair drawn
        num[i] += (np.nan_to_num(per_q) * w).sum(-1)
        den[i] += w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[rest] = np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)
    return out


def _bootstrap(stat, shape: tuple[int, int], rng: np.random.Generator, reps: int, level: float):
    """(lows, highs, resampled values) of `stat(seed_counts, question_counts)` (k values) under ONE
    `scipy.stats.bootstrap` of the two index sets (drawn once, in one batch, whatever k is); a level with one element
    is not resampled, and with one seed and one question there is no interval (NaN)."""
    try:
        from scipy.stats import DegenerateDataWarning, bootstrap
    except ImportError:
        raise ImportError("a sweep's statistics need scipy: pip install 'r3lab[sweep]'") from None

    s, q = shape
    k = len(stat(*_once(shape)))
    if s < 2 and q < 2:
        return np.full(k, np.nan), np.full(k, np.nan), None
    seeds, questions = np.arange(s), np.arange(q)

    def counted(si, qi):  # (k, resamples) of the statistic under the drawn counts
        return stat(_counts(si, s), _counts(qi, q)).reshape(k, *si.shape[:-1])

    if s < 2:
        data, fn = (questions,), lambda qi, axis=-1: counted(np.zeros((*qi.shape[:-1], 1), int), qi)
    elif q < 2:
        data, fn = (seeds,), lambda si, axis=-1: counted(si, np.zeros((*si.shape[:-1], 1), int))
    else:
        data, fn = (seeds, questions), lambda si, qi, axis=-1: counted(si, qi)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # a NaN resample (no crop drawn): handled below
        res = bootstrap(
            data,
            fn,
            n_resamples=reps,
            batch=None,
            vectorized=True,
            paired=False,
            confidence_level=level,
            method=METHOD,
            rng=rng,
        )
    dist = np.asarray(res.bootstrap_distribution).reshape(k, reps)
    lo, hi = np.atleast_1d(res.confidence_interval.low).copy(), np.atleast_1d(res.confidence_interval.high).copy()
    bad = np.isnan(lo) | np.isnan(hi)
    if bad.any():  # a resample that drew no scored cell (no crop): the others' percentiles (none: NaN, said so)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
            lo[bad] = np.nanpercentile(dist[bad], 100 * (1 - level) / 2, axis=-1)
            hi[bad] = np.nanpercentile(dist[bad], 100 * (1 + level) / 2, axis=-1)
    return lo, hi, dist


def _p_value(dist: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference: twice the smaller share of resamples on either side of 0."""
    d = dist[~np.isnan(dist)]
    if not d.size:
        return math.nan
    below, above = (np.sum(d <= 0) + 1) / (d.size + 1), (np.sum(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2 * min(below, above)))
