"""The regression gate on constructed records."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from bsbench.commands.gate import command
from bsbench.errors import BsbenchError
from bsbench.experiments import gate
from bsbench.record import EventRow, save_record

try:
    from record_factory import make_record, req, simple_requests
except ImportError:
    from tests.record_factory import make_record, req, simple_requests


def _sweep(speed_cont=1.0, speed_static=1.5, device_name="Test CPU", static_failed=0, pad=2, rate=4.0):
    static_rows = simple_requests(speed=speed_static)
    for i in range(static_failed):
        static_rows[i] = req(f"r{i}", static_rows[i].arrival_s, [], status="failed", reason="oom")
    return [
        make_record("continuous", rate, speed=speed_cont, device_name=device_name),
        make_record("static", rate, requests=static_rows, pad=pad, device_name=device_name,
                    events=[EventRow("oom", 0.0, ["r0"])] * static_failed),
    ]


def test_parse_tolerance():
    assert gate.parse_tolerance("5%") == pytest.approx(0.05)
    assert gate.parse_tolerance("0.1") == pytest.approx(0.1)
    for bad in ("5", "abc", "-1%", "150%"):
        with pytest.raises(BsbenchError):
            gate.parse_tolerance(bad)


def test_same_records_pass():
    base = gate.build_baseline(_sweep())
    assert base["reference"] == "continuous" and set(base["runs"]) == {"continuous@4", "static@4"}
    result = gate.check_records(_sweep(), base, 0.05, single_runs=True)
    assert result.passed, result.failures
    cats = {c.category for c in result.checks}
    assert cats == {"counts", "padding", "ratio", "absolute"}


def test_no_absolute_skips_absolute_times_but_still_gates_counts_and_ratios():
    base = gate.build_baseline(_sweep(device_name="Test CPU"))
    slower = _sweep(speed_cont=1.3, speed_static=1.95, device_name="Test CPU")  # everything 30% slower
    assert not gate.check_records(slower, base, 0.05, single_runs=True).passed
    relaxed = gate.check_records(slower, base, 0.05, absolute=False, single_runs=True)
    assert relaxed.passed, relaxed.failures
    assert "absolute" not in {c.category for c in relaxed.checks}
    assert any("--no-absolute" in n for n in relaxed.notes)
    failing = gate.check_records(_sweep(static_failed=2, device_name="Test CPU"), base, 0.05, absolute=False)
    assert {c.category for c in failing.failures} >= {"counts"}


def test_uniformly_slower_machine_passes_on_other_device():
    """Everything 30% slower on another device: ratios hold, absolute times are not gated."""
    base = gate.build_baseline(_sweep())
    slow = _sweep(speed_cont=1.3, speed_static=1.5 * 1.3, device_name="Other CPU")
    result = gate.check_records(slow, base, 0.05, single_runs=True)
    assert result.passed, result.failures
    assert any("absolute times not gated" in n for n in result.notes)
    # the same slow-down on the baseline's device is an absolute regression
    same_device = gate.check_records(_sweep(speed_cont=1.3, speed_static=1.5 * 1.3), base, 0.05,
                                     single_runs=True)
    assert not same_device.passed
    assert {c.category for c in same_device.failures} == {"absolute"}


def test_ratio_regression_fails():
    base = gate.build_baseline(_sweep())
    worse = _sweep(speed_static=2.0, device_name="Other CPU")  # static got slower relative to continuous
    failures = gate.check_records(worse, base, 0.05, single_runs=True).failures
    assert [(c.category, c.run, c.metric) for c in failures] == [
        ("ratio", "static/continuous@4", "output_throughput"), ("ratio", "static/continuous@4", "median_e2el_ms")]


def test_separate_ratio_and_time_tolerances():
    base = gate.build_baseline(_sweep())
    worse = _sweep(speed_static=1.8)  # static 20% slower, same device
    assert not gate.check_records(worse, base, 0.05, single_runs=True).passed
    loose = gate.check_records(worse, base, 0.05, ratio_tolerance=0.5, time_tolerance=0.5, single_runs=True)
    assert loose.passed, loose.failures


def test_count_and_padding_regressions_fail():
    base = gate.build_baseline(_sweep())
    result = gate.check_records(_sweep(static_failed=1, pad=4, device_name="x"), base, 0.0)
    failed = {(c.category, c.metric) for c in result.failures}
    assert {("counts", "failed"), ("counts", "oom_events"), ("padding", "padding_ratio")} <= failed


def test_coverage_missing_run_and_changed_workload():
    base = gate.build_baseline(_sweep())
    only_cont = [_sweep()[0]]
    result = gate.check_records(only_cont, base, 0.05)
    assert any(c.category == "coverage" and c.run == "static@4" for c in result.failures)
    changed = _sweep()
    changed[1].workload.fingerprint = "different"
    result = gate.check_records(changed, base, 0.05)
    assert any(c.metric == "workload" for c in result.failures)


def test_cli_update_then_pass_then_fail(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for rec in _sweep(rate=math.inf):
        save_record(rec, good)
    for rec in _sweep(rate=math.inf, speed_static=3.0, static_failed=2):
        save_record(rec, bad)
    baseline = tmp_path / "baselines" / "cpu.json"
    runner = CliRunner()
    up = runner.invoke(command, [str(good), "--baseline", str(baseline), "--update"])
    assert up.exit_code == 0, up.output
    assert json.loads(baseline.read_text())["runs"]["static@inf"]["rate"] == "inf"
    ok = runner.invoke(command, [str(good), "--baseline", str(baseline)])
    assert ok.exit_code == 0, ok.output
    assert "PASS" in ok.output
    ko = runner.invoke(command, [str(bad), "--baseline", str(baseline), "--tolerance", "10%", "--single-runs"])
    assert ko.exit_code == 1, ko.output
    assert "REGRESSED" in ko.output and "static/continuous@inf" in ko.output


def test_cli_bad_baseline_is_user_error(tmp_path):
    save_record(make_record(), tmp_path / "r")
    (tmp_path / "b.json").write_text("{}")
    result = CliRunner().invoke(command, [str(tmp_path / "r"), "--baseline", str(tmp_path / "b.json")])
    assert isinstance(result.exception, BsbenchError) and "not a bsbench gate baseline" in str(result.exception)


def test_the_real_entry_point_exits_1_on_a_regression(tmp_path, bsbench):
    """Through bsbench.cli.main, as CI calls it: a failed gate must reach the shell as exit code 1."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    for rec in _sweep(rate=math.inf):
        save_record(rec, good)
    for rec in _sweep(rate=math.inf, speed_static=3.0, static_failed=2):
        save_record(rec, bad)
    baseline = tmp_path / "baseline.json"
    assert bsbench("gate", good, "--baseline", baseline, "--update").code == 0
    assert bsbench("gate", good, "--baseline", baseline).code == 0
    failed = bsbench("gate", bad, "--baseline", baseline, "--tolerance", "10%")
    assert failed.code == 1 and "REGRESSED" in failed.out
