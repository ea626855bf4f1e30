"""Build a predictor from the scheduler's / command's options."""

from __future__ import annotations

from typing import Any

from bsbench.errors import BsbenchError
from bsbench.predictor.base import LengthPredictor
from bsbench.predictor.learned import load_or_train
from bsbench.predictor.simple import NoisyPredictor, OraclePredictor

PREDICTOR_MODES: tuple[str, ...] = ("oracle", "noisy", "learned")


def make_predictor(mode: str, *, sigma: float = 0.5, seed: int = 0, **learned: Any) -> LengthPredictor:
    """`learned` keywords go to `bsbench.predictor.learned.load_or_train` (data path, tokenizer, cache dir...)."""
    if mode == "oracle":
        return OraclePredictor()
    if mode == "noisy":
        try:
            return NoisyPredictor(sigma, seed)
        except ValueError as exc:
            raise BsbenchError(str(exc)) from None
    if mode == "learned":

        return load_or_train(seed=seed, **learned)
    raise BsbenchError(f"unknown predictor {mode!r}; choose one of: {', '.join(PREDICTOR_MODES)}")
