"""Plots a person can trust: scheduler colours, censored CDFs, log axes, SLO lines, event markers, bands, Pareto."""

import math
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.colors import to_hex

from bsbench import metrics
from bsbench.record import EventRow
from bsbench.report import plots, plots_sweep
from bsbench.report.plot_base import plt
from bsbench.report.style import KNOWN_COLORS, OTHER_COLORS, scheduler_color
from tests.record_factory import make_record, req, simple_requests


def _lines(ax):
    return [line for line in ax.get_lines() if line.get_label() and not line.get_label().startswith("_")]


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_known_schedulers_have_fixed_colours_and_others_a_stable_distinct_one():
    assert scheduler_color("bucket") == KNOWN_COLORS["bucket"] != scheduler_color("static")
    mine = scheduler_color("my-policy")
    assert mine in OTHER_COLORS and mine not in KNOWN_COLORS.values()
    # stable across processes (Python's str hash is salted per process; the colour must not be)
    code = "from bsbench.report.style import scheduler_color; print(scheduler_color('my-policy'))"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PATH": "", **_pythonpath()}).stdout.strip()
        assert out == mine
    assert len({scheduler_color(f"policy{i}") for i in range(40)}) > 3  # the hash spreads names


def _pythonpath():
    import os

    return {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}


def test_one_colour_per_scheduler_in_every_plot(ax):
    runs = [("bucket", make_record("bucket")), ("continuous", make_record("continuous", speed=2))]
    samples = [(label, rec.config.scheduler, plots.latency_sample(rec, metrics.ttft_s)) for label, rec in runs]
    plots.draw_latency_cdf(ax, "TTFT", samples)
    plots.draw_timeline(ax, runs, "kv_usage")
    points = [{"scheduler": s, "rate": r, "output_throughput": 10.0 * r, "p99_ttft_ms": 100.0 * r}
              for s in ("bucket", "continuous") for r in (1.0, 2.0)]
    plots_sweep.draw_versus_rate(ax, points, "output_throughput", plots_sweep.RateAxis([1.0, 2.0]))
    plots_sweep.draw_pareto(ax, points, "p99_ttft_ms")
    colours = {}
    for line in _lines(ax):
        colours.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
    assert colours["bucket"] == {KNOWN_COLORS["bucket"]} and colours["continuous"] == {KNOWN_COLORS["continuous"]}


def test_failed_and_rejected_requests_are_censored_past_the_axis_end(ax):
    rows = simple_requests(6) + [req("f", 0.1, status="failed"), req("x", 0.2, status="rejected")]
    sample = plots.latency_sample(make_record("static", requests=rows), metrics.e2el_s)
    assert (len(sample.finite), sample.censored, sample.submitted) == (6, 2, 8)
    xs, ys = plots.censored_cdf(sample)
    assert ys[-1] == pytest.approx(6 / 8) and xs[-1] == max(sample.finite)  # the CDF does not reach 1
    plots.draw_latency_cdf(ax, "E2E", [("static", "static", sample)])
    assert [t.get_text() for t in ax.texts] == ["2 failed/rejected"]
    edge = ax.get_xlim()[1]
    markers = [line for line in ax.get_lines() if line.get_marker() == ">"]
    assert len(markers) == 1 and list(markers[0].get_xdata()) == [edge] and list(markers[0].get_ydata()) == [0.75]
    assert not markers[0].get_clip_on()  # drawn on the axis edge, past the last finite latency


def test_all_completed_run_reaches_one_and_has_no_censored_marker(ax):
    sample = plots.latency_sample(make_record("continuous"), metrics.e2el_s)
    assert sample.censored == 0 and plots.censored_cdf(sample)[1][-1] == pytest.approx(1.0)
    plots.draw_latency_cdf(ax, "E2E", [("continuous", "continuous", sample)])
    assert len(ax.texts) == 0 and not [line for line in ax.get_lines() if line.get_marker() == ">"]


def test_log_axis_only_when_the_spread_is_wide():
    assert plots.wide_spread([10.0, 20.0, 30.0, 150.0]) is False
    assert plots.wide_spread([10.0] * 5 + [5000.0] * 5) is True
    for values, scale in (([10.0, 20.0, 40.0], "linear"), ([1.0, 2.0, 3000.0, 5000.0], "log")):
        fig, ax = plt.subplots()
        plots.draw_latency_cdf(ax, "TTFT", [("a", "a", plots.CensoredSample(values, 0))])
        assert ax.get_xscale() == scale
        plt.close(fig)


def test_slo_values_are_vertical_lines_inside_the_axis(ax):
    sample = plots.CensoredSample([10.0, 20.0, 30.0], 0)
    plots.draw_latency_cdf(ax, "TTFT", [("a", "a", sample)], slos=[500.0])
    slo = [line for line in ax.get_lines() if line.get_label() == "TTFT SLO 500 ms"]
    assert len(slo) == 1 and list(slo[0].get_xdata()) == [500.0, 500.0]
    assert ax.get_xlim()[1] >= 500.0  # an SLO beyond every latency is still on the plot


def test_timelines_mark_oom_and_preemption_events_on_the_run_line(ax):
    events = [EventRow("oom", 0.12, ["r1"]), EventRow("preemption", 0.31, ["r2"]), EventRow("preemption", 0.4, ["r3"]),
              EventRow("rejection", 0.2, ["r0"])]
    record = make_record("static", events=events)
    plots.draw_timeline(ax, [("static", record)], "kv_usage", scale=100.0)
    oom = [line for line in ax.get_lines() if line.get_marker() == "X" and len(line.get_xdata())]
    pre = [line for line in ax.get_lines() if line.get_marker() == "v" and len(line.get_xdata())]
    assert list(oom[0].get_xdata()) == [0.12] and list(pre[0].get_xdata()) == [0.31, 0.4]
    # on the line: the KV usage of the step running at that time (steps start every 0.05 s)
    step_at = {s.start_s: 100.0 * s.kv_usage for s in record.steps}
    assert oom[0].get_ydata()[0] == pytest.approx(step_at[0.1])
    assert to_hex(oom[0].get_color()) == KNOWN_COLORS["static"]
    assert {"OOM event", "preemption"} <= {line.get_label() for line in ax.get_lines()}


def test_goodput_panel_only_with_slos():
    for slo, has_goodput in ((None, False), (500.0, True)):
        fig, axes = plt.subplots(1, 3)
        record = make_record("static", requests=simple_requests(slo_ttft_ms=slo))
        plots.draw_throughput_bars(axes, [("static", record)])
        texts = [t.get_text() for t in axes[2].texts]
        assert ("no SLOs set:\nno goodput" in texts) != has_goodput
        assert len(axes[2].patches) == (1 if has_goodput else 0)  # the goodput bar
        plt.close(fig)


def test_titles_name_workload_rate_model_backend_and_simulated():
    measured = plots.figure_title(make_record("static", rate=8.0, workload_name="sharegpt", model="tiny"))
    assert measured.startswith("sharegpt · 4 requests @ 8 req/s · model tiny") and "measured wall clock" in measured
    sim = make_record("static", backend="sim", clock="virtual", gpu="a100-40gb", cost_model="uncalibrated")
    title = plots.figure_title(sim)
    assert title.startswith("SIMULATED · ") and "a100-40gb" in title


def test_versus_rate_draws_interval_bands_from_low_high_keys(ax):
    points = [{"scheduler": "bucket", "rate": r, "slo_attainment": m, "slo_attainment_low": lo,
               "slo_attainment_high": hi} for r, m, lo, hi in ((1.0, 0.9, 0.85, 0.95), (2.0, 0.7, 0.6, 0.8))]
    drawn = plots_sweep.draw_versus_rate(ax, points, "slo_attainment", plots_sweep.RateAxis([1.0, 2.0]))
    assert drawn[0].has_interval and len(ax.collections) == 1
    poly = ax.collections[0]
    ys = poly.get_paths()[0].vertices[:, 1]
    assert min(ys) == pytest.approx(0.6) and max(ys) == pytest.approx(0.95)
    assert to_hex(poly.get_facecolor()[0][:3]) == KNOWN_COLORS["bucket"]


def test_versus_rate_without_intervals_is_a_plain_line_of_the_mean(ax):
    points = [{"scheduler": "static", "rate": 1.0, "goodput": v} for v in (1.0, 3.0)]  # two repeats
    drawn = plots_sweep.draw_versus_rate(ax, points, "goodput", plots_sweep.RateAxis([1.0]))
    assert not drawn[0].has_interval and len(ax.collections) == 0 and drawn[0].mean == [2.0]


def test_latency_vs_load_and_pareto_files(tmp_path):
    points = [{"scheduler": s, "rate": r, "output_throughput": k * min(r, 8), "median_ttft_ms": 10 * min(r, 8) / k,
               "p99_ttft_ms": 30 * min(r, 8) / k, "median_e2el_ms": 100.0 * k, "p99_e2el_ms": 300.0 * k,
               "p99_ttft_ms_low": 25 * min(r, 8) / k, "p99_ttft_ms_high": 35 * min(r, 8) / k}
              for s, k in (("static", 1.0), ("bucket", 2.0)) for r in (1.0, 4.0, math.inf)]
    for png in (plots_sweep.latency_vs_load(points, tmp_path / "lat.png"),
                plots_sweep.pareto_view(points, tmp_path / "par.png")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_pareto_front_known_answer():
    pairs = [(100.0, 10.0), (50.0, 5.0), (80.0, 12.0), (200.0, 11.0), (50.0, 4.0), (300.0, 20.0)]
    assert plots_sweep.pareto_front(pairs) == [(50.0, 5.0), (80.0, 12.0), (300.0, 20.0)]


def test_series_averages_repeats_and_keeps_rates_sorted():
    points = [{"scheduler": "a", "rate": r, "m": v} for r, v in ((2.0, 4.0), (1.0, 1.0), (2.0, 6.0), (1.0, None))]
    (s,) = plots_sweep.series(points, "m")
    assert s.rates == [1.0, 2.0] and s.mean == [1.0, 5.0] and all(np.isnan(s.low))


def _tick_labels_overlap(fig, ax) -> bool:
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


@pytest.mark.parametrize("rates", [
    # a capacity search: a doubling phase, then bisection probes crowding near the capacity
    [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 12.0, 10.0, 11.0, 10.5, 10.75, 10.625, 10.6875, math.inf],
    [3.0, 3.5, 3.25, 3.375, 3.4375, 3.40625, 3.421875, 3.4140625, 4.0, 6.0, 5.0, 4.5],
])
def test_rate_axis_labels_are_short_and_do_not_run_together(rates):
    fig, ax = plt.subplots(figsize=(8, 4.6))  # versus_rate's size
    try:
        points = [{"scheduler": "bucket", "rate": r, "slo_attainment": 0.5} for r in rates]
        axis = plots_sweep.RateAxis(rates)
        plots_sweep.draw_versus_rate(ax, points, "slo_attainment", axis)
        axis.apply(ax, rates)
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert 2 <= len(labels) <= plots_sweep.MAX_TICKS and all(len(t) <= 5 for t in labels)
        assert labels[-1] == ("inf" if math.inf in rates else f"{max(rates):.3g}")
        assert not _tick_labels_overlap(fig, ax)
    finally:
        plt.close(fig)


def test_comparison_plot_titles_fit_inside_the_figure(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path, note="": figures.append(fig) or path)
    long_device = "Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz with a rather long marketing name"
    runs = [(f"{name} s{seed}", make_record(name, workload_name="sharegpt-vllm-with-a-long-spec-name",
                                            device_name=long_device, seed=seed, model="llama2-13b"))
            for name in ("static", "continuous", "uellm", "bucket") for seed in (0, 1)]
    plots.comparison_plots(runs, tmp_path)
    assert len(figures) == 4
    try:
        for fig in figures:
            fig.canvas.draw()
            inside = fig.bbox
            titles = [fig._suptitle] + [ax.title for ax in fig.axes]
            for title in (t for t in titles if t is not None and t.get_text()):
                box = title.get_window_extent()
                assert box.x0 >= inside.x0 - 1 and box.x1 <= inside.x1 + 1, title.get_text()
            assert long_device in fig._suptitle.get_text().replace("\n", " ")  # wrapped, not cut
    finally:
        for fig in figures:
            plt.close(fig)


def test_long_cdfs_and_timelines_are_thinned_keeping_ends_and_peaks():
    xs, ys = np.arange(10_000, dtype=float), np.linspace(0.0, 0.9, 10_000)
    tx, ty = plots.thin_cdf(xs, ys)
    assert len(tx) <= plots.CDF_POINTS and (tx[0], tx[-1], ty[-1]) == (0.0, 9999.0, 0.9)
    assert np.all(np.diff(tx) > 0)
    values = np.zeros(10_000)
    values[5_003] = 7.0  # one step with a full cache among idle ones
    tx, ty = plots.thin_timeline(xs, values)
    assert len(tx) <= plots.TIMELINE_POINTS and tx[0] == 0.0 and ty.max() == 7.0
    short = (np.arange(5.0), np.arange(5.0))
    assert plots.thin_timeline(*short)[0] is short[0] and plots.thin_cdf(*short)[0] is short[0]


def test_versus_rate_crosses_out_overloaded_probes(tmp_path, monkeypatch):
    """Issue 33: a capacity probe whose queue grew without bound is marked on the probe plot, at its point."""
    figures = []
    monkeypatch.setattr(plots_sweep, "save", lambda fig, path, note="": figures.append(fig) or path)
    points = [{"scheduler": "static", "rate": r, "slo_attainment": a, "overloaded": o}
              for r, a, o in ((1.0, 1.0, False), (2.0, 0.9, True), (4.0, 0.2, True))]
    plots_sweep.versus_rate(points, "slo_attainment", "SLO attainment", tmp_path / "p.png", target=0.8)
    (ax,) = figures[0].axes
    marks = [c for c in ax.collections if c.get_label().startswith("overloaded")]
    assert len(marks) == 1 and sorted(marks[0].get_offsets()[:, 1].tolist()) == [0.2, 0.9]
    points = [dict(p, overloaded=False) for p in points]
    plots_sweep.versus_rate(points, "slo_attainment", "SLO attainment", tmp_path / "q.png")
    assert not [c for c in figures[1].axes[0].collections if c.get_label().startswith("overloaded")]
