"""Reports that cannot mislead: censored latencies, best marks over fewer completions, runs without SLOs."""

from __future__ import annotations

import json
import math

import pytest

from bsbench import metrics
from bsbench.experiments import gate
from bsbench.record import save_record

try:
    from record_factory import make_record, req, simple_requests
except ImportError:
    from tests.record_factory import make_record, req, simple_requests


def test_censored_percentile_known_answers():
    values = [4.0, 1.0, 3.0, 2.0]
    assert metrics.censored_percentile(values, 0, 50) == pytest.approx(2.5)  # numpy's linear interpolation
    # five requests, one never finished (+inf): positions 0..4, the 4th is the censored one
    assert metrics.censored_percentile(values, 1, 50) == pytest.approx(3.0)
    assert metrics.censored_percentile(values, 1, 75) == pytest.approx(4.0)  # position 3.0: the largest finite
    assert metrics.censored_percentile(values, 1, 76) == math.inf  # interpolates into the censored tail
    assert metrics.censored_percentile([], 3, 10) == math.inf
    assert metrics.censored_percentile([], 0, 50) is None
    assert metrics.censored_percentile(values, 0, 99) == pytest.approx(3.97)


def _half_failed_static():
    """continuous completes 4/4; static completes 2/4, and its completed requests were the fast ones."""
    rows = simple_requests(speed=0.5)
    rows[2] = req("r2", rows[2].arrival_s, [], status="failed", reason="oom")
    rows[3] = req("r3", rows[3].arrival_s, [], status="rejected")
    return [make_record("continuous", speed=1.0), make_record("static", requests=rows)]


def _compare(tmp_path, bsbench, records, *args):
    for record in records:
        save_record(record, tmp_path / "runs")
    return bsbench("compare", tmp_path / "runs", *args)


def test_fewer_completions_are_never_plain_best(tmp_path, bsbench):
    out = _compare(tmp_path, bsbench, _half_failed_static(), "--format", "markdown")
    assert out.code == 0, out.err
    rows = {line.split(" | ")[0].strip("| "): line for line in out.out.splitlines() if line.startswith("| ")}
    tpot = rows["TPOT median (ms)"]
    assert "best*" in tpot and "**" not in tpot.split(" | ")[2]  # static's lower TPOT: marked best*, not bold
    assert "static completed 2/4" in out.out and "most: 4" in out.out
    assert "best*" not in rows["SLO attainment"].split(" | ")[1]  # a full completer is never starred
    table = _compare(tmp_path, bsbench, [])
    assert "best*" in table.out and "static completed 2/4" in " ".join(table.out.split())


def test_per_submitted_view_counts_unfinished_requests_as_inf(tmp_path, bsbench):
    out = _compare(tmp_path, bsbench, _half_failed_static(), "--latency-over", "submitted", "--format", "json")
    assert out.code == 0, out.err
    group = json.loads(out.out)["groups"][0]
    e2e = group["metrics"]["p99_e2el_ms"]
    assert e2e["static"] == "inf" and isinstance(e2e["continuous"], float)
    assert group["metrics"]["median_e2el_ms"]["static"] == "inf"  # position 1.5 of 0..3: between 2nd and a failure
    assert "median_itl_ms" not in group["metrics"] and group["latency_over"] == "submitted"
    md = _compare(tmp_path, bsbench, [], "--latency-over", "submitted", "--format", "markdown")
    assert "E2E p99 per submitted (ms)" in md.out and "| inf |" in md.out.replace("inf best*", "inf")
    assert "failed or rejected request counts as +inf" in md.out


def test_runs_without_slos_say_so_everywhere(tmp_path, bsbench):
    records = [make_record(s, requests=simple_requests(slo_ttft_ms=None)) for s in ("continuous", "static")]
    for fmt in ("table", "markdown", "csv", "json"):
        out = _compare(tmp_path, bsbench, records if fmt == "table" else [], "--format", fmt)
        assert out.code == 0, out.err
        assert "no SLOs set" in out.out, fmt
        assert "100.0%" not in out.out, fmt  # no vacuous attainment
    # plots: the goodput panel says "no SLOs set" instead of bars (test_plots.py::test_goodput_panel_only_with_slos)


def test_gate_says_no_slos_instead_of_gating_attainment():
    records = [make_record(s, requests=simple_requests(slo_ttft_ms=None)) for s in ("continuous", "static")]
    baseline = gate.build_baseline(records)
    assert all(r["slos"] == "no SLOs set" and r["metrics"]["slo_attainment"] is None
               for r in baseline["runs"].values())
    result = gate.check_records(records, json.loads(json.dumps(baseline)), 0.05)
    assert result.passed
    assert not [c for c in result.checks if c.metric == "slo_attainment"]
    assert any("SLO attainment not gated" in n and "no SLOs set" in n for n in result.notes)
