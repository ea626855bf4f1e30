"""A group's plot data is read from its records once, and the figures drawn from it in worker processes are the
figures the serial path draws."""

from __future__ import annotations

import threading

import numpy as np

from bsbench import metrics
from bsbench.record import EventRow
from bsbench.report import plot_pool, plots
from bsbench.report.plot_data import group_plot, latency_sample
from tests.record_factory import make_record, req


def _groups():
    events = [EventRow("oom", 0.12, ["r1"]), EventRow("preemption", 0.31, ["r2"])]
    return [[("static", make_record("static", speed=1.5, events=events)), ("continuous", make_record("continuous"))],
            [("uellm", make_record("uellm", rate=8.0)), ("bucket", make_record("bucket", rate=8.0, speed=2.0))],
            [("my-policy", make_record("my-policy", rate=16.0))]]


def test_workers_draw_the_same_pngs_as_the_serial_path(tmp_path):
    jobs = [(group_plot(runs), tmp_path / mode, f"g{i}_") for mode in ("serial", "pool")
            for i, runs in enumerate(_groups())]
    serial = plot_pool.render_groups(jobs[:3], workers=1)
    pooled = plot_pool.render_groups(jobs[3:], workers=2)  # 12 figures: above MIN_PARALLEL_FIGURES
    assert [[p.name for p in s] for s in serial] == [[p.name for p in s] for s in pooled]
    assert [p.name for p in serial[0]] == ["g0_latency_cdf.png", "g0_throughput.png", "g0_kv_usage.png",
                                           "g0_batch_size.png"]
    for mine, theirs in zip(sum(serial, []), sum(pooled, [])):
        assert mine.read_bytes() == theirs.read_bytes()  # Agg draws the same pixels from the same data


def test_plot_data_holds_what_the_rows_give_in_one_pass():
    rows = [req("r0", 0.0, [0.1, 0.2], slo_ttft_ms=500.0), req("r1", 0.0, [0.3, 0.5, 0.9], slo_ttft_ms=250.0),
            req("r2", 0.0, status="rejected")]
    record = make_record("static", requests=rows)
    group = group_plot([("a", record)])
    run = group.runs[0]
    for sample, fn in zip(run.latency, (metrics.ttft_s, metrics.tpot_s, metrics.e2el_s)):
        expected = latency_sample(record, fn)
        assert list(sample.finite) == sorted(expected.finite) and sample.censored == expected.censored == 1
    assert group.slos[0] == [250.0, 500.0] and group.slos[1] == group.slos[2] == []
    assert run.throughput["request_throughput"] == record.summary["request_throughput"]
    assert len(run.timelines) == 1 and np.array_equal(run.timelines[0].xs, [s.start_s for s in record.steps])


def test_a_group_without_step_rows_gets_no_timelines(tmp_path):
    group = group_plot([("vllm", make_record("continuous", steps=[]))])
    assert not group.has_steps and plots.figure_names(group) == ["latency_cdf", "throughput"]
    assert [p.name for p in plots.render_group(group, tmp_path)] == ["latency_cdf.png", "throughput.png"]


def test_no_fork_while_another_thread_runs(monkeypatch):
    with monkeypatch.context() as patch:  # a lone thread forks (an earlier test may have left a thread running)
        patch.setattr(threading, "active_count", lambda: 1)
        assert plot_pool.start_method() == "fork"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert plot_pool.start_method() in ("forkserver", "spawn")
    finally:
        stop.set()
        other.join()
