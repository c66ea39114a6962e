"""The sweep's statistics against the definitions they claim: scipy's own percentile bootstrap where one level is
resampled, a direct two-level resampling loop, rliable's probability of improvement, Holm's adjustment."""
import math

import numpy as np
import pytest

from r3lab.sweep.stats import compare, estimate, holm, overlaps, rng_for

scipy_stats = pytest.importorskip("scipy.stats")


def _table(p, seeds=3, questions=60, seed=0):
    return (np.random.default_rng(seed).random((seeds, questions)) < p).astype(float)


def test_one_seed_is_scipys_own_percentile_bootstrap_over_questions():
    x = _table(0.6, seeds=1)
    got = estimate(x, np.random.default_rng(7), reps=999)
    ref = scipy_stats.bootstrap((x[0],), np.mean, n_resamples=999, method="percentile",
                                rng=np.random.default_rng(7)).confidence_interval
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
