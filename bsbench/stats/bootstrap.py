"""Percentile bootstrap over requests, seeded: within one run, or within each repeat of several and averaged.

A run's requests are one array (one value per request); several repeats are several arrays (strata), each
resampled on its own, the statistic averaged over them, as the reported figure is the mean over repeats.
Paired: two aligned arrays per repeat (the same request ids in the same order) are resampled with the SAME
indices, and the ratio (or difference) of their statistics is taken on each resample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from bsbench.stats.interval import PAIRED_OVER_REQUESTS, STRATIFIED, WITHIN_RUN, Interval
from bsbench.stats.statistics import Statistic

DEFAULT_RESAMPLES = 1000
_CHUNK_VALUES = 2_000_000  # resampled values held at once, per array


def _arrays(strata: Sequence[Sequence[float]] | np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(s, dtype=float) for s in strata]
    if not arrays or any(a.ndim != 1 or a.size == 0 for a in arrays):
        raise ValueError("bootstrap needs one non-empty array of values per run")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("bootstrap values must be finite numbers")
    return arrays


def _index_chunks(sizes: list[int], resamples: int, seed: int) -> Iterator[list[np.ndarray]]:
    """Per chunk of resamples, one (chunk, n_k) index array per stratum; the same seed gives the same indices."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CHUNK_VALUES // max(sizes)))
    done = 0
    while done < resamples:
        rows = min(chunk, resamples - done)
        yield [rng.integers(0, n, size=(rows, n)) for n in sizes]
        done += rows


def _averaged(arrays: list[np.ndarray], indices: list[np.ndarray], statistic: Statistic) -> np.ndarray:
    return np.mean([statistic(a[i]) for a, i in zip(arrays, indices)], axis=0)


def _percentile_interval(point: float, draws: np.ndarray, level: float, method: str, n: int) -> Interval:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    # a resampled statistic can land a rounding error off a constant point; never report a point outside its bounds
    return Interval(point, float(min(low, point)), float(max(high, point)), level, method, n)


def bootstrap(strata: Sequence[Sequence[float]], statistic: Statistic, *, level: float = 0.95,
              resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Interval:
    """Percentile bootstrap of `statistic` (statistics.py) over the values of each run in `strata`."""
    arrays = _arrays(strata)
    point = float(_averaged(arrays, [np.arange(a.size)[None, :] for a in arrays], statistic)[0])
    draws = np.concatenate([_averaged(arrays, idx, statistic)
                            for idx in _index_chunks([a.size for a in arrays], resamples, seed)])
    method = WITHIN_RUN if len(arrays) == 1 else STRATIFIED
    return _percentile_interval(point, draws, level, method, sum(a.size for a in arrays))


def paired_bootstrap(strata_a: Sequence[Sequence[float]], strata_b: Sequence[Sequence[float]],
                     statistic: Statistic, *, compare: str = "ratio", level: float = 0.95,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Interval | None:
    """Paired percentile bootstrap of statistic(a) / statistic(b) (`compare` 'ratio') or statistic(a) -
    statistic(b) ('difference'); a[k][i] and b[k][i] are the same request of repeat k. None when a ratio's
    denominator is 0 on the data itself."""
    arrays_a, arrays_b = _arrays(strata_a), _arrays(strata_b)
    if [a.size for a in arrays_a] != [b.size for b in arrays_b]:
        raise ValueError("paired arrays must have the same length in every repeat")
    if compare not in ("ratio", "difference"):
        raise ValueError("compare is 'ratio' or 'difference'")

    def combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if compare == "difference":
            return a - b
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / b

    full = [np.arange(a.size)[None, :] for a in arrays_a]
    point = float(combine(_averaged(arrays_a, full, statistic), _averaged(arrays_b, full, statistic))[0])
    if not np.isfinite(point):
        return None
    draws = np.concatenate([combine(_averaged(arrays_a, idx, statistic), _averaged(arrays_b, idx, statistic))
                            for idx in _index_chunks([a.size for a in arrays_a], resamples, seed)])
    draws = draws[np.isfinite(draws)]  # a resample whose reference statistic is 0 has no ratio
    if draws.size < resamples / 2:
        return None
    return _percentile_interval(point, draws, level, PAIRED_OVER_REQUESTS, sum(a.size for a in arrays_a))
