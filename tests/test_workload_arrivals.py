"""Arrival processes (large-sample statistics), rate pairing, SLOs, priorities and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsbench.errors import BsbenchError
from bsbench.workloads.arrivals import arrival_times, make_arrival_spec
from bsbench.workloads.build import build_workload, load_workload, with_rate
from bsbench.workloads.slo import assign_priorities, draw_slos, parse_bound


def _gaps(process: str, rate: float, n: int = 50000, **kw) -> np.ndarray:
    times = arrival_times(make_arrival_spec(process, rate, **kw), n, np.random.default_rng(7))
    return np.diff(times)


def test_poisson_mean_rate_and_cv() -> None:
    gaps = _gaps("poisson", 8.0)
    assert 1 / gaps.mean() == pytest.approx(8.0, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.03)


@pytest.mark.parametrize("cv", [0.5, 2.0])
def test_gamma_rate_and_cv(cv: float) -> None:
    gaps = _gaps("gamma", 4.0, cv=cv)
    assert 1 / gaps.mean() == pytest.approx(4.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)
    assert make_arrival_spec("gamma", 4, cv=cv).burstiness == pytest.approx(1 / cv**2)


def test_constant_and_infinite_rate() -> None:
    assert arrival_times(make_arrival_spec("constant", 2), 4, np.random.default_rng(0)) == [0.0, 0.5, 1.0, 1.5]
    assert arrival_times(make_arrival_spec("poisson", "inf"), 3, np.random.default_rng(0)) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs,message", [
    ({"rate": 0}, "rate must be a number > 0"), ({"rate": -1}, "rate must be a number > 0"),
    ({"rate": "fast"}, "rate must be"),
    ({"process": "gamma", "rate": 1, "burstiness": 0}, "burstiness must be > 0"),
    ({"process": "gamma", "rate": 1, "cv": -1}, "cv must be > 0"),
    ({"process": "weibull", "rate": 1}, "unknown arrival process"),
])
def test_bad_arrival_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(BsbenchError, match=message):
        make_arrival_spec(kwargs.pop("process", "poisson"), **kwargs)


def test_same_seed_same_requests_to_the_bit_and_other_seed_differs() -> None:
    opts = dict(num_requests=40, rate=5, arrival="gamma", burstiness=0.5, e2e_slo="150000..300000",
                online_share=0.3, filter="vllm")
    a, b = build_workload("sharegpt", seed=3, **opts), build_workload("sharegpt", seed=3, **opts)
    assert a.requests == b.requests and a.fingerprint() == b.fingerprint()
    assert [r.arrival_s.hex() for r in a.requests] == [r.arrival_s.hex() for r in b.requests]
    c = build_workload("sharegpt", seed=4, **opts)
    assert c.fingerprint() != a.fingerprint()


def test_rates_are_paired_and_prompts_do_not_depend_on_arrivals() -> None:
    slow = load_workload("smoke", {"rate": 1})
    fast = load_workload("smoke", {"rate": 4})
    offline = load_workload("smoke", {})
    assert [r.prompt_ids for r in slow.requests] == [r.prompt_ids for r in fast.requests] \
        == [r.prompt_ids for r in offline.requests]
    for s, f in zip(slow.requests, fast.requests):
        assert f.arrival_s == pytest.approx(s.arrival_s / 4, rel=1e-12)
    assert with_rate(slow, 4).fingerprint() == fast.fingerprint()
    assert with_rate(fast, "inf").fingerprint() == offline.fingerprint()
    assert slow.spec["rate"] == 1.0 and offline.spec["rate"] == math.inf and slow.spec["arrival"] == "poisson"


def test_smaller_sample_is_prefix_of_larger_one() -> None:
    small = load_workload("sharegpt-vllm", {"num_requests": 10})
    big = load_workload("sharegpt-vllm", {"num_requests": 30})
    assert [r.prompt_ids for r in small.requests] == [r.prompt_ids for r in big.requests[:10]]


def test_slo_fixed_and_ranges() -> None:
    assert parse_bound("500", "--ttft-slo").low == 500 and parse_bound("1e3", "x").high == 1000
    bound = parse_bound("150000..300000", "--e2e-slo")
    slos = draw_slos(2000, np.random.default_rng(1), parse_bound(200, "t"), None, bound)
    e2e = np.array([s.e2e_ms for s in slos])
    assert all(s.ttft_ms == 200 and s.tpot_ms is None for s in slos)
    assert 150000 <= e2e.min() and e2e.max() <= 300000 and e2e.mean() == pytest.approx(225000, rel=0.02)
    for bad in ("300..150", "0", "abc", "-5"):
        with pytest.raises(BsbenchError):
            parse_bound(bad, "--e2e-slo")


def test_priorities_by_share() -> None:
    prios = assign_priorities(101, np.random.default_rng(0), 0.3)
    assert prios.count("online") == 30 and prios.count("offline") == 71
    with pytest.raises(BsbenchError, match="online share"):
        assign_priorities(5, np.random.default_rng(0), 1.5)
