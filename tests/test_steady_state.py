"""Steady-state verdicts (issue 33): known answers from queueing theory on the simulated backend.

One request at a time (continuous, max_num_seqs=1) with fixed prompt and output lengths: every request takes
the same service time S on the cost model, so the system is an M/D/1 (Poisson arrivals) or D/D/1 (even
arrivals) queue whose service rate is 1/S exactly.
"""

from __future__ import annotations

import pytest

from bsbench.backends.config import RunConfig
from bsbench.backends.run import run_benchmark, session_for
from bsbench.experiments.capacity import capacity_search, search_and_confirm
from bsbench.metrics import steady
from bsbench.record.window import Amount, WindowSpec, resolve_window
from bsbench.workloads.build import load_workload

ONE_AT_A_TIME = RunConfig(scheduler="continuous", scheduler_options={"max_num_seqs": 1}, backend="sim",
                          clock="virtual", gpu="a100-40gb", model="llama2-13b")


def workload(rate: float, n: int, arrival: str = "poisson", seed: int = 0, ttft_slo: float = 1e7):
    return load_workload("synthetic", {"num_requests": n, "rate": rate, "arrival": arrival, "input_len": 64,
                                       "output_len": 32, "length_dist": "fixed", "ttft_slo": ttft_slo,
                                       "seed": seed})


def run(rate: float, n: int, arrival: str = "poisson", seed: int = 0, config: RunConfig = ONE_AT_A_TIME,
        **kw):
    return run_benchmark(workload(rate, n, arrival, seed, **kw), config, progress=False,
                         session=session_for(config), save=False)


@pytest.fixture(scope="module")
def service_s() -> float:
    """S: one request alone, first scheduled to finish (prefill + 31 decode steps)."""
    (row,) = run(1.0, 1).requests
    assert row.finish_s is not None and row.first_scheduled_s is not None
    return row.finish_s - row.first_scheduled_s


def test_the_window_leaves_out_warmup_and_cooldown_and_says_why():
    window = resolve_window([float(i) for i in range(100)])
    assert window is not None and (window.start_s, window.end_s, window.scored) == (10.0, 89.0, 80)
    assert "warm-up" in window.reason and "cool-down" in window.reason
    timed = resolve_window([float(i) for i in range(100)], WindowSpec(Amount.parse("5s"), Amount.parse("20s")))
    assert timed is not None and (timed.start_s, timed.end_s, timed.scored) == (5.0, 25.0, 21)
    counted = resolve_window([float(i) for i in range(100)], WindowSpec(Amount.parse("3"), Amount.parse("50")))
    assert counted is not None and (counted.start_s, counted.end_s, counted.scored) == (3.0, 52.0, 50)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_below_eighty_percent_of_the_service_rate_is_not_overloaded(service_s, seed):
    record = run(0.79 / service_s, 600, seed=seed)
    assert not record.summary["overloaded"], record.summary["overload"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_above_110_percent_of_the_service_rate_is_overloaded(service_s, seed):
    record = run(1.12 / service_s, 1000, seed=seed)
    assert record.summary["overloaded"], record.summary["overload"]
    assert record.summary["overload"]["backlog_end"] > record.summary["overload"]["backlog_start"]


def test_a_short_run_above_capacity_with_high_attainment_is_still_overloaded(service_s):
    """The transient that flatters: 150 requests at 1.5/S against a 60 s TTFT SLO all meet it."""
    record = run(1.5 / service_s, 150, ttft_slo=60_000)
    assert steady(record.summary, "slo_attainment") == 1.0
    assert record.summary["overloaded"]


def _capacity(service_s: float, window_s: float, config: RunConfig = ONE_AT_A_TIME) -> tuple[float, float | None]:
    """Capacity at a loose SLO on even arrivals (a D/D/1 queue), and its confirmation at twice the window."""
    session = session_for(config)

    def probe_all_at(doubled: bool):
        span = (2 if doubled else 1) * window_s

        def probe_all(rates):
            got = {}
            for key, rate in rates.items():
                n = int(rate * span / 0.8) + 2
                spec = WindowSpec(Amount(0.1, "share"), Amount(span, "s"))
                record = run_benchmark(workload(rate, n, "constant"), RunConfig(**{
                    **{f: getattr(config, f) for f in ("scheduler", "scheduler_options", "backend", "clock", "gpu",
                                                       "model")}, "window": spec}), progress=False,
                    session=session, save=False)
                got[key] = (steady(record.summary, "slo_attainment"), {"overloaded": record.summary["overloaded"]})
            return got
        return probe_all

    found, confirmed = search_and_confirm({0: capacity_search(0.8, 0.5 / service_s, 0.02, 64.0)}, probe_all_at,
                                          0.02, 64.0)
    again = confirmed[0]
    assert found[0].rate is not None
    return found[0].rate, None if again is None else again.rate


def test_capacity_at_a_loose_slo_is_the_service_rate_and_holds_at_twice_the_duration(service_s):
    rate, confirmed = _capacity(service_s, 60.0)
    assert rate == pytest.approx(1 / service_s, rel=0.05)
    assert confirmed is not None and confirmed == pytest.approx(rate, rel=0.10)


def test_batched_service_rate_is_found_too():
    """Static batches of 4 with even arrivals: a batch of 4 equal requests takes S4 (its prefill and 31 decode
    steps of 4), so the service rate is 4 / S4 and the capacity lands within 5% of it."""
    config = RunConfig(scheduler="static", scheduler_options={"max_batch_size": 4, "batch_timeout": 1e6}, backend="sim",
                       clock="virtual", gpu="a100-40gb", model="llama2-13b")
    batch = run_benchmark(workload(1e6, 4), config, progress=False, session=session_for(config), save=False)
    s4 = max(r.finish_s for r in batch.requests) - min(r.first_scheduled_s for r in batch.requests)
    rate, _ = _capacity(s4 / 4, 60.0, config)
    assert rate == pytest.approx(4 / s4, rel=0.05)
