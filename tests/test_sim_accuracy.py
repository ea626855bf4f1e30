"""Error statistics of predictions, per layout and end to end, and scheduler ranking."""

from __future__ import annotations

import pytest

from bsbench.sim.accuracy import (
    decisive_pairs,
    end_to_end_errors,
    error_stats,
    errors_by_layout,
    median_summary,
    ranking,
    ranking_preserved,
    repeat_noise,
    spread,
)


def test_error_stats_by_hand():
    stats = error_stats([1.0, 2.0, 4.0, 0.0], [1.1, 1.0, 4.0, 3.0])  # the 0.0 measurement is skipped
    assert stats["n"] == 3
    assert stats["mape"] == pytest.approx((0.1 + 0.5 + 0.0) / 3)
    assert stats["bias"] == pytest.approx((0.1 - 0.5 + 0.0) / 3)
    assert stats["max_ape"] == pytest.approx(0.5)
    assert stats["p90_ape"] == pytest.approx(0.1 + 0.8 * 0.4)  # numpy's linear interpolation of (0, 0.1, 0.5)
    assert error_stats([], [])["mape"] is None


def test_errors_by_layout():
    out = errors_by_layout([("packed", 1.0, 1.2), ("padded", 2.0, 1.0), ("packed", 1.0, 1.0)])
    assert out["packed"]["n"] == 2 and out["packed"]["mape"] == pytest.approx(0.1)
    assert out["padded"]["bias"] == pytest.approx(-0.5) and out["all"]["n"] == 3


def test_end_to_end_and_ranking():
    real = {"median_ttft_ms": 100.0, "output_throughput": 50.0, "slo_attainment": None}
    sim = {"median_ttft_ms": 110.0, "output_throughput": 45.0, "slo_attainment": 0.5}
    errors = end_to_end_errors(real, sim, ("median_ttft_ms", "output_throughput", "slo_attainment"))
    assert errors["median_ttft_ms"] == pytest.approx(0.1) and errors["output_throughput"] == pytest.approx(-0.1)
    assert errors["slo_attainment"] is None  # no real figure to compare with
    # throughput: higher is better; latency: lower is better
    assert ranking({"a": 1.0, "b": 3.0, "c": 2.0}, "output_throughput") == ["b", "c", "a"]
    assert ranking({"a": 1.0, "b": 3.0, "c": 2.0}, "median_e2el_ms") == ["a", "c", "b"]
    assert ranking_preserved({"a": 1.0, "b": 3.0}, {"a": 10.0, "b": 30.0}, "output_throughput")
    assert not ranking_preserved({"a": 1.0, "b": 3.0}, {"a": 3.0, "b": 1.0}, "output_throughput")


def test_median_summary_and_spread_over_repeated_runs():
    runs = [{"output_throughput": 100.0, "median_e2el_ms": 10.0}, {"output_throughput": 120.0, "median_e2el_ms": None},
            {"output_throughput": 90.0, "median_e2el_ms": 14.0}]
    middle = median_summary(runs, ("output_throughput", "median_e2el_ms", "p99_ttft_ms"))
    assert middle == {"output_throughput": 100.0, "median_e2el_ms": 12.0, "p99_ttft_ms": None}
    assert spread(runs, "output_throughput") == pytest.approx(0.3)
    assert spread(runs[:1], "output_throughput") is None and spread(runs, "p99_ttft_ms") is None


def test_repeat_noise_is_the_distance_of_each_timing_from_its_plans_median():
    points = [{"samples_s": [1.0, 1.1, 0.9]}, {"samples_s": [2.0, 2.0]}, {"samples_s": [5.0]}, {"name": "no samples"}]
    noise = repeat_noise(points)
    assert noise["n"] == 5 and noise["mean"] == pytest.approx(0.2 / 5)
    assert repeat_noise([{"samples_s": [3.0]}]) == {"n": 0, "mean": None, "p90": None}


def test_decisive_pairs_count_only_pairs_every_real_repeat_orders_alike():
    real = {"a": [10.0, 11.0, 12.0], "b": [5.0, 6.0, 7.0], "c": [9.0, 12.0, 8.0]}
    # a > b in every repeat, c > b in every repeat, a vs c flips from repeat to repeat: a tie, not counted
    assert decisive_pairs(real, {"a": 9.0, "b": 4.0, "c": 20.0}) == (2, 2)
    assert decisive_pairs(real, {"a": 3.0, "b": 4.0, "c": 20.0}) == (2, 1)  # the simulator puts b over a
    assert decisive_pairs(real, {"a": 9.0, "b": 9.0, "c": 9.0}) == (2, 0)  # a simulated tie keeps no order
    assert decisive_pairs({"a": [1.0, 2.0], "b": [1.0, 1.0]}, {"a": 2.0, "b": 1.0}) == (0, 0)  # a real tie
    with pytest.raises(ValueError):
        decisive_pairs({"a": [1.0], "b": [1.0, 2.0]}, {"a": 1.0, "b": 1.0})
