"""Statistics of a batch of resamples: each maps a (resamples, n) array to one value per row."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]


def mean(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1)


def std(samples: np.ndarray) -> np.ndarray:
    return samples.std(axis=1)


def percentile(p: float) -> Statistic:
    """The p-th percentile with numpy's linear interpolation (as metrics.distribution computes it)."""
    def stat(samples: np.ndarray) -> np.ndarray:
        return np.percentile(samples, p, axis=1)

    return stat


def statistic_for(name: str) -> Statistic:
    """'mean', 'median', 'std' or 'pXX' (the stat names of metrics.distribution) as a Statistic."""
    if name == "mean":
        return mean
    if name == "std":
        return std
    if name == "median":
        return percentile(50.0)
    if name.startswith("p"):
        return percentile(float(name[1:]))
    raise ValueError(f"unknown statistic {name!r}")
