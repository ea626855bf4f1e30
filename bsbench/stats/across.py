"""Intervals across repeats: one figure per seed, Student's t (exact for normal figures, fine for K >= 2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from bsbench.stats.interval import ACROSS_SEEDS, PAIRED_OVER_SEEDS, Interval


def _two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer `df` (Abramowitz & Stegun 26.7.3-4, a finite series)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term, total = 1.0, 0.0
        if df > 1:
            total = 1.0
            for k in range(1, (df - 3) // 2 + 1):
                term *= c2 * (2 * k) / (2 * k + 1)
                total += term
        return 2 / math.pi * (theta + s * math.cos(theta) * total) if df > 1 else 2 * theta / math.pi
    term, total = 1.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    for k in range(1, (df - 2) // 2 + 1):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return s * total


@lru_cache(maxsize=256)  # a sweep summary asks for the same few (level, df) thousands of times
def t_quantile(level: float, df: int) -> float:
    """The t such that P(|T| <= t) = level, for Student's t with `df` >= 1 degrees of freedom (bisection)."""
    if not 0 < level < 1 or df < 1:
        raise ValueError("need 0 < level < 1 and df >= 1")
    low, high = 0.0, 1.0
    while _two_sided_mass(high, df) < level:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if _two_sided_mass(mid, df) < level:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * high:
            break
    return (low + high) / 2


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of K >= 2 per-seed figures +- t(level, K-1) * s / sqrt(K); identical figures give zero width."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        raise ValueError("an interval across seeds needs at least 2 runs")
    if not np.all(np.isfinite(arr)):
        raise ValueError("figures across seeds must be finite numbers")
    mean = float(arr.mean())
    half = t_quantile(level, arr.size - 1) * float(arr.std(ddof=1)) / math.sqrt(arr.size)
    return Interval(mean, mean - half, mean + half, level, ACROSS_SEEDS, int(arr.size))


def paired_t_interval(values: Sequence[float], references: Sequence[float], level: float = 0.95) -> Interval | None:
    """values[k] / references[k] per repeat k (paired by seed), and the t-interval of those K >= 2 ratios;
    None when a reference figure is 0."""
    if len(values) != len(references):
        raise ValueError("paired figures need one reference per repeat")
    if any(r == 0 for r in references):
        return None
    got = t_interval([v / r for v, r in zip(values, references)], level)
    return Interval(got.point, got.low, got.high, level, PAIRED_OVER_SEEDS, got.n)
