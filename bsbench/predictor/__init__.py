"""UELLM's resource profiler: per-request output-length prediction and the memory it implies.

Three predictors share one interface (`LengthPredictor.predict(spec) -> Prediction`):

- `oracle`: the true output length (an upper bound on what prediction buys);
- `noisy`: the true length times seeded log-normal error (`sigma`);
- `learned`: a small classifier (prompt token ids -> output-length class)
  trained in-process on source data the benchmarked requests are not drawn
  from (see `learned.py`).

`profile()` adds the memory estimate: KV bytes per token x (prompt + predicted output).
"""

from bsbench.predictor.base import (
    DEFAULT_BOUNDARIES,
    LengthClasses,
    LengthPredictor,
    Prediction,
    Profile,
    memory_estimate_bytes,
    profile,
)
from bsbench.predictor.factory import PREDICTOR_MODES, make_predictor
from bsbench.predictor.simple import NoisyPredictor, OraclePredictor

__all__ = [
    "DEFAULT_BOUNDARIES", "LengthClasses", "LengthPredictor", "Prediction", "Profile", "memory_estimate_bytes",
    "profile", "PREDICTOR_MODES", "make_predictor", "NoisyPredictor", "OraclePredictor",
]
