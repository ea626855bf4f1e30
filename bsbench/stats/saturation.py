"""Did the system keep up with the offered load? A test on arrival and departure times (pure numpy).

The number of requests waiting to be scheduled, N(t) = arrivals by t - requests that left the queue by t (their
first scheduling; metrics.left_queue_s), is sampled on an even grid over the measurement window [start, end].
A stable queue (utilisation < 1) keeps N(t) around a mean; an overloaded one grows it at the rate lambda - mu,
the excess of arrivals over what the system serves. The queue, not the number in the system, is what is
tested: requests in service fill a system up to lambda x (time in service) at the start of a run, and with
long outputs that fill-up lasts longer than a short window; a queue does not fill up when the system keeps up.
The run is `overloaded` when both hold:

1. growth: the least-squares slope of N(t) over the window is at least GROWTH_LIMIT (2%) of the offered rate
   (arrivals in the window / its length). A queue at utilisation rho grows at lambda (1 - 1/rho), so 2% flags
   rho >= 1.02 and no load below it;
2. significance: the rise the slope predicts over the window is at least MIN_RISE requests, larger than
   SIGNIFICANCE (2) times the spread of N(t) around the fitted line (a batch policy's saw-tooth does not read
   as growth), and larger than the count noise of the arrivals and departures, sqrt(A cv_a^2 + D cv_d^2)
   (A, D: arrivals and departures in the window; cv: the coefficient of variation of their gaps). Poisson
   arrivals make a net count over a window wander by about sqrt(A) even at utilisation 1, so growth must
   exceed that to count; evenly spaced arrivals and a deterministic server have no such noise, and a queue
   growing at 3% of the offered rate is then caught within a minute.

The evidence also carries the waiting times (queue wait of the window's requests, its slope against arrival
time, the first and last quarter's means) and arrivals against completions in the window, so a report can
show why; the rule rests on the backlog alone, which needs no knowledge of what each request waits for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

GROWTH_LIMIT = 0.02
SIGNIFICANCE = 2.0
MIN_RISE = 2.0
GRID_POINTS = 400


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x, and the standard deviation of the residuals."""
    if len(x) < 2 or float(np.ptp(x)) == 0:
        return 0.0, 0.0
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return float(slope), float(residual.std())


def _count_noise(times: np.ndarray) -> float:
    """sqrt(events x cv^2) x batch of the events `times` (sorted): how much their count over the span wanders.
    Simultaneous events (a static batch finishing together) are one event of a batch's weight, so a batch
    policy that finishes 4 requests every S4 seconds is as regular as it really is."""
    distinct = np.unique(np.round(times, 9))
    if len(distinct) < 3:
        return 0.0
    gaps = np.diff(distinct)
    mean = float(gaps.mean())
    batch = len(times) / len(distinct)
    return batch * float(np.sqrt(len(distinct) * (gaps.std() / mean) ** 2)) if mean > 0 else float(len(times))


def backlog_evidence(arrivals: Sequence[float] | np.ndarray, departures: Sequence[float] | np.ndarray,
                     waits: Sequence[tuple[float, float]] | np.ndarray,
                     start: float, end: float) -> dict[str, Any] | None:
    """The evidence of `is_overloaded`: `arrivals` and `departures` from the queue of every request (when it was
    first scheduled, or ended if it never was), `waits` as (arrival, wait) of the window's requests, the window
    [start, end]. `waits` may be a (k, 2) array. None when the window has no length (nothing to test)."""
    length = end - start
    if length <= 0:
        return None
    arr = np.sort(np.asarray(arrivals, dtype=float))
    dep = np.sort(np.asarray(departures, dtype=float))
    grid = np.linspace(start, end, GRID_POINTS)
    backlog = (np.searchsorted(arr, grid, side="right") - np.searchsorted(dep, grid, side="right")).astype(float)
    slope, spread = _slope(grid, backlog)
    arrived = int(np.searchsorted(arr, end, side="right") - np.searchsorted(arr, start, side="left"))
    departed = int(np.searchsorted(dep, end, side="right") - np.searchsorted(dep, start, side="left"))
    offered = arrived / length
    inside_arr = arr[(arr >= start) & (arr <= end)]
    inside_dep = dep[(dep >= start) & (dep <= end)]
    noise = float(np.hypot(_count_noise(inside_arr), _count_noise(inside_dep)))
    evidence: dict[str, Any] = {
        "offered_rate": offered,
        "completion_rate": departed / length,
        "arrived_in_window": arrived,
        "ended_in_window": departed,
        "backlog_start": float(backlog[0]),
        "backlog_end": float(backlog[-1]),
        "backlog_mean": float(backlog.mean()),
        "backlog_growth_per_s": slope,
        "growth_share": slope / offered if offered > 0 else 0.0,
        "rise": slope * length,
        "spread": spread,
        "count_noise": noise,
    }
    if len(waits):
        pairs = np.asarray(waits, dtype=float).reshape(-1, 2)
        at, wait = pairs[:, 0], pairs[:, 1]
        order = np.argsort(at)
        quarter = max(1, len(wait) // 4)
        evidence["wait_growth_per_s"] = _slope(at, wait)[0]
        evidence["wait_first_quarter_s"] = float(wait[order[:quarter]].mean())
        evidence["wait_last_quarter_s"] = float(wait[order[-quarter:]].mean())
    return evidence


def is_overloaded(evidence: dict[str, Any] | None) -> bool:
    """The rule of the module docstring; False without evidence."""
    if not evidence:
        return False
    rise = float(evidence["rise"])
    return (float(evidence["growth_share"]) >= GROWTH_LIMIT and rise >= MIN_RISE
            and rise > SIGNIFICANCE * float(evidence["spread"]) and rise > float(evidence.get("count_noise", 0.0)))


def overload_text(evidence: dict[str, Any] | None) -> str:
    """One line of evidence for reports: the backlog's growth against the offered rate."""
    if not evidence:
        return "no window to test"
    text = (f"backlog {evidence['backlog_start']:.0f} -> {evidence['backlog_end']:.0f} requests over the window, "
            f"+{evidence['backlog_growth_per_s']:.3g}/s = {100 * evidence['growth_share']:.1f}% of the offered "
            f"{evidence['offered_rate']:.3g} req/s")
    if "wait_first_quarter_s" in evidence:
        text += (f"; queue wait {evidence['wait_first_quarter_s']:.3g} s -> {evidence['wait_last_quarter_s']:.3g} s "
                 f"(first -> last quarter)")
    return text
