"""--normalise-arrivals: the realised offered rate equals --rate exactly; it is recorded and shown."""

from __future__ import annotations

import math

import pytest

from bsbench import metrics
from bsbench.record import read_record
from bsbench.workloads.arrivals import realised_rate
from bsbench.workloads.build import load_workload, with_rate

try:
    from record_factory import req
except ImportError:
    from tests.record_factory import req


def _times(workload):
    return [r.arrival_s for r in workload.requests]


@pytest.mark.parametrize("arrival", ["poisson", "gamma"])
def test_normalised_arrivals_realise_the_rate_exactly(arrival):
    options = {"num_requests": 40, "rate": 4, "arrival": arrival, "seed": 0}
    if arrival == "gamma":
        options["cv"] = 2.0
    plain = load_workload("smoke", options)
    normal = load_workload("smoke", {**options, "normalise_arrivals": True})
    assert abs(realised_rate(_times(plain)) - 4.0) > 0.2  # 40 Poisson draws at rate 4 offer 5.2 req/s
    assert realised_rate(_times(normal)) == pytest.approx(4.0, rel=1e-12)
    assert _times(normal)[0] == 0.0 and _times(normal)[-1] == pytest.approx(39 / 4)
    # the shape of the gaps is kept: one common scale factor
    factor = _times(normal)[5] / _times(plain)[5]
    assert _times(normal) == pytest.approx([t * factor for t in _times(plain)])
    # deterministic, and another request list than the plain one
    assert _times(load_workload("smoke", {**options, "normalise_arrivals": True})) == _times(normal)
    assert normal.fingerprint() != plain.fingerprint()
    assert normal.spec["normalise_arrivals"] is True and "normalise_arrivals" not in plain.spec
    assert realised_rate(_times(with_rate(normal, 8))) == pytest.approx(8.0, rel=1e-12)


def test_normalising_a_replayed_or_traced_workload_is_refused(tmp_path, trace_csv, bsbench):
    out = bsbench("workload", "show", "trace", "--dataset-path", trace_csv, "--normalise-arrivals")
    assert out.code == 2 and "does not apply to a trace" in out.err
    saved = tmp_path / "w.jsonl"
    assert bsbench("workload", "show", "smoke", "-n", "3", "--save", saved).code == 0
    out = bsbench("workload", "show", saved, "--normalise-arrivals")
    assert out.code == 2 and "--normalise_arrivals cannot change them" in out.err


def test_the_summary_records_the_offered_rate():
    rows = [req(f"r{i}", arrival, [arrival + 0.1]) for i, arrival in enumerate([0.0, 0.25, 0.5, 2.0])]
    assert metrics.summarize(rows, [], [], 3.0)["offered_rate"] == pytest.approx(1.5)
    at_once = [req(f"r{i}", 0.0, [0.1]) for i in range(3)]
    assert metrics.summarize(at_once, [], [], 1.0)["offered_rate"] is None
    assert realised_rate([0.0, 0.0]) == math.inf and realised_rate([1.0]) is None


def test_run_and_compare_show_the_offered_rate(tmp_path, bsbench):
    args = ["run", "-w", "smoke", "-n", "40", "--rate", "4", "--backend", "sim", "--gpu", "a100-40gb",
            "--out", tmp_path, "--quiet"]
    plain = bsbench(*args)
    normal = bsbench(*args, "--normalise-arrivals")
    assert plain.code == 0 and normal.code == 0, plain.err + normal.err
    def offered(text):
        return [line.split("│")[2].strip() for line in text.splitlines() if "offered rate (req/s)" in line]

    assert offered(plain.out) == ["5.19"] and offered(normal.out) == ["4.00"]
    records = sorted(tmp_path.glob("*.json"))
    assert sorted(read_record(p).summary["offered_rate"] for p in records) == pytest.approx([4.0, 5.185], rel=1e-3)
    out = bsbench("compare", *records, "--format", "markdown")
    assert "| Offered rate (req/s) | 5.19 |" in out.out and "| Offered rate (req/s) | 4.00 |" in out.out
