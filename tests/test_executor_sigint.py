"""A real Ctrl-C on a process-pool sweep (issue 12): SIGINT reaches the driver and its workers together, as a
terminal sends it to the foreground process group. The sweep exits 130, keeps every finished record, and the
same command resumes: only the runs left are executed and the summary then holds every run once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bsbench.experiments.sweep import load_summary

SWEEP = ("sweep", "--backend", "sim", "--model", "llama2-13b", "--gpu", "a100-40gb", "-w", "synthetic", "-n", "300",
         "--schedulers", "static,continuous,uellm,bucket", "--rates", "2,4,8,16", "--repeats", "2", "--no-html",
         "--quiet", "--executor", "process", "--workers", "2")
TOTAL_RUNS = 4 * 4 * 2


def _sweep(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bsbench", *SWEEP, "--out", str(out)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group: the signal below goes to it alone


def _wait_for_a_record(proc: subprocess.Popen, runs: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before it was interrupted: {proc.communicate()[1][-2000:]}")
        if runs.is_dir() and any(runs.glob("*.json")):
            return
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("no run finished in time")


def test_sigint_to_the_process_group_exits_130_keeps_records_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    proc = _sweep(out)
    _wait_for_a_record(proc, out / "runs")
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    kept = sorted(p.name for p in (out / "runs").glob("*.json"))
    summary = load_summary(out)
    assert summary["interrupted"] is True
    assert 1 <= summary["finished_runs"] == len(kept) < TOTAL_RUNS

    rerun = _sweep(out)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    summary = load_summary(out)
    assert summary["interrupted"] is False
    assert summary["finished_runs"] == TOTAL_RUNS == len(list((out / "runs").glob("*.json")))
    assert set(kept) <= {p.name for p in (out / "runs").glob("*.json")}
    assert sum(1 for run in summary["runs"] if run["resumed"]) == len(kept)
