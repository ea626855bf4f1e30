"""PNG plots of run records (matplotlib, Agg backend: no display needed).

Comparison plots (one group of comparable runs): latency CDFs per scheduler
(TTFT, TPOT, E2E), throughput bars, KV usage over time, batch size over time.
Sweep plots: SLO attainment vs rate and throughput vs rate, one line per
scheduler with the spread over repeats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
# Labels are scheduler names from records: '$' must be a dollar sign, not mathtext that fails to parse.
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bsbench import metrics  # noqa: E402
from bsbench.record import Outcome, RequestRow, RunRecord  # noqa: E402


def _save(fig: Any, path: Path, note: str = "") -> Path:
    """Write the figure; `note` (e.g. 'simulated (sim, a100-40gb, ...)') becomes its headline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if note:
        fig.suptitle(note, color="darkmagenta", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label_axes(ax: Any, xlabel: str, ylabel: str) -> None:
    """Axis labels, a light grid, and a legend when something was drawn."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.has_data():
        ax.legend(fontsize=8)


def _completed(record: RunRecord) -> list[RequestRow]:
    return [r for r in record.requests if r.status is Outcome.COMPLETED]


def _cdf(ax: Any, values: Sequence[float], label: str) -> None:
    if not values:
        return
    xs = np.sort(np.asarray(values, dtype=float))
    ys = np.arange(1, len(xs) + 1) / len(xs)
    xs, ys = np.concatenate([[xs[0]], xs]), np.concatenate([[0.0], ys])
    ax.step(xs, ys, where="post", label=label)


def latency_cdfs(runs: Sequence[tuple[str, RunRecord]], path: Path, note: str = "") -> Path:
    """Three panels (TTFT, TPOT, E2E latency) with one CDF line per run, milliseconds on the x axis."""
    panels = (("TTFT", metrics.ttft_s), ("TPOT", metrics.tpot_s), ("E2E latency", metrics.e2el_s))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (name, fn) in zip(axes, panels):
        for label, record in runs:
            values = [1000 * v for v in map(fn, _completed(record)) if v is not None]
            _cdf(ax, values, label)
        ax.set_title(f"{name} CDF (completed requests)")
        ax.set_ylim(0, 1.02)
        _label_axes(ax, f"{name} (ms)", "fraction of requests")
    return _save(fig, path, note)


def throughput_bars(runs: Sequence[tuple[str, RunRecord]], path: Path, note: str = "") -> Path:
    """Bars of request throughput, output tokens/s and goodput per run; no goodput panel when the runs have no
    SLOs (runs of one group replay one request list, so they all have SLOs or none)."""
    panels = [("request_throughput", "requests/s"), ("output_throughput", "output tokens/s")]
    if any(metrics.has_slos(rec.summary) for _, rec in runs):
        panels.append(("goodput", "goodput (req/s meeting SLOs)"))
    labels = [label for label, _ in runs]
    fig, axes = plt.subplots(1, len(panels), figsize=(max(10, 1.6 * len(labels) * len(panels)), 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, title) in zip(axes, panels):
        values = [rec.summary.get(key) or 0.0 for _, rec in runs]
        bars = ax.bar(range(len(labels)), values, color=[colors[i % len(colors)] for i in range(len(labels))])
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path, note)


def _timeline(runs: Sequence[tuple[str, RunRecord]], path: Path, key: str, ylabel: str,
              scale: float = 1.0, note: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(10, 4))
    for label, record in runs:
        xs = [s.start_s for s in record.steps]
        ys = [scale * getattr(s, key) for s in record.steps]
        if xs:
            ax.step(xs, ys, where="post", label=label, linewidth=1)
    _label_axes(ax, "time since run start (s)", ylabel)
    return _save(fig, path, note)


def kv_usage_timeline(runs: Sequence[tuple[str, RunRecord]], path: Path, note: str = "") -> Path:
    return _timeline(runs, path, "kv_usage", "KV cache usage (%)", scale=100.0, note=note)


def batch_size_timeline(runs: Sequence[tuple[str, RunRecord]], path: Path, note: str = "") -> Path:
    return _timeline(runs, path, "num_seqs", "requests in the step (batch size)", note=note)


def comparison_plots(runs: Sequence[tuple[str, RunRecord]], out_dir: str | Path, prefix: str = "") -> list[Path]:
    """All comparison plots of one group into `out_dir`; returns the PNG paths. Simulated runs are headlined
    as such (a group never mixes simulated and measured runs: report.comparability_key)."""
    out = Path(out_dir)
    note = next((r.config.timing_label() for _, r in runs if r.config.simulated), "")
    return [
        latency_cdfs(runs, out / f"{prefix}latency_cdf.png", note),
        throughput_bars(runs, out / f"{prefix}throughput.png", note),
        kv_usage_timeline(runs, out / f"{prefix}kv_usage.png", note),
        batch_size_timeline(runs, out / f"{prefix}batch_size.png", note),
    ]


def _finite_rate(rate: float, max_finite: float) -> float:
    return rate if math.isfinite(rate) else max_finite * 2


def versus_rate(points: Sequence[dict[str, Any]], key: str, ylabel: str, path: Path,
                target: float | None = None, note: str = "") -> Path:
    """One line per scheduler: mean of `key` over repeats at each rate, with min-max band.

    `points`: dicts with scheduler, rate, and the summary key. An infinite rate
    is drawn at twice the largest finite rate and labelled 'inf'.
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    finite = [p["rate"] for p in points if math.isfinite(p["rate"])]
    max_finite = max(finite) if finite else 1.0
    for scheduler in sorted({p["scheduler"] for p in points}):
        by_rate: dict[float, list[float]] = {}
        for p in points:
            if p["scheduler"] == scheduler and p.get(key) is not None:
                by_rate.setdefault(p["rate"], []).append(float(p[key]))
        if not by_rate:
            continue
        rates = sorted(by_rate)
        xs = [_finite_rate(r, max_finite) for r in rates]
        mean = [float(np.mean(by_rate[r])) for r in rates]
        ax.plot(xs, mean, marker="o", label=scheduler)
        if any(len(v) > 1 for v in by_rate.values()):
            ax.fill_between(xs, [min(by_rate[r]) for r in rates], [max(by_rate[r]) for r in rates], alpha=0.2)
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g}")
    if finite and len(set(finite)) > 1 and min(finite) > 0 and max_finite / min(finite) >= 8:
        ax.set_xscale("log", base=2)
    ticks = sorted({_finite_rate(p["rate"], max_finite) for p in points})
    ax.set_xticks(ticks, [("inf" if t > max_finite else f"{t:g}") for t in ticks])
    _label_axes(ax, "request rate (req/s)", ylabel)
    return _save(fig, path, note)
