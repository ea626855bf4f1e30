"""bsbench.stats on constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsbench.stats import (
    ACROSS_SEEDS,
    NO_CLEAR_DIFFERENCE,
    PAIRED_OVER_REQUESTS,
    PAIRED_OVER_SEEDS,
    WITHIN_RUN,
    Interval,
    bootstrap,
    paired_bootstrap,
    paired_t_interval,
    statistic_for,
    t_interval,
    t_quantile,
    verdict,
)


@pytest.mark.parametrize(("df", "expected"), [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423),
                                             (1000, 1.9623)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.95, df) == pytest.approx(expected, abs=2e-4)


def test_t_quantile_at_other_levels():
    assert t_quantile(0.90, 5) == pytest.approx(2.0150, abs=2e-4)
    assert t_quantile(0.99, 3) == pytest.approx(5.8409, abs=2e-4)


def test_constant_data_gives_zero_width_intervals():
    within = bootstrap([[7.0] * 50], statistic_for("p99"))
    assert (within.point, within.low, within.high) == (7.0, 7.0, 7.0)
    assert within.method == WITHIN_RUN and within.n == 50
    across = t_interval([3.5, 3.5, 3.5])
    assert (across.point, across.low, across.high) == (3.5, 3.5, 3.5)
    assert across.method == ACROSS_SEEDS and across.n == 3


def test_bootstrap_of_a_normal_mean_covers_mu_with_the_textbook_width():
    mu, sigma, n = 10.0, 2.0, 20_000
    values = np.random.default_rng(1).normal(mu, sigma, n)
    got = bootstrap([values], statistic_for("mean"), resamples=2000, seed=3)
    assert got.point == pytest.approx(values.mean())
    assert got.contains(mu)
    assert got.width == pytest.approx(2 * 1.96 * sigma / math.sqrt(n), rel=0.1)


def test_bootstrap_is_deterministic_for_a_seed_and_differs_across_seeds():
    values = np.random.default_rng(0).exponential(1.0, 300)
    a = bootstrap([values], statistic_for("median"), seed=5)
    assert a == bootstrap([values], statistic_for("median"), seed=5)
    assert a != bootstrap([values], statistic_for("median"), seed=6)


def test_bootstrap_point_is_the_statistic_of_the_data():
    values = np.random.default_rng(2).exponential(1.0, 101)
    got = bootstrap([values], statistic_for("p90"))
    assert got.point == pytest.approx(float(np.percentile(values, 90)))
    assert got.low <= got.point <= got.high


def test_several_repeats_average_the_statistic_of_each():
    runs = [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0, 40.0]]
    got = bootstrap(runs, statistic_for("median"))
    assert got.point == pytest.approx((2.0 + 25.0) / 2)
    assert got.n == 7


def test_paired_fixed_shift_gives_that_shift_exactly():
    a = np.random.default_rng(4).normal(100.0, 15.0, 400)
    diff = paired_bootstrap([a + 7.5], [a], statistic_for("mean"), compare="difference")
    assert diff.point == pytest.approx(7.5)
    assert diff.low == pytest.approx(7.5) and diff.high == pytest.approx(7.5)
    assert diff.method == PAIRED_OVER_REQUESTS


def test_paired_fixed_factor_gives_that_ratio_exactly_for_a_percentile():
    a = np.random.default_rng(5).exponential(50.0, 300)
    got = paired_bootstrap([a * 1.25], [a], statistic_for("p99"))
    assert got is not None
    assert got.point == pytest.approx(1.25) and got.low == pytest.approx(1.25) and got.high == pytest.approx(1.25)


def test_pairing_narrows_the_interval_against_an_unpaired_resample():
    rng = np.random.default_rng(6)
    base = rng.lognormal(3.0, 1.0, 500)  # large spread between requests
    a, b = base * 1.05 + rng.normal(0, 0.5, 500), base
    paired = paired_bootstrap([a], [b], statistic_for("mean"))
    assert paired is not None and not paired.contains(1.0)  # a 5% slowdown is clear when paired
    assert verdict(paired, -1, "new", "old") == "old better"
    shuffled = paired_bootstrap([a], [rng.permutation(b)], statistic_for("mean"))
    assert shuffled is not None and shuffled.width > 3 * paired.width


def test_t_interval_coverage_is_95_percent_over_seeded_trials():
    rng = np.random.default_rng(7)
    trials, mu = 4000, 5.0
    hits = sum(t_interval(rng.normal(mu, 2.0, 4)).contains(mu) for _ in range(trials))
    assert 0.94 <= hits / trials <= 0.96


def test_bootstrap_coverage_is_near_95_percent_over_seeded_trials():
    rng = np.random.default_rng(8)
    trials, mu = 300, 3.0
    hits = sum(bootstrap([rng.normal(mu, 1.0, 200)], statistic_for("mean"), resamples=400, seed=i).contains(mu)
               for i in range(trials))
    assert 0.91 <= hits / trials <= 0.98


def test_paired_t_interval_over_seeds():
    got = paired_t_interval([11.0, 22.0, 33.0], [10.0, 20.0, 30.0])
    assert got is not None and got.method == PAIRED_OVER_SEEDS
    assert (got.point, got.low, got.high) == pytest.approx((1.1, 1.1, 1.1))
    assert paired_t_interval([1.0, 2.0], [0.0, 1.0]) is None


def test_verdicts():
    def iv(low, high):
        return Interval((low + high) / 2, low, high, 0.95, "test", 3)

    assert verdict(iv(0.9, 1.1), 1, "bucket", "continuous") == NO_CLEAR_DIFFERENCE
    assert verdict(iv(1.1, 1.3), 1, "bucket", "continuous") == "bucket better"  # higher throughput
    assert verdict(iv(1.1, 1.3), -1, "bucket", "continuous") == "continuous better"  # higher latency
    assert verdict(iv(0.7, 0.9), -1, "bucket", "continuous") == "bucket better"
    assert verdict(iv(0.7, 0.9), 0, "bucket", "continuous") == "bucket lower"


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        t_interval([1.0])
    with pytest.raises(ValueError):
        bootstrap([[]], statistic_for("mean"))
    with pytest.raises(ValueError):
        bootstrap([[1.0, float("nan")]], statistic_for("mean"))
    with pytest.raises(ValueError):
        paired_bootstrap([[1.0, 2.0]], [[1.0]], statistic_for("mean"))
    assert paired_bootstrap([[1.0, 2.0]], [[0.0, 0.0]], statistic_for("mean")) is None
