"""How close predictions are to measurements: the numbers calibration and sim validation report.

All errors are relative, as fractions (0.05 = 5%): `ape` = |predicted - measured| /
measured, `bias` = mean of (predicted - measured) / measured (positive: the model
predicts too slow).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from bsbench.metrics import direction

# End-to-end figures validate-sim compares (summary keys of metrics.summarize).
END_TO_END_KEYS = ("median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_e2el_ms",
                   "p99_e2el_ms", "output_throughput", "total_token_throughput", "slo_attainment")


def error_stats(measured: Sequence[float], predicted: Sequence[float]) -> dict[str, float | int | None]:
    """n, mape, p90_ape, max_ape, bias of `predicted` against `measured` (pairs with measured <= 0 are skipped)."""
    pairs = [(m, p) for m, p in zip(measured, predicted, strict=True) if m > 0]
    if not pairs:
        return {"n": 0, "mape": None, "p90_ape": None, "max_ape": None, "bias": None}
    rel = np.array([(p - m) / m for m, p in pairs], dtype=float)
    ape = np.abs(rel)
    return {"n": len(pairs), "mape": float(ape.mean()), "p90_ape": float(np.percentile(ape, 90)),
            "max_ape": float(ape.max()), "bias": float(rel.mean())}


def errors_by_layout(steps: Iterable[tuple[str, float, float]]) -> dict[str, dict[str, Any]]:
    """`error_stats` per step layout and over all steps, from (layout, measured_s, predicted_s) rows."""
    rows = list(steps)
    out = {"all": error_stats([m for _, m, _ in rows], [p for _, _, p in rows])}
    for layout in sorted({lay for lay, _, _ in rows}):
        picked = [(m, p) for lay, m, p in rows if lay == layout]
        out[layout] = error_stats([m for m, _ in picked], [p for _, p in picked])
    return out


def relative_error(real: float | None, predicted: float | None) -> float | None:
    """(predicted - real) / real; None when either is missing or real is 0."""
    if real is None or predicted is None or real == 0:
        return None
    return (predicted - real) / real


def end_to_end_errors(real: Mapping[str, Any], sim: Mapping[str, Any],
                      keys: Sequence[str] = END_TO_END_KEYS) -> dict[str, float | None]:
    """Relative error of each summary figure of a simulated run against the real run of the same workload."""
    return {key: relative_error(real.get(key), sim.get(key)) for key in keys}


def ranking(scores: Mapping[str, float], key: str) -> list[str]:
    """Scheduler names best first by summary figure `key` (its direction from metrics.direction; ties by name)."""
    sign = direction(key) or 1
    return sorted(scores, key=lambda name: (-sign * scores[name], name))


def ranking_preserved(real: Mapping[str, float], sim: Mapping[str, float], key: str) -> bool:
    """True when the simulated runs order the schedulers as the real runs do on `key`."""
    return ranking(real, key) == ranking(sim, key)


def decisive_pairs(repeats: Mapping[str, Sequence[float]], sim: Mapping[str, float]) -> tuple[int, int]:
    """(pairs of schedulers that every real repeat orders the same way, how many of them the simulator orders that
    way too). A pair some repeats order one way and others the other way is a tie within the machine's noise: no
    order to preserve, and it is not counted. (Whether higher or lower is better does not matter here.)"""
    names = sorted(repeats)
    decided = kept = 0
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if len(repeats[a]) != len(repeats[b]) or not repeats[a]:
                raise ValueError("every scheduler needs the same number (>= 1) of real repeats")
            signs = {float(np.sign(x - y)) for x, y in zip(repeats[a], repeats[b])}
            if len(signs) == 1 and 0.0 not in signs:
                decided += 1
                kept += float(np.sign(sim[a] - sim[b])) in signs
    return decided, kept


def median_summary(summaries: Sequence[Mapping[str, Any]], keys: Sequence[str] = END_TO_END_KEYS) -> dict[str, Any]:
    """Per key, the median over repeated runs' summaries of the figures they have (None when none has it)."""
    out: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in summaries if s.get(key) is not None]
        out[key] = float(np.median(values)) if values else None
    return out


def spread(summaries: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """(max - min) / median of `key` over repeated runs: how far one run can land from another; None when unknown."""
    values = [s[key] for s in summaries if s.get(key) is not None]
    middle = float(np.median(values)) if values else 0.0
    return (max(values) - min(values)) / abs(middle) if len(values) >= 2 and middle else None


def repeat_noise(points: Iterable[Mapping[str, Any]]) -> dict[str, float | int | None]:
    """How far one timing of a plan lands from the median of its repeats (calibration points with `samples_s`):
    n, mean and P90 of |sample - median| / median. What even an exact cost model would err by, step by step."""
    deviations: list[float] = []
    for point in points:
        samples = point.get("samples_s") or []
        if len(samples) >= 2:
            middle = float(np.median(samples))
            deviations.extend(abs(s - middle) / middle for s in samples if middle > 0)
    if not deviations:
        return {"n": 0, "mean": None, "p90": None}
    return {"n": len(deviations), "mean": float(np.mean(deviations)), "p90": float(np.percentile(deviations, 90))}
