"""Error statistics of predictions, per layout and end to end, and scheduler ranking."""

from __future__ import annotations

import pytest

from bsbench.sim.accuracy import end_to_end_errors, error_stats, errors_by_layout, ranking, ranking_preserved


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
