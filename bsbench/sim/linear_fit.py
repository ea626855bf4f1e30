"""The calibrated cost model's form: step time = non-negative coefficients x features of the work.

Features come from the same work description the roofline prices (`work.StepWork`):
a fixed cost per step, tokens through the linear layers (pads included), rows through
the LM head, attention (query, key) pairs, gathered KV slots, attention calls (each a
kernel launch per layer in the real runner) and sequences (per-row host work).

The fit minimises the squared RELATIVE error (rows weighted by 1 / measured time), so a
2 ms decode step counts as much as a 200 ms prefill, and keeps every coefficient
non-negative (a cost never makes a step faster): exact non-negative least squares by
trying every subset of features, which is cheap for seven.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from bsbench.sim.work import StepWork

FEATURES = ("step", "tokens", "sampled", "attn_pairs", "kv_read_slots", "attn_calls", "seqs")


def features(work: StepWork) -> tuple[float, ...]:
    """The feature vector of one step, in `FEATURES` order."""
    return (1.0, float(work.tokens), float(work.sampled), float(work.attn_pairs), float(work.kv_read_slots),
            float(work.num_calls), float(work.num_seqs))


def predict(coefficients: Sequence[float], work: StepWork) -> float:
    return float(sum(c * f for c, f in zip(coefficients, features(work), strict=True)))


def fit_nonnegative(rows: Sequence[Sequence[float]], measured: Sequence[float]) -> list[float]:
    """Coefficients >= 0 minimising sum(((x . c) - y) / y)^2 over the rows (see the module docstring)."""
    x = np.asarray(rows, dtype=float)
    y = np.asarray(measured, dtype=float)
    if x.ndim != 2 or len(x) != len(y) or len(y) == 0 or np.any(y <= 0):
        raise ValueError("need at least one row and positive measured times")
    a = x / y[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    a = a / scale  # equal column scales: the solver's conditioning does not depend on the features' units
    target = np.ones(len(y))
    k = a.shape[1]
    best: tuple[float, np.ndarray] | None = None
    for size in range(1, k + 1):
        for cols in combinations(range(k), size):
            sub = a[:, cols]
            coef, *_ = np.linalg.lstsq(sub, target, rcond=None)
            if np.any(coef < 0):
                continue
            residual = float(np.sum((sub @ coef - target) ** 2))
            if best is None or residual < best[0] - 1e-12:
                full = np.zeros(k)
                full[list(cols)] = coef
                best = (residual, full)
    assert best is not None  # a single column with positive entries always gives a non-negative fit
    return [float(c) for c in best[1] / scale]
