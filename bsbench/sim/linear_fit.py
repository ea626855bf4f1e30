"""The calibrated cost model's form: step time = non-negative coefficients x features of the work.

Features come from the same work description the roofline prices (`work.StepWork`),
including the runner's own attention grouping (`engine/step_layout.py`):

- `step`: a fixed cost per step;
- `tokens`: rows through the linear layers (pads included);
- `linear_table`: the measured seconds of the decoder's linear layers over `tokens` rows,
  `lm_head_table`: of the LM head over the sampled rows (`op_tables.py`: matmul time is
  not linear in rows, so its shape is measured; the fit only scales it, and may drop a
  table another feature explains as well: on the tiny CPU model `linear_table` often gets 0);
- `sampled`: rows through the LM head (their gather, argmax and copy to the host);
- `causal_pairs`: attention (query, key) pairs of whole prompts (`is_causal`, no mask);
  `masked_pairs`: of masked calls (padded rectangles, left-padded prompts, later chunks),
  which materialise their scores and mask (on a CPU many times dearer per pair);
  `kv_read_slots`: gathered KV slots (a decode row's pairs are its slots);
- attention calls by kind, each a kernel launch and its set-up per layer: `decode_calls`
  (a padded gather of a decode group, with its mask; a padded decode step's one call over
  its rows is the same work), `causal_calls` (a whole prompt over its own k/v, no mask),
  `masked_calls` (a left-padded prompt, a padded rectangle or a later chunk: a mask
  built and applied). Counted as a masked call, a padded decode step had been priced
  with the rectangles' set-up: on the tiny CPU model a one-row padded decode 13% too
  slow against a packed one (7.3 and 7.6 ms measured), the step uellm takes most;
- `seqs`: sequences (per-row host work: positions, block tables).

The fit minimises the squared RELATIVE error (rows weighted by 1 / measured time), so a
2 ms decode step counts as much as a 200 ms prefill, and keeps every coefficient
non-negative (a cost never makes a step faster): exact non-negative least squares by
trying every subset of features (4,095 small solves for twelve features: about a second).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

from bsbench.engine.step_layout import DECODE, FRESH_CAUSAL, GATHERED
from bsbench.sim.op_tables import EMPTY, RowTable
from bsbench.sim.work import StepWork

FEATURES = ("step", "tokens", "linear_table", "lm_head_table", "sampled", "causal_pairs", "masked_pairs",
            "kv_read_slots", "decode_calls", "causal_calls", "masked_calls", "seqs")


def features(work: StepWork, tables: Mapping[str, RowTable]) -> tuple[float, ...]:
    """The feature vector of one step, in `FEATURES` order; `tables`: the operator tables (missing ones cost 0)."""
    decode = causal = causal_pairs = masked_pairs = 0
    for call in work.calls:
        if call.kind == DECODE or (call.kind == GATHERED and call.q_len == 1):
            decode += 1
        elif call.kind == FRESH_CAUSAL:
            causal += 1
            causal_pairs += call.score_pairs
        else:
            masked_pairs += call.score_pairs
    return (1.0, float(work.tokens), tables.get("linear", EMPTY).at(work.tokens),
            tables.get("lm_head", EMPTY).at(work.sampled), float(work.sampled), float(causal_pairs),
            float(masked_pairs), float(work.kv_read_slots), float(decode), float(causal),
            float(work.num_calls - decode - causal), float(work.num_seqs))


def predict(coefficients: Sequence[float], work: StepWork, tables: Mapping[str, RowTable]) -> float:
    return float(sum(c * f for c, f in zip(coefficients, features(work, tables), strict=True)))


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
