"""Capacity over repeats: the interval over seeds, the bracketing probes, and SLOs too loose or too tight."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from bsbench.experiments.capacity import CapacityResult, Probe, find_capacity
from bsbench.experiments.capacity_repeats import CapacityOverRepeats, capacity_ratio, slo_text
from bsbench.stats import NO_CLEAR_DIFFERENCE

SLO = slo_text({"ttft_slo": 3000, "tpot_slo": None, "e2e_slo": 1500}, 0.8)


def _search(capacity: float, max_rate: float = 256.0) -> CapacityResult:
    """The search find_capacity makes of a curve that passes up to `capacity` req/s."""
    return find_capacity(lambda rate: 1.0 if rate <= capacity else 0.0, 0.8, 1.0, 0.01, max_rate)


def test_slo_text_names_the_slo():
    assert SLO == "TTFT <= 3000 ms, E2E <= 1500 ms for >= 80% of requests"
    assert slo_text({}, 0.9).startswith("no SLO set")


def test_the_capacity_interval_over_seeds_is_a_t_interval_of_the_searches():
    caps = [5.0, 6.0, 7.0]
    res = CapacityOverRepeats("bucket", [0, 1, 2], [_search(c) for c in caps], SLO, 256.0)
    rates = np.array(res.rates)
    assert rates == pytest.approx(caps, rel=0.01)  # each search brackets its capacity within 1%
    interval = res.interval
    assert interval is not None
    half = 4.302652729911275 * rates.std(ddof=1) / math.sqrt(3)
    assert (interval.low, interval.high) == pytest.approx((rates.mean() - half, rates.mean() + half))
    assert res.problem() is None and res.found
    brackets = res.brackets_text()
    assert brackets.startswith("s0: ") and brackets.count(";") == 2
    lo, hi = res.results[1].bracket
    assert lo is not None and hi is not None and lo <= 6.0 < hi


def test_a_search_at_the_ceiling_says_the_slo_is_too_loose():
    res = CapacityOverRepeats("continuous", [0, 1], [_search(5.0, max_rate=8.0), _search(100.0, max_rate=8.0)],
                              SLO, 8.0)
    assert not res.found and res.interval is None
    assert res.capacity_text() == "SLO too loose"
    assert res.problem() == ("SLO too loose: TTFT <= 3000 ms, E2E <= 1500 ms for >= 80% of requests still holds at "
                             "the rate ceiling 8 req/s (--max-rate) in 1 of 2 searches; tighten the SLO (or raise "
                             "--max-rate) to measure a capacity")


def test_a_search_missing_at_its_lowest_probe_says_the_slo_is_too_tight():
    res = CapacityOverRepeats("static", [0], [_search(0.0)], SLO, 256.0)
    assert res.capacity_text() == "SLO too tight"
    lowest = min(p.rate for p in res.results[0].probes)
    assert lowest < 0.001
    assert res.problem() == (f"SLO too tight: {SLO} is missed even at the lowest rate probed, {lowest:.3g} req/s, "
                             f"in 1 of 1 search; loosen the SLO (or lower --start-rate)")


def test_capacity_ratio_is_paired_by_seed():
    ref = CapacityOverRepeats("continuous", [0, 1, 2], [_search(c) for c in (4.0, 6.0, 8.0)], SLO, 256.0)
    double = CapacityOverRepeats("bucket", [0, 1, 2], [_search(2 * c) for c in (4.0, 6.0, 8.0)], SLO, 256.0)
    text, interval = capacity_ratio(double, ref)
    assert interval is not None and interval.low > 1.9 and interval.high < 2.1  # paired: the seeds' spread cancels
    assert text.startswith("2.0")
    same = CapacityOverRepeats("uellm", [0, 1, 2], [_search(c * f) for c, f in ((4.0, 1.1), (6.0, 0.9), (8.0, 1.0))],
                               SLO, 256.0)
    assert capacity_ratio(same, ref)[0] == NO_CLEAR_DIFFERENCE
    loose = CapacityOverRepeats("x", [0], [CapacityResult(8.0, [Probe(8.0, 1.0, True)], 0.8, capped=True)], SLO, 8.0)
    assert capacity_ratio(loose, ref) == ("—", None)


def test_capacity_cli_with_repeats_on_the_simulated_backend(tmp_path):
    """Two seeds per scheduler on the simulated 13B: static's searches both end between probes (an interval over
    them), continuous still meets the SLO at the ceiling in both (SLO too loose, no interval). No report page
    (tests/test_capacity.py checks the page; its plots were most of this test's time)."""
    from bsbench.commands.capacity import command

    result = CliRunner().invoke(command, [
        "--backend", "sim", "--model", "llama2-13b", "--gpu", "a100-40gb", "--schedulers", "continuous,static",
        "-w", "smoke", "-n", "16", "--e2e-slo", "1500", "--repeats", "2", "--tolerance", "25%", "--start-rate", "2",
        "--max-rate", "32", "--no-html", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "capacity_summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    for name in ("continuous", "static"):
        assert [r["seed"] for r in summary["schedulers"][name]["repeats"]] == [0, 1]
    static = summary["schedulers"]["static"]
    rates = [r["rate"] for r in static["repeats"]]
    assert static["found"] and all(0 < rate < 32 for rate in rates)  # below the start rate since issue 29
    assert static["low"] <= sum(rates) / 2 <= static["high"]
    continuous = summary["schedulers"]["continuous"]
    assert not continuous["found"] and continuous["problem"].startswith("SLO too loose")
    assert all(r["rate"] == 32 and r["capped"] for r in continuous["repeats"])
    records = [json.loads(p.read_text())["config"] for p in tmp_path.glob("*.json")
               if p.name != "capacity_summary.json"]
    assert {(c["repeat"], c["base_seed"], c["seed"]) for c in records} == {(0, 0, 0), (1, 0, 1)}
    assert not (tmp_path / "report.html").exists()
