"""The mean KV usage is weighted by time: long steps count more, and idle time counts as empty."""

from __future__ import annotations

import pytest

from bsbench.metrics import summarize, time_weighted_mean
from tests.record_factory import step


def test_time_weighted_mean():
    assert time_weighted_mean([0.2, 0.6], [3.0, 1.0]) == pytest.approx(0.3)
    assert time_weighted_mean([0.5], [0.0]) is None
    assert time_weighted_mean([], []) is None


def test_mean_kv_usage_weighs_steps_by_duration_and_idle_time_as_empty():
    # a short step at half the cache, a long step with the cache full, then 4 s idle waiting for arrivals
    steps = [step(0.0, 1.0, kv_usage=0.5, kv_blocks_used=5), step(1.0, 3.0, kv_usage=1.0, kv_blocks_used=10)]
    summary = summarize([], steps, [], duration_s=8.0, num_kv_blocks=10)
    assert summary["mean_kv_usage"] == pytest.approx((0.5 * 1.0 + 1.0 * 3.0) / 8.0)  # 0.4375; a plain mean: 0.75
    assert summary["peak_kv_usage"] == 1.0
