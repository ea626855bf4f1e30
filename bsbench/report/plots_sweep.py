"""PNG plots of a sweep or a capacity search: metrics against the request rate, one line per scheduler.

Input is a list of point dicts: `scheduler`, `rate` and metric keys (the
headline keys of sweep_summary.json). Several points of one (scheduler,
rate), repeats, are averaged. When a point carries `<key>_low` and
`<key>_high` (a 95% interval across repeats) the line gets a band (or error
bars in the Pareto view); without them the line is plain. An infinite rate is
drawn at twice the largest finite rate and labelled 'inf'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bsbench.report.plot_base import label_axes, log_scale, plt, save
from bsbench.report.plots import wide_spread
from bsbench.report.style import scheduler_color
from bsbench.units import format_rate

Point = dict[str, Any]
BAND_ALPHA = 0.2


@dataclass(slots=True)
class Series:
    """One scheduler's metric against the rate: the mean over repeats, and the interval where given."""

    scheduler: str
    rates: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)   # NaN where the points carry no interval
    high: list[float] = field(default_factory=list)

    @property
    def has_interval(self) -> bool:
        return any(not math.isnan(v) for v in self.low + self.high)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def series(points: Sequence[Point], key: str) -> list[Series]:
    """Per scheduler (first-seen order), the points that have `key`, averaged per rate, rates ascending."""
    grouped: dict[str, dict[float, list[Point]]] = {}
    for p in points:
        if _number(p.get(key)) is not None:
            grouped.setdefault(str(p["scheduler"]), {}).setdefault(float(p["rate"]), []).append(p)
    out = []
    for scheduler, by_rate in grouped.items():
        s = Series(scheduler)
        for rate in sorted(by_rate):
            group = by_rate[rate]
            s.rates.append(rate)
            s.mean.append(float(np.mean([float(p[key]) for p in group])))  # every point here has a number
            for side, values in (("low", s.low), ("high", s.high)):
                bounds = [b for p in group if (b := _number(p.get(f"{key}_{side}"))) is not None]
                values.append(float(np.mean(bounds)) if len(bounds) == len(group) else math.nan)
        out.append(s)
    return out


class RateAxis:
    """Maps rates to x positions (inf -> twice the largest finite rate) and labels the ticks."""

    def __init__(self, rates: Sequence[float]) -> None:
        self.finite = sorted({r for r in rates if math.isfinite(r)})
        self.max_finite = self.finite[-1] if self.finite else 1.0

    def x(self, rate: float) -> float:
        return rate if math.isfinite(rate) else self.max_finite * 2

    def xs(self, rates: Sequence[float]) -> list[float]:
        return [self.x(r) for r in rates]

    def apply(self, ax: Any, rates: Sequence[float]) -> None:
        """Log scale over a wide range; a labelled tick per rate, thinned so that no two labels touch (a
        capacity search probes rates close together), short labels, slanted when there are many."""
        log = len(self.finite) > 1 and self.finite[0] > 0 and self.max_finite / self.finite[0] >= 8
        if log:
            ax.set_xscale("log", base=2)
        ticks = thin_ticks(sorted({self.x(r) for r in rates}), log)
        ax.set_xticks(ticks, [self.label(t) for t in ticks])
        if len(ticks) > MAX_LEVEL_TICKS:
            ax.tick_params(axis="x", labelrotation=45)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
        ax.minorticks_off()

    def label(self, x: float) -> str:
        """'inf' for the infinite rate's place, else the rate in at most 3 significant digits."""
        return "inf" if x > self.max_finite else f"{x:.3g}"


MAX_TICKS = 12  # labelled rates on one axis at most
MAX_LEVEL_TICKS = 8  # more than this are slanted
MIN_TICK_GAP = 1 / 16  # of the axis span: rates closer than this to the last kept tick go unlabelled


def thin_ticks(ticks: Sequence[float], log: bool) -> list[float]:
    """Of sorted tick positions, those at least MIN_TICK_GAP of the span apart (the first and last always kept)
    and at most MAX_TICKS of them: a capacity search's probes crowd near the capacity."""
    if len(ticks) <= 2:
        return list(ticks)
    place = [math.log2(t) if log else t for t in ticks]
    span = place[-1] - place[0] or 1.0
    gap = max(MIN_TICK_GAP, 1 / (MAX_TICKS - 1)) * span if len(ticks) > MAX_TICKS else MIN_TICK_GAP * span
    kept = [0]
    for i in range(1, len(ticks) - 1):
        if place[i] - place[kept[-1]] >= gap and place[-1] - place[i] >= gap:
            kept.append(i)
    kept.append(len(ticks) - 1)
    return [ticks[i] for i in kept]


OVERLOADED_COLOR = "#c0392b"


def _rates(points: Sequence[Point]) -> list[float]:
    return [float(p["rate"]) for p in points]


def draw_versus_rate(ax: Any, points: Sequence[Point], key: str, axis: RateAxis, linestyle: str = "-",
                     marker: str = "o", suffix: str = "") -> list[Series]:
    """One line per scheduler in its colour, a band where the points carry `<key>_low/_high`."""
    drawn = series(points, key)
    for s in drawn:
        xs, color = axis.xs(s.rates), scheduler_color(s.scheduler)
        ax.plot(xs, s.mean, marker=marker, linestyle=linestyle, color=color, label=f"{s.scheduler}{suffix}")
        if s.has_interval:
            ax.fill_between(xs, s.low, s.high, color=color, alpha=BAND_ALPHA, linewidth=0)
    return drawn


def _interval_note(drawn: Sequence[Series]) -> str:
    return "bands: 95% interval across repeats" if any(s.has_interval for s in drawn) else ""


def versus_rate(points: Sequence[Point], key: str, ylabel: str, path: Path, target: float | None = None,
                note: str = "") -> Path:
    """`key` against the rate, one line per scheduler (mean over repeats, band = interval when given); points
    carrying `overloaded: True` are crossed out in red."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    axis = RateAxis(_rates(points))
    drawn = draw_versus_rate(ax, points, key, axis)
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g}")
    overloaded = [p for p in points if p.get("overloaded") and _number(p.get(key)) is not None]
    if overloaded:  # a run whose queue grew without bound: its figure describes a draining queue
        ax.scatter(axis.xs(_rates(overloaded)), [float(p[key]) for p in overloaded], marker="x", s=60,
                   color=OVERLOADED_COLOR, zorder=5, label="overloaded (queue grew without bound)")
    axis.apply(ax, _rates(points))
    if key.startswith("slo_attainment"):
        ax.set_ylim(-0.02, 1.05)  # a share: the whole 0..1 range, so a dip reads at its true size
    ax.set_title(_interval_note(drawn), fontsize=8)
    label_axes(ax, "request rate (req/s)", ylabel)
    return save(fig, path, note)


LATENCY_PANELS = (("TTFT", "median_ttft_ms", "p99_ttft_ms"), ("E2E latency", "median_e2el_ms", "p99_e2el_ms"))


def latency_vs_load(points: Sequence[Point], path: Path, note: str = "") -> Path:
    """Two panels (TTFT, E2E): p50 (solid) and p99 (dashed) against the rate, one colour per scheduler."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    axis = RateAxis(_rates(points))
    for ax, (name, p50, p99) in zip(axes, LATENCY_PANELS):
        drawn = draw_versus_rate(ax, points, p50, axis, "-", "o", " p50")
        drawn += draw_versus_rate(ax, points, p99, axis, "--", "s", " p99")
        values = [v for s in drawn for v in s.mean]
        if wide_spread(values):
            log_scale(ax, "y")
        axis.apply(ax, _rates(points))
        ax.set_title(" · ".join(t for t in (f"{name}: p50 solid, p99 dashed", _interval_note(drawn)) if t),
                     fontsize=9)
        label_axes(ax, "request rate (req/s)", f"{name} (ms{', log scale' if ax.get_yscale() == 'log' else ''})")
    return save(fig, path, note)


def pareto_front(pairs: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, throughput) pairs no other pair beats on both (lower latency and higher throughput),
    by latency ascending."""
    front: list[tuple[float, float]] = []
    for latency, throughput in sorted(pairs, key=lambda p: (p[0], -p[1])):
        if not front or throughput > front[-1][1]:
            front.append((latency, throughput))
    return front


PARETO_PANELS = (("p99_ttft_ms", "TTFT p99 (ms)"), ("p99_e2el_ms", "E2E p99 (ms)"))
THROUGHPUT_KEY = "output_throughput"


def _joined(points: Sequence[Point], x_key: str) -> list[tuple[Series, Series]]:
    """(latency series, throughput series) per scheduler over the points having both keys: same rates."""
    both = [p for p in points if _number(p.get(x_key)) is not None and _number(p.get(THROUGHPUT_KEY)) is not None]
    return list(zip(series(both, x_key), series(both, THROUGHPUT_KEY)))


def _error_bars(s: Series) -> np.ndarray:
    """matplotlib's 2xN (below, above) error sizes; 0 where a point has no interval."""
    return np.nan_to_num(np.abs(np.array([s.low, s.high]) - np.array(s.mean)), nan=0.0)


def draw_pareto(ax: Any, points: Sequence[Point], x_key: str) -> list[tuple[float, float]]:
    """Throughput against a latency, a line per scheduler through its rates (each point labelled with its
    rate), error bars where intervals are given, the Pareto front in grey. Returns the front."""
    pairs: list[tuple[float, float]] = []
    for xs, ys in _joined(points, x_key):
        color = scheduler_color(xs.scheduler)
        ax.plot(xs.mean, ys.mean, marker="o", color=color, label=xs.scheduler)
        if xs.has_interval or ys.has_interval:
            xerr = _error_bars(xs) if xs.has_interval else None
            yerr = _error_bars(ys) if ys.has_interval else None
            ax.errorbar(xs.mean, ys.mean, xerr=xerr, yerr=yerr, linestyle="none", color=color, alpha=0.6,
                        capsize=2)
        for rate, x, y in zip(xs.rates, xs.mean, ys.mean):
            ax.annotate(format_rate(rate), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7,
                        color=color)
        pairs += list(zip(xs.mean, ys.mean))
    front = pareto_front(pairs)
    if front:
        ax.plot([x for x, _ in front], [y for _, y in front], color="grey", linewidth=6, alpha=0.25,
                solid_capstyle="round", label="Pareto front", zorder=0)
    if wide_spread([x for x, _ in pairs]):
        log_scale(ax, "x")
    return front


def pareto_view(points: Sequence[Point], path: Path, note: str = "") -> Path:
    """Two panels: output tokens/s against p99 TTFT and against p99 E2E; up and left is better."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, (key, xlabel) in zip(axes, PARETO_PANELS):
        draw_pareto(ax, points, key)
        ax.set_title("better: up and to the left; labels: request rate (req/s)", fontsize=9)
        label_axes(ax, xlabel + (" (log scale)" if ax.get_xscale() == "log" else ""), "output tokens/s")
    return save(fig, path, note)
