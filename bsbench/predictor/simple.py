"""The oracle and noisy predictors: the true length, or the true length times seeded log-normal error."""

from __future__ import annotations

import hashlib
import math
import random

from bsbench.predictor.base import Prediction
from bsbench.workloads.request import RequestSpec


class OraclePredictor:
    """The true output length: an upper bound on what prediction can buy."""

    name = "oracle"

    def predict(self, spec: RequestSpec) -> Prediction:
        return Prediction(spec.output_len)


class NoisyPredictor:
    """true length x exp(N(0, sigma)), rounded, at least 1.

    The error of a request depends only on (seed, request id), not on arrival
    or scheduling order, so every scheduler and every run with the same seed
    sees the same predictions (a paired comparison).
    """

    name = "noisy"

    def __init__(self, sigma: float, seed: int = 0) -> None:
        if sigma < 0 or not math.isfinite(sigma):
            raise ValueError(f"predictor sigma must be a finite number >= 0, got {sigma}")
        self.sigma = sigma
        self.seed = seed

    def factor(self, req_id: str) -> float:
        digest = hashlib.sha256(f"bsbench-noisy:{self.seed}:{req_id}".encode()).digest()
        return math.exp(random.Random(int.from_bytes(digest[:8], "little")).gauss(0.0, self.sigma))

    def predict(self, spec: RequestSpec) -> Prediction:
        return Prediction(max(1, round(spec.output_len * self.factor(spec.id))))
