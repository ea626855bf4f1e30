"""PNG plots of one group of comparable run records (matplotlib, Agg backend: no display needed).

- Latency CDFs (TTFT, TPOT, E2E) over ALL submitted requests: failed and
  rejected requests are censored (their latency is +inf), so a run's CDF tops
  out at its completed share, and a marker past the axis end counts them. A log
  x axis when the spread is wide; SLO values as vertical lines.
- Throughput bars (and goodput, only when some request carries an SLO).
- KV usage and batch size over time, with OOM and preemption events marked.

Every figure is headlined with the workload, rate, model and backend
(`figure_title`), "SIMULATED" first when a cost model produced the times. Each
scheduler has its one colour (bsbench.report.style).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bsbench import metrics
from bsbench.record import EventKind, Outcome, RunRecord
from bsbench.report.plot_base import (
    SIMULATED_COLOR,
    fit_width,
    headline,
    label_axes,
    log_scale,
    plt,
    run_styles,
    save,
)
from bsbench.units import format_rate

WIDE_SPREAD = 20.0  # p99 / p1 above this: the latency axis is logarithmic
# A line never needs more points than a 1,650-pixel-wide PNG has columns: CDFs and timelines are thinned to these
# (drawing 10,000-request runs point by point made a sweep's report take as long as its runs).
CDF_POINTS = 400
TIMELINE_POINTS = 1200
Runs = Sequence[tuple[str, RunRecord]]


def figure_title(record: RunRecord) -> str:
    """'<workload> · N requests @ R req/s · model M · device D · backend B', 'SIMULATED · ' first for sim runs."""
    config = record.config
    model = " ".join(str(p) for p in (config.model, config.backend.model_weights(), config.dtype) if p)
    device = record.environment.get("device_name") or config.device
    backend = config.timing_label() or "real runner, measured wall clock"
    title = (f"{record.workload.name} · {record.workload.num_requests} requests @ {format_rate(config.rate)} req/s"
             f" · model {model} · device {device} · backend {backend}")
    return f"SIMULATED · {title}" if config.simulated else title


def _headline(fig: Any, record: RunRecord) -> None:
    headline(fig, figure_title(record), color=SIMULATED_COLOR if record.config.simulated else "black")


# ----------------------------------------------------------------------------- latency CDFs


@dataclass(slots=True)
class CensoredSample:
    """The latencies (ms) of one run's completed requests, and how many submitted requests have none
    (failed or rejected: +inf, censored)."""

    finite: list[float]
    censored: int

    @property
    def submitted(self) -> int:
        return len(self.finite) + self.censored


def censored_cdf(sample: CensoredSample) -> tuple[np.ndarray, np.ndarray]:
    """Step points (x, y) of the CDF over all submitted requests: y ends at completed / submitted, not 1."""
    if not sample.finite:
        return np.array([]), np.array([])
    xs = np.sort(np.asarray(sample.finite, dtype=float))
    ys = np.arange(1, len(xs) + 1) / sample.submitted
    return np.concatenate([[xs[0]], xs]), np.concatenate([[0.0], ys])


def thin_cdf(xs: np.ndarray, ys: np.ndarray, limit: int = CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` (x, y) points of a step CDF, evenly spaced in y (every n-th point), first and last kept."""
    if len(xs) <= limit:
        return xs, ys
    keep = np.unique(np.linspace(0, len(xs) - 1, limit).round().astype(int))
    return xs[keep], ys[keep]


def thin_timeline(xs: np.ndarray, ys: np.ndarray, limit: int = TIMELINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points of a step line over time (xs sorted): the run is cut into `limit` equal spans and
    each span drawn as its largest value from its first step's start, so a peak (a full KV cache) stays visible."""
    if len(xs) <= limit:
        return xs, ys
    span = np.minimum(((xs - xs[0]) / max(float(xs[-1] - xs[0]), 1e-12) * limit).astype(int), limit - 1)
    starts = np.flatnonzero(np.r_[True, np.diff(span) != 0])
    return xs[starts], np.maximum.reduceat(ys, starts)


def wide_spread(values: Sequence[float], ratio: float = WIDE_SPREAD) -> bool:
    """True when p99 / p1 of the positive values exceeds `ratio` (then a log axis reads better)."""
    positive = [v for v in values if 0 < v < float("inf")]
    if len(positive) < 2:
        return False
    low, high = np.percentile(positive, [1, 99])
    return bool(high / low > ratio)


_PANELS = (("TTFT", metrics.ttft_s, "slo_ttft_ms"), ("TPOT", metrics.tpot_s, "slo_tpot_ms"),
           ("E2E latency", metrics.e2el_s, "slo_e2e_ms"))


def latency_sample(record: RunRecord, fn: Any) -> CensoredSample:
    """Completed requests' latencies by `fn` (ms; None values, e.g. TPOT of one token, left out) and the
    failed + rejected count."""
    finite = [1000 * v for r in record.requests if r.status is Outcome.COMPLETED and (v := fn(r)) is not None]
    return CensoredSample(finite, sum(1 for r in record.requests if r.status is not Outcome.COMPLETED))


def _slo_values(records: Sequence[RunRecord], field: str) -> list[float]:
    return sorted({v for rec in records for r in rec.requests if (v := getattr(r, field)) is not None})


def draw_latency_cdf(ax: Any, name: str, samples: Sequence[tuple[str, str, CensoredSample]],
                     slos: Sequence[float] = ()) -> None:
    """One panel: a CDF per (label, scheduler, sample), SLO lines, censored requests past the axis end."""
    pooled = [v for _, _, s in samples for v in s.finite]
    if wide_spread(pooled):
        log_scale(ax, "x")
    styles = run_styles([sched for _, sched, _ in samples])
    for (label, _, sample), (color, dash) in zip(samples, styles):
        xs, ys = thin_cdf(*censored_cdf(sample))
        if len(xs):
            ax.step(xs, ys, where="post", label=label, color=color, linestyle=dash)
    for value in slos[:4]:
        ax.axvline(value, color="black", linestyle="--", linewidth=1, alpha=0.7, label=f"{name} SLO {value:g} ms")
    if len(slos) > 4:
        ax.plot([], [], " ", label=f"(+{len(slos) - 4} more SLO values)")
    if pooled or slos:
        top = max([*pooled, *slos])
        ax.set_xlim(right=top * (1.3 if ax.get_xscale() == "log" else 1.05))
    ax.set_ylim(0, 1.02)
    edge = ax.get_xlim()[1]
    stacked = 0
    for (_, _, sample), (color, _) in zip(samples, styles):
        if not sample.censored:
            continue
        xs, ys = censored_cdf(sample)
        y_end = float(ys[-1]) if len(ys) else 0.0
        start = float(xs[-1]) if len(xs) else ax.get_xlim()[0]
        ax.plot([start, edge], [y_end, y_end], linestyle=":", color=color, linewidth=1)
        ax.plot([edge], [y_end], marker=">", markersize=9, color=color, clip_on=False, zorder=5)
        ax.annotate(f"{sample.censored} failed/rejected", xy=(edge, y_end), xytext=(-8, -11 - 10 * stacked),
                    textcoords="offset points", ha="right", va="top", fontsize=7, color=color)
        stacked += 1
    ax.set_title(f"{name} CDF (all submitted requests)", fontsize=10)
    label_axes(ax, f"{name} (ms{', log scale' if ax.get_xscale() == 'log' else ''})",
               "fraction of submitted requests")


def latency_cdfs(runs: Runs, path: Path) -> Path:
    """Three panels (TTFT, TPOT, E2E latency) with one censored CDF per run, milliseconds on the x axis."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    records = [record for _, record in runs]
    for ax, (name, fn, slo_field) in zip(axes, _PANELS):
        samples = [(label, record.config.scheduler, latency_sample(record, fn)) for label, record in runs]
        draw_latency_cdf(ax, name, samples, _slo_values(records, slo_field))
    if records:
        _headline(fig, records[0])
    return save(fig, path)


# ----------------------------------------------------------------------------- throughput


def draw_throughput_bars(axes: Sequence[Any], runs: Runs) -> None:
    """Three panels: request throughput, output tokens/s, and goodput only when some request has an SLO
    (otherwise the third panel says 'no SLOs set')."""
    panels = (("request_throughput", "requests/s"), ("output_throughput", "output tokens/s"),
              ("goodput", "goodput (req/s meeting SLOs)"))
    labels = [label for label, _ in runs]
    colors = [color for color, _ in run_styles([rec.config.scheduler for _, rec in runs])]
    with_slos = any(metrics.has_slos(rec.summary) for _, rec in runs)
    for ax, (key, title) in zip(axes, panels):
        if key == "goodput" and not with_slos:
            ax.axis("off")
            ax.text(0.5, 0.5, "no SLOs set:\nno goodput", ha="center", va="center", fontsize=11, color="#555")
            continue
        values = [rec.summary.get(key) or 0.0 for _, rec in runs]
        bars = ax.bar(range(len(labels)), values, color=colors)
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)


def throughput_bars(runs: Runs, path: Path) -> Path:
    """Bars of request throughput, output tokens/s and (with SLOs) goodput per run."""
    fig, axes = plt.subplots(1, 3, figsize=(max(12, 1.6 * len(runs) * 3), 4.4))
    draw_throughput_bars(axes, runs)
    if runs:
        _headline(fig, runs[0][1])
    return save(fig, path)


# ----------------------------------------------------------------------------- timelines with events

EVENT_MARKERS = {EventKind.OOM.value: ("X", 10, "OOM event"), EventKind.PREEMPTION.value: ("v", 7, "preemption")}


def event_times(record: RunRecord, kind: str) -> list[float]:
    """Times (s from run start) of the record's events of `kind` (EventKind value)."""
    return sorted(e.t_s for e in record.events if e.kind == kind)


def draw_timeline(ax: Any, runs: Runs, key: str, scale: float = 1.0) -> None:
    """StepRow.<key> over time per run (per instance of a disaggregated run, labelled with the instance), with its
    OOM and preemption events marked on its line."""
    drawn: set[str] = set()
    for (label, record), (color, dash) in zip(runs, run_styles([rec.config.scheduler for _, rec in runs])):
        instances: dict[str | None, list[Any]] = {}
        for step in record.steps:
            instances.setdefault(step.instance, []).append(step)
        for instance, steps in instances.items() or [(None, [])]:
            xs = np.array([s.start_s for s in steps], dtype=float)
            ys = np.array([scale * getattr(s, key) for s in steps], dtype=float)
            if len(xs):
                name = label if instance is None else f"{label} {instance}"
                ax.step(*thin_timeline(xs, ys), where="post", label=name, linewidth=1, color=color, linestyle=dash)
            for kind, (marker, size, _) in EVENT_MARKERS.items():
                times = sorted(e.t_s for e in record.events if e.kind == kind and e.detail.get("instance") == instance)
                if not times:
                    continue
                # each event sits on its run's line: the value of the step running at that time
                heights = ys[np.clip(np.searchsorted(xs, times, side="right") - 1, 0, None)] if len(xs) else \
                    np.zeros(len(times))
                ax.plot(times, heights, linestyle="none", marker=marker, markersize=size, color=color,
                        markeredgecolor="black", markeredgewidth=0.6, zorder=4)
                drawn.add(kind)
    for kind in sorted(drawn):  # legend entries for the event markers, in black
        marker, size, name = EVENT_MARKERS[kind]
        ax.plot([], [], linestyle="none", marker=marker, markersize=size, color="white", markeredgecolor="black",
                label=name)


def _timeline(runs: Runs, path: Path, key: str, ylabel: str, scale: float = 1.0) -> Path:
    fig, ax = plt.subplots(figsize=(11, 4.4))
    draw_timeline(ax, runs, key, scale)
    counts = [f"{label}: OOM events {len(event_times(rec, 'oom'))}, preemptions {len(event_times(rec, 'preemption'))}"
              for label, rec in runs]
    ax.set_title(fit_width("; ".join(counts), ax.get_position().width * fig.get_figwidth(), 8), fontsize=8)
    label_axes(ax, "time since run start (s)", ylabel)
    if runs:
        _headline(fig, runs[0][1])
    return save(fig, path)


def kv_usage_timeline(runs: Runs, path: Path) -> Path:
    return _timeline(runs, path, "kv_usage", "KV cache usage (%)", scale=100.0)


def batch_size_timeline(runs: Runs, path: Path) -> Path:
    return _timeline(runs, path, "num_seqs", "requests in the step (batch size)")


def comparison_plots(runs: Runs, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """All comparison plots of one group into `out_dir`; returns the PNG paths. A group never mixes simulated
    and measured runs (report.comparability_key), so the first run's title heads every plot."""
    out = Path(out_dir)
    return [
        latency_cdfs(runs, out / f"{prefix}latency_cdf.png"),
        throughput_bars(runs, out / f"{prefix}throughput.png"),
        kv_usage_timeline(runs, out / f"{prefix}kv_usage.png"),
        batch_size_timeline(runs, out / f"{prefix}batch_size.png"),
    ]
