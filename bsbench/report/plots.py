"""PNG plots of one group of comparable run records (matplotlib, Agg backend: no display needed).

- Latency CDFs (TTFT, TPOT, E2E) over ALL submitted requests: failed and
  rejected requests are censored (their latency is +inf), so a run's CDF tops
  out at its completed share, and a marker past the axis end counts them. A log
  x axis when the spread is wide; SLO values as vertical lines.
- Throughput bars (and goodput, only when some request carries an SLO).
- KV usage and batch size over time, with OOM and preemption events marked;
  not drawn when no run has step rows (a vLLM result has none).

Every figure is headlined with the workload, rate, model and backend
(`figure_title`), "SIMULATED" first when a cost model produced the times. Each
scheduler has its one colour (bsbench.report.style). The figures are drawn
from a group's plot data (bsbench.report.plot_data), read from the records
once; `render_group` needs nothing else, so it runs in worker processes too
(bsbench.report.plot_pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
from bsbench.report.plot_data import (
    CDF_POINTS,
    LATENCY_PANELS,
    TIMELINE_POINTS,
    CensoredSample,
    GroupPlot,
    RunPlot,
    Runs,
    figure_title,
    group_plot,
    latency_sample,
    thin_timeline,
)

__all__ = ["CensoredSample", "figure_title", "latency_sample", "thin_timeline", "censored_cdf", "thin_cdf",
           "wide_spread", "CDF_POINTS", "TIMELINE_POINTS", "draw_latency_cdf", "draw_throughput_bars",
           "draw_timeline", "render_group", "comparison_plots", "PLOT_NAMES"]

WIDE_SPREAD = 20.0  # p99 / p1 above this: the latency axis is logarithmic


def _headline(fig: Any, group: GroupPlot) -> None:
    if group.title:
        headline(fig, group.title, color=SIMULATED_COLOR if group.simulated else "black")


# ----------------------------------------------------------------------------- latency CDFs


def censored_cdf(sample: CensoredSample) -> tuple[np.ndarray, np.ndarray]:
    """Step points (x, y) of the CDF over all submitted requests: y ends at completed / submitted, not 1."""
    if not len(sample.finite):
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


def wide_spread(values: Sequence[float] | np.ndarray, ratio: float = WIDE_SPREAD) -> bool:
    """True when p99 / p1 of the positive values exceeds `ratio` (then a log axis reads better)."""
    array = np.asarray(values, dtype=float)
    positive = array[(array > 0) & (array < np.inf)]
    if len(positive) < 2:
        return False
    low, high = np.percentile(positive, [1, 99])
    return bool(high / low > ratio)


def draw_latency_cdf(ax: Any, name: str, samples: Sequence[tuple[str, str, CensoredSample]],
                     slos: Sequence[float] = ()) -> None:
    """One panel: a CDF per (label, scheduler, sample), SLO lines, censored requests past the axis end."""
    pooled = np.concatenate([np.asarray(s.finite, dtype=float) for _, _, s in samples] or [np.zeros(0)])
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
    if len(pooled) or slos:
        top = max([float(pooled.max(initial=0.0)), *slos])
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


def latency_cdfs(group: GroupPlot, path: Path) -> Path:
    """Three panels (TTFT, TPOT, E2E latency) with one censored CDF per run, milliseconds on the x axis."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for i, (ax, (name, _, _)) in enumerate(zip(axes, LATENCY_PANELS)):
        draw_latency_cdf(ax, name, [(run.label, run.scheduler, run.latency[i]) for run in group.runs], group.slos[i])
    _headline(fig, group)
    return save(fig, path)


# ----------------------------------------------------------------------------- throughput


def _draw_bars(axes: Sequence[Any], runs: Sequence[RunPlot]) -> None:
    panels = (("request_throughput", "requests/s"), ("output_throughput", "output tokens/s"),
              ("goodput", "goodput (req/s meeting SLOs)"))
    labels = [run.label for run in runs]
    colors = [color for color, _ in run_styles([run.scheduler for run in runs])]
    with_slos = any(run.has_slos for run in runs)
    for ax, (key, title) in zip(axes, panels):
        if key == "goodput" and not with_slos:
            ax.axis("off")
            ax.text(0.5, 0.5, "no SLOs set:\nno goodput", ha="center", va="center", fontsize=11, color="#555")
            continue
        bars = ax.bar(range(len(labels)), [run.throughput[key] for run in runs], color=colors)
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)


def draw_throughput_bars(axes: Sequence[Any], runs: Runs) -> None:
    """Three panels: request throughput, output tokens/s, and goodput only when some request has an SLO
    (otherwise the third panel says 'no SLOs set')."""
    _draw_bars(axes, group_plot(runs).runs)


def throughput_bars(group: GroupPlot, path: Path) -> Path:
    """Bars of request throughput, output tokens/s and (with SLOs) goodput per run."""
    fig, axes = plt.subplots(1, 3, figsize=(max(12, 1.6 * len(group.runs) * 3), 4.4))
    _draw_bars(axes, group.runs)
    _headline(fig, group)
    return save(fig, path)


# ----------------------------------------------------------------------------- timelines with events

EVENT_MARKERS = {"oom": ("X", 10, "OOM event"), "preemption": ("v", 7, "preemption")}


def _draw_timelines(ax: Any, runs: Sequence[RunPlot], key: str, scale: float) -> None:
    drawn: set[str] = set()
    for run, (color, dash) in zip(runs, run_styles([run.scheduler for run in runs])):
        for line in run.timelines:
            if len(line.xs):
                name = run.label if line.instance is None else f"{run.label} {line.instance}"
                ax.step(line.xs, scale * line.values[key], where="post", label=name, linewidth=1, color=color,
                        linestyle=dash)
            for kind, (times, heights) in line.events.items():
                marker, size, _ = EVENT_MARKERS[kind]
                ax.plot(times, scale * heights[key], linestyle="none", marker=marker, markersize=size, color=color,
                        markeredgecolor="black", markeredgewidth=0.6, zorder=4)
                drawn.add(kind)
    for kind in sorted(drawn):  # legend entries for the event markers, in black
        marker, size, name = EVENT_MARKERS[kind]
        ax.plot([], [], linestyle="none", marker=marker, markersize=size, color="white", markeredgecolor="black",
                label=name)


def draw_timeline(ax: Any, runs: Runs, key: str, scale: float = 1.0) -> None:
    """StepRow.<key> (kv_usage or num_seqs) over time per run (per instance of a disaggregated run, labelled
    with the instance), with its OOM and preemption events marked on its line."""
    _draw_timelines(ax, group_plot(runs).runs, key, scale)


def _timeline(group: GroupPlot, path: Path, key: str, ylabel: str, scale: float = 1.0) -> Path:
    fig, ax = plt.subplots(figsize=(11, 4.4))
    _draw_timelines(ax, group.runs, key, scale)
    counts = [f"{run.label}: OOM events {run.event_counts['oom']}, preemptions {run.event_counts['preemption']}"
              for run in group.runs]
    ax.set_title(fit_width("; ".join(counts), ax.get_position().width * fig.get_figwidth(), 8), fontsize=8)
    label_axes(ax, "time since run start (s)", ylabel)
    _headline(fig, group)
    return save(fig, path)


# ----------------------------------------------------------------------------- one group's figures

PLOT_NAMES = ("latency_cdf", "throughput", "kv_usage", "batch_size")  # file stems, in the page's order
_DRAW = {
    "latency_cdf": latency_cdfs,
    "throughput": throughput_bars,
    "kv_usage": lambda group, path: _timeline(group, path, "kv_usage", "KV cache usage (%)", scale=100.0),
    "batch_size": lambda group, path: _timeline(group, path, "num_seqs", "requests in the step (batch size)"),
}


def figure_names(group: GroupPlot) -> list[str]:
    """The figures a group gets, of PLOT_NAMES: the two timelines only when some run has step rows."""
    return [name for name in PLOT_NAMES if group.has_steps or name not in ("kv_usage", "batch_size")]


def figure_path(out_dir: str | Path, prefix: str, name: str) -> Path:
    return Path(out_dir) / f"{prefix}{name}.png"


def draw_figure(group: GroupPlot, name: str, path: Path) -> Path:
    """Draw one of a group's figures (a PLOT_NAMES entry) into `path`; returns it."""
    return _DRAW[name](group, path)


def render_group(group: GroupPlot, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """A group's figures (figure_names) as PNG files `<prefix><name>.png` in `out_dir`; returns their paths."""
    return [draw_figure(group, name, figure_path(out_dir, prefix, name)) for name in figure_names(group)]


def comparison_plots(runs: Runs, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """All comparison plots of one group into `out_dir` (render_group of its plot data); returns the PNG
    paths."""
    return render_group(group_plot(runs), out_dir, prefix)
