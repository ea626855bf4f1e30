"""The gate's two-sample rule on measured repeats: the baseline stores its own 95% intervals (version 2) and a
measured figure or ratio regresses only when the current interval and the baseline's are separated by more than
the tolerance. Single runs are not gated on timings unless asked; version-1 (point) baselines still work."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from bsbench.commands.gate import command
from bsbench.experiments import gate
from bsbench.record import save_record

try:
    from record_factory import make_record, req
except ImportError:
    from tests.record_factory import make_record, req

# per-seed machine noise, as a shared runner shows it: every time of a run x this factor
BASELINE_NOISE = {"continuous": (0.92, 1.0, 1.08), "static": (1.05, 0.95, 1.0)}
RERUN_NOISE = {"continuous": (1.1, 1.12, 1.14), "static": (0.97, 0.93, 1.0)}  # inside the baseline's spread


def _run(scheduler: str, seed: int, slow: float):
    """Seed `seed`'s 30 requests (its own arrivals and exponential service times), every time x `slow`."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(30):
        arrival = 0.05 * i
        first = arrival + rng.exponential(0.2) * slow
        rows.append(req(f"r{i}", arrival, [first + 0.03 * k * slow for k in range(4)]))
    return make_record(scheduler, requests=rows, seed=seed, fingerprint=f"fp-seed{seed}")


def _sweep(noise: dict[str, tuple[float, ...]], static_slowdown: float = 1.0):
    return [_run(name, seed, factor * (static_slowdown if name == "static" else 1.0))
            for name, factors in noise.items() for seed, factor in enumerate(factors)]


def _regressed(result) -> set[tuple[str, str, str]]:
    return {(c.category, c.run, c.metric) for c in result.failures}


def _as_version_1(baseline: dict) -> dict:
    """The same baseline as version 1 wrote it: points only."""
    old = json.loads(json.dumps(baseline))
    old["version"] = 1
    old.pop("ratios")
    for run in old["runs"].values():
        run.pop("intervals")
    return old


def test_the_baseline_stores_intervals_of_measured_figures_and_ratios():
    baseline = gate.build_baseline(_sweep(BASELINE_NOISE))
    assert baseline["version"] == 2
    stored = baseline["runs"]["continuous@4"]["intervals"]["median_e2el_ms"]
    assert stored["low"] < baseline["runs"]["continuous@4"]["metrics"]["median_e2el_ms"] < stored["high"]
    assert stored["method"].startswith("t-interval over seeds") and stored["n"] == 3
    ratio = baseline["ratios"]["static/continuous@4"]["median_e2el_ms"]
    assert ratio["method"].startswith("paired t-interval over seeds") and ratio["low"] < ratio["high"]


def test_identical_noisy_repeats_are_not_flagged():
    baseline = gate.build_baseline(_sweep(BASELINE_NOISE))
    result = gate.check_records(_sweep(RERUN_NOISE), baseline, 0.05)
    assert result.passed, result.failures
    assert {c.category for c in result.checks} == {"counts", "padding", "ratio", "absolute"}
    # the point rule of version 1 flags the same re-run: continuous's TPOT (30 ms x noise) moved by 12%, beyond 5%
    point_only = gate.check_records(_sweep(RERUN_NOISE), _as_version_1(baseline), 0.05)
    assert ("absolute", "continuous@4", "median_tpot_ms") in _regressed(point_only)


def test_a_real_2x_slowdown_of_one_scheduler_is_flagged():
    baseline = gate.build_baseline(_sweep(BASELINE_NOISE))
    result = gate.check_records(_sweep(RERUN_NOISE, static_slowdown=2.0), baseline, 0.05)
    regressed = _regressed(result)
    # (its throughput barely moves: the arrivals set the pace of an underloaded run)
    assert {("ratio", "static/continuous@4", "median_e2el_ms"), ("absolute", "static@4", "median_e2el_ms"),
            ("absolute", "static@4", "median_ttft_ms")} <= regressed
    assert not any(run == "continuous@4" for _, run, _ in regressed)
    ratio = next(c for c in result.failures if c.category == "ratio" and c.metric == "median_e2el_ms")
    assert "baseline" in ratio.note  # judged against the baseline's interval, not its point


def test_a_version_1_baseline_is_read_and_judged_on_its_points(tmp_path):
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(_as_version_1(gate.build_baseline(_sweep(BASELINE_NOISE)))))
    old = gate.load_baseline(path)
    assert gate.check_records(_sweep(BASELINE_NOISE), old, 0.05).passed
    slow = gate.check_records(_sweep(BASELINE_NOISE, static_slowdown=2.0), old, 0.05)
    assert ("ratio", "static/continuous@4", "median_e2el_ms") in _regressed(slow)
    assert all("baseline" not in c.note for c in slow.checks)  # no stored interval to compare with


def test_single_runs_are_not_gated_on_measured_timings_unless_asked():
    one = {name: factors[:1] for name, factors in BASELINE_NOISE.items()}
    baseline = gate.build_baseline(_sweep(one))
    slower = _sweep(one, static_slowdown=2.0)
    result = gate.check_records(slower, baseline, 0.05)
    assert result.passed and {c.category for c in result.checks} == {"counts", "padding"}
    assert any("one run, no interval over seeds" in n and "static/continuous@4" in n for n in result.notes)
    judged = gate.check_records(slower, baseline, 0.05, single_runs=True)
    assert ("ratio", "static/continuous@4", "median_e2el_ms") in _regressed(judged)


def test_cli_writes_a_version_2_baseline_and_refuses_a_broken_interval(tmp_path, bsbench):
    runs, rerun = tmp_path / "base", tmp_path / "rerun"
    for rec in _sweep(BASELINE_NOISE):
        save_record(rec, runs)
    for rec in _sweep(RERUN_NOISE):
        save_record(rec, rerun)
    path = tmp_path / "b.json"
    assert CliRunner().invoke(command, [str(runs), "--baseline", str(path), "--update"]).exit_code == 0
    ok = CliRunner().invoke(command, [str(rerun), "--baseline", str(path)])
    assert ok.exit_code == 0 and "PASS" in ok.output, ok.output
    data = json.loads(path.read_text())
    data["runs"]["static@4"]["intervals"]["median_e2el_ms"] = {"low": 5.0, "high": 1.0}
    path.write_text(json.dumps(data))
    done = bsbench("gate", rerun, "--baseline", path)
    assert done.code == 2 and "static@4" in done.err and "low is above its high" in done.err
    assert "Traceback" not in done.err and len(done.err.strip().splitlines()) == 1
