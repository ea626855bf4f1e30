"""Measured improvement factors of claims, from the records of paired runs and from capacity searches."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bsbench.experiments.capacity_repeats import CapacityOverRepeats, capacity_ratio
from bsbench.experiments.reproduce.verdict import Measured, inverted
from bsbench.metrics import direction
from bsbench.report.cell_stats import ratio_interval, ratio_over_seeds
from bsbench.units import format_rate

if TYPE_CHECKING:
    from bsbench.record import RunRecord


def seeds_text(count: int) -> str:
    return f"{count} seed{'s' if count != 1 else ''}"


def factor_from_runs(ours: Sequence[RunRecord], baseline: Sequence[RunRecord], metric: str, where: str
                     ) -> Measured:
    """ours / baseline of `metric` (baseline / ours when lower is better), paired by seed: the t-interval of the
    per-seed ratios with K >= 2 seeds (it sees run-to-run noise), a paired bootstrap over requests with one
    (cell_stats.ratio_over_seeds, ratio_interval)."""
    ratio = ratio_over_seeds(ours, baseline, metric) if len(ours) >= 2 else ratio_interval(ours, baseline, metric)
    if ratio is None:
        return Measured(None, source=where, missing=f"no paired figure of {metric}")
    if direction(metric) < 0:
        ratio = inverted(ratio)
    return Measured(ratio.point, ratio, f"{where}, {seeds_text(len(ours))}")


def rate_factor(cells: dict[tuple[str, float], list[RunRecord]], ours: str, baseline: str, metric: str,
                rate: float) -> Measured:
    """The factor at the claim's own `rate` (the one that decides the verdict); the source names the rate."""
    if (ours, rate) not in cells or (baseline, rate) not in cells:
        return Measured(None, missing=f"no runs of both {ours} and {baseline} at {format_rate(rate)} req/s")
    runs, refs = cells[(ours, rate)], cells[(baseline, rate)]
    measured = factor_from_runs(runs, refs, metric, f"the claim's rate {format_rate(rate)} req/s")
    overloaded = [r.config.scheduler for r in (runs[0], refs[0]) if r.summary.get("overloaded")]
    if overloaded and measured.point is not None:
        measured.source += f" ({', '.join(overloaded)} overloaded there: throughput is its service rate)"
    return measured


def best_rate_factor(cells: dict[tuple[str, float], list[RunRecord]], ours: str, baseline: str, metric: str
                     ) -> Measured:
    """'Up to' claims: the factor at the rate where it is highest (its interval at that rate); the source says
    which rate of how many."""
    rates = sorted({rate for name, rate in cells if name == ours and (baseline, rate) in cells})
    found = [factor_from_runs(cells[(ours, r)], cells[(baseline, r)], metric, f"rate {format_rate(r)} req/s")
             for r in rates]
    found = [m for m in found if m.point is not None]
    if not found:
        return Measured(None, missing=f"no rate where both {ours} and {baseline} ran")
    best = max(found, key=lambda m: m.point or 0.0)
    best.source = f"best of {len(rates)} rates, for information only: {best.source}"
    return best


def capacity_factor(ours: CapacityOverRepeats, baseline: CapacityOverRepeats, where: str) -> Measured:
    """Capacity of ours / of baseline, paired by seed (capacity_repeats.capacity_ratio); not comparable when a
    search did not bracket its capacity (the SLO is too loose or too tight for it)."""
    for res in (ours, baseline):
        if not res.found:
            return Measured(None, source=where, missing=f"{res.scheduler}: {res.problem()}")
    _, interval = capacity_ratio(ours, baseline)
    if interval is not None:  # a t-interval of ratios knows no bounds; a ratio of capacities is >= 0
        interval = dataclasses.replace(interval, low=max(interval.low, 0.0))
    rates = [r for r in ours.rates if r is not None]
    refs = [r for r in baseline.rates if r is not None]
    point = interval.point if interval is not None else rates[0] / refs[0]
    return Measured(point, interval, f"{where}, {seeds_text(len(rates))}")
