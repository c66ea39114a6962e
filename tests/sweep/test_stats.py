"""The sweep's statistics against the definitions they claim: scipy's own percentile bootstrap where one level is
resampled, a direct two-level resampling loop, rliable's probability of improvement, Holm's adjustment; and a sweep's
tables in one vectorised pass against scipy's bootstrap of each table alone with the statistic written out."""

import math
import warnings

import numpy as np
import pytest

from r3lab.sweep.stats import bootstrap_tables, compare, estimate, holm, overlaps, rng_for

scipy_stats = pytest.importorskip("scipy.stats")


def _table(p, seeds=3, questions=60, seed=0):
    return (np.random.default_rng(seed).random((seeds, questions)) < p).astype(float)


def test_one_seed_is_scipys_own_percentile_bootstrap_over_questions():
    x = _table(0.6, seeds=1)
    got = estimate(x, np.random.default_rng(7), reps=999)
    ref = scipy_stats.bootstrap(
        (x[0],), np.mean, n_resamples=999, method="percentile", rng=np.random.default_rng(7)
    ).confidence_interval
    assert got.mean == pytest.approx(x.mean()) and (got.lo, got.hi) == pytest.approx((ref.low, ref.high))


def test_seeds_and_questions_are_both_resampled():
    x = _table(0.6)
    x[2, :] = 1.0  # one lucky seed: an interval that ignored seeds would be narrower
    got = estimate(x, rng_for("t"), reps=4000)
    r = np.random.default_rng(1)
    means = [x[np.ix_(r.integers(0, 3, 3), r.integers(0, 60, 60))].mean() for _ in range(4000)]
    lo, hi = np.percentile(means, [2.5, 97.5])
    assert got.lo == pytest.approx(lo, abs=0.02) and got.hi == pytest.approx(hi, abs=0.02)
    questions_only = [x[:, r.integers(0, 60, 60)].mean() for _ in range(4000)]
    assert got.hi - got.lo > 1.3 * np.subtract(*np.percentile(questions_only, [97.5, 2.5]))


def test_all_right_gives_a_point_not_nan_and_bca_would_not():
    x = np.ones((3, 20))
    got = estimate(x, rng_for("ones"))
    assert (got.mean, got.lo, got.hi) == (1.0, 1.0, 1.0)
    with pytest.warns(Warning):  # scipy's default BCa on the same table: degenerate, NaN (why r3lab uses percentile)
        bca = scipy_stats.bootstrap((x[0],), np.mean, n_resamples=200, rng=np.random.default_rng(0))
    assert math.isnan(bca.confidence_interval.low)


def test_empty_cells_are_left_out_and_one_cell_has_no_interval():
    x = _table(0.5)
    x[:, ::2] = np.nan
    got = estimate(x, rng_for("nan"))
    assert got.mean == pytest.approx(np.nanmean(x)) and got.lo <= got.mean <= got.hi
    one = estimate(np.array([[0.7]]), rng_for("one"))
    assert one.mean == 0.7 and math.isnan(one.lo) and math.isnan(one.hi)


def _rliable_poi(x, y):
    """rliable.metrics.probability_of_improvement: per task the Mann-Whitney U of x's runs against y's over
    n_x n_y, averaged over tasks (here tasks are questions)."""
    out = []
    for q in range(x.shape[1]):
        a, b = x[:, q], y[:, q]
        out.append(np.mean([(i > j) + 0.5 * (i == j) for i in a for j in b]))
    return float(np.mean(out))


def test_paired_difference_and_probability_of_improvement():
    y = _table(0.5, seed=1)
    x = np.where(np.random.default_rng(2).random(y.shape) < 0.3, 1.0, y)  # the baseline, some questions fixed
    est, c = compare(x, y, rng_for("cmp"))
    assert est.mean == pytest.approx(x.mean()) and c.diff == pytest.approx((x - y).mean())
    assert c.poi == pytest.approx(_rliable_poi(x, y))
    assert 0 < c.lo <= c.diff <= c.hi and c.p < 0.01 and c.poi_lo <= c.poi <= c.poi_hi
    same, c0 = compare(y, y, rng_for("same"))
    assert (c0.diff, c0.lo, c0.hi, c0.poi) == (0.0, 0.0, 0.0, 0.5) and c0.p == 1.0


def test_pairing_narrows_the_interval_of_a_difference():
    rng = np.random.default_rng(3)
    hard = rng.random(80)  # question difficulty shared by both: what pairing removes
    y = (hard[None, :] < 0.5 + rng.normal(0, 0.05, (3, 80))).astype(float)
    x = (hard[None, :] < 0.58 + rng.normal(0, 0.05, (3, 80))).astype(float)
    _, c = compare(x, y, rng_for("pair"))
    ex, ey = estimate(x, rng_for("x")), estimate(y, rng_for("y"))
    unpaired = math.hypot(ex.hi - ex.lo, ey.hi - ey.lo)  # the width of a difference of independent means
    assert c.hi - c.lo < 0.7 * unpaired


def test_intervals_are_reproducible_and_holm_is_holms():
    x = _table(0.4)
    assert estimate(x, rng_for("a", "m")) == estimate(x, rng_for("a", "m"))
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert overlaps(0.1, 0.3, 0.2) and not overlaps(0.25, 0.3, 0.2) and not overlaps(0.1, 0.3, None)
    with pytest.raises(ValueError, match="shape"):
        compare(x, x[:, :5], rng_for("bad"))


def _per_table(x, y, rng, reps):
    """One table alone, as the report did it before the batch: `scipy.stats.bootstrap` of the seed and question
    indices (percentile), the statistic written out on the resampled cells: mean, paired difference, and per question
    the share of won seed pairs averaged over questions (NaN cells left out). (lows, highs, p of the difference)."""

    def stat(si, qi, axis=-1):
        cells = (si[..., :, None], qi[..., None, :])
        a, b = x[cells], y[cells]  # (resamples, seeds, questions) as drawn
        won = np.where(
            np.isnan(a[..., :, None, :] - b[..., None, :, :]),
            np.nan,
            (a[..., :, None, :] > b[..., None, :, :]) + 0.5 * (a[..., :, None, :] == b[..., None, :, :]),
        )
        return np.stack(
            [np.nanmean(a, (-2, -1)), np.nanmean(a - b, (-2, -1)), np.nanmean(np.nanmean(won, (-3, -2)), -1)]
        )

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of a resample's question with no scored pair
        res = scipy_stats.bootstrap(
            (np.arange(x.shape[0]), np.arange(x.shape[1])),
            stat,
            n_resamples=reps,
            vectorized=True,
            paired=False,
            method="percentile",
            rng=rng,
        )
    d = res.bootstrap_distribution[1]
    p = min(1.0, 2 * min(np.sum(d <= 0) + 1, np.sum(d >= 0) + 1) / (d.size + 1))
    return res.confidence_interval.low, res.confidence_interval.high, p


def test_one_pass_over_many_tables_equals_scipys_bootstrap_of_each_alone():
    rng = np.random.default_rng(4)
    y = _table(0.5, seeds=3, questions=40, seed=5)
    xs = [_table(p, seeds=3, questions=40, seed=k) for k, p in enumerate((0.5, 0.6, 0.7, 0.4))]
    xs[1][0, ::5] = np.nan  # a question some seeds left empty (no crop), others scored
    xs[2][:, :4] = np.nan  # questions no seed scored
    pairs = [(x, y) for x in xs] + [(xs[0], None)]
    found = bootstrap_tables(pairs, np.random.default_rng(11), reps=600)  # every table from one set of draws
    for (x, yy), (est, cmp) in zip(pairs, found):
        lo, hi, p = _per_table(x, y, np.random.default_rng(11), 600)  # the same draws, this table alone
        assert (est.lo, est.hi) == pytest.approx((lo[0], hi[0]), abs=1e-12)
        assert est.mean == pytest.approx(np.nanmean(x), abs=1e-12)
        if yy is None:
            assert cmp is None
            continue
        assert (cmp.lo, cmp.hi, cmp.poi_lo, cmp.poi_hi) == pytest.approx((lo[1], hi[1], lo[2], hi[2]), abs=1e-12)
        assert cmp.p == pytest.approx(p) and cmp.poi == pytest.approx(_rliable_poi_nan(x, y), abs=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        bootstrap_tables([(xs[0], None), (xs[0][:, :5], None)], rng)


def _rliable_poi_nan(x, y):
    out = []
    for q in range(x.shape[1]):
        won = [(i > j) + 0.5 * (i == j) for i in x[:, q] for j in y[:, q] if not (np.isnan(i) or np.isnan(j))]
        if won:
            out.append(np.mean(won))
    return float(np.mean(out))
