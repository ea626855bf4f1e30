"""The sweep's one progress row (experiments.sweep_progress): runs done / running / left, ETA, per-worker state."""

from __future__ import annotations

import io

from bsbench.experiments.executors import RunTask
from bsbench.experiments.sweep_progress import SweepWatch, eta_text
from bsbench.progress import Progress


def _task(index: int, scheduler: str) -> RunTask:
    return RunTask(index, f"k{index}", scheduler, 2.0, 0, None, "fp")


def test_the_row_counts_done_running_left_and_names_each_worker():
    stream = io.StringIO()
    with Progress(enabled=True, terminal=False, stream=stream, interval_s=1e9).task("sweep", total=6,
                                                                                    unit="runs") as task:
        watch = SweepWatch(task)
        watch.planned(2)  # two runs resumed
        watch.started(_task(2, "static"), "worker 1")
        watch.started(_task(3, "bucket"), "worker 2")
        assert task.done == 2
        assert watch.detail() == ("2 running, 2 left [worker 1: static @ 2 req/s seed 0; "
                                  "worker 2: bucket @ 2 req/s seed 0]")
        watch.retrying(_task(3, "bucket"), "the worker process died mid-run")
        watch.ended("k2")
        assert task.done == 3
        detail = watch.detail()
        assert detail.startswith("0 running, 3 left, ETA ") and "1 retried" in detail and "worker" not in detail
        watch.started(_task(3, "bucket"), "worker 2")
        watch.ended("k3", failed=True)
        assert task.done == 4 and "1 failed" in watch.detail()
    assert stream.getvalue() == ""  # off a terminal: a line per interval (and at the end of a long sweep), none per run


def test_eta_text_picks_a_readable_unit():
    assert eta_text(42) == "ETA 42 s"
    assert eta_text(210) == "ETA 3.5 min"
    assert eta_text(4 * 3600) == "ETA 4.0 h"


def test_quiet_sweep_prints_no_progress(bsbench, tmp_path):
    got = bsbench("sweep", "--backend", "sim", "--model", "llama2-13b", "--gpu", "a100-40gb", "-w", "synthetic",
                  "-n", "4", "--schedulers", "static", "--rates", "2", "--no-html", "--quiet",
                  "--executor", "process", "--workers", "2", "--out", tmp_path / "out")
    assert got.code == 0, got.err[-2000:]
    assert got.err == ""
