"""The gate with intervals: measured figures regress only when their 95% interval is beyond the tolerance;
virtual-time figures stay exact."""

from __future__ import annotations

import numpy as np

from bsbench.experiments.gate import build_baseline, check_records

try:
    from record_factory import make_record, req
except ImportError:
    from tests.record_factory import make_record, req

SIM = {"backend": "sim", "clock": "virtual", "gpu": "a100-40gb"}


def _record(scheduler: str, slow: float, **config):
    """40 requests with exponential TTFTs (seed 0: the same draws for every call), every time x `slow`."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        arrival = 0.05 * i
        first = arrival + rng.exponential(0.2) * slow
        rows.append(req(f"r{i}", arrival, [first, first + 0.02 * slow, first + 0.04 * slow]))
    return make_record(scheduler, requests=rows, **config)


def _failed(result, category):
    return sorted({(c.run, c.metric) for c in result.failures if c.category == category})


def test_a_noisy_measured_slowdown_inside_its_interval_is_not_a_regression():
    baseline = build_baseline([_record("continuous", 1.0), _record("static", 1.0)])
    current = [_record("continuous", 1.10), _record("static", 1.0)]
    result = check_records(current, baseline, 0.05, single_runs=True)
    median = next(c for c in result.checks if c.run == "continuous@4" and c.metric == "median_ttft_ms")
    assert median.current > median.baseline * 1.05  # the point estimate alone would be flagged
    assert median.passed and median.note.startswith("95% interval")
    # TTFT is noisy and its slowdown stays inside its interval; TPOT has no spread (every gap x 1.10): flagged
    assert _failed(result, "absolute") == [("continuous@4", "median_tpot_ms")]


def test_a_clear_measured_regression_is_flagged():
    baseline = build_baseline([_record("continuous", 1.0), _record("static", 1.0)])
    current = [_record("continuous", 1.0), _record("static", 3.0)]
    result = check_records(current, baseline, 0.05, single_runs=True)
    assert ("static@4", "median_ttft_ms") in _failed(result, "absolute")
    ratio = [c for c in result.failures if c.category == "ratio" and c.metric == "median_e2el_ms"]
    assert ratio and ratio[0].note.startswith("95% interval")  # static / continuous 3x slower: paired, clear


def test_virtual_time_figures_are_compared_exactly():
    baseline = build_baseline([_record("continuous", 1.0, **SIM), _record("static", 1.0, **SIM)])
    current = [_record("continuous", 1.10, **SIM), _record("static", 1.0, **SIM)]
    result = check_records(current, baseline, 0.05, single_runs=True)
    failed = _failed(result, "absolute")
    assert ("continuous@4", "median_ttft_ms") in failed
    assert all(c.note == "" for c in result.checks if c.category in ("absolute", "ratio"))
    assert check_records([_record("continuous", 1.0, **SIM), _record("static", 1.0, **SIM)], baseline, 0.0).passed
