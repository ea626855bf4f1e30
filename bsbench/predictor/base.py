"""The predictor interface, output-length classes and the memory estimate."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Protocol

from bsbench.workloads.request import RequestSpec

DEFAULT_BOUNDARIES: tuple[int, ...] = (64, 128, 256, 512)


@dataclass(slots=True, frozen=True)
class LengthClasses:
    """Half-open output-length classes [0, b0), [b0, b1), ..., [b_last, inf)."""

    boundaries: tuple[int, ...] = DEFAULT_BOUNDARIES

    def __post_init__(self) -> None:
        if not self.boundaries or list(self.boundaries) != sorted(set(self.boundaries)) or self.boundaries[0] <= 0:
            raise ValueError(f"class boundaries must be increasing positive integers, got {self.boundaries}")

    @property
    def num_classes(self) -> int:
        return len(self.boundaries) + 1

    def of(self, length: int) -> int:
        return bisect.bisect_right(self.boundaries, length)

    def bounds(self, cls: int) -> tuple[int, int | None]:
        low = 0 if cls == 0 else self.boundaries[cls - 1]
        up = self.boundaries[cls] if cls < len(self.boundaries) else None
        return low, up

    def label(self, cls: int) -> str:
        low, up = self.bounds(cls)
        return f"{low}-{up}" if up is not None else f"{low}+"

    def labels(self) -> list[str]:
        return [self.label(c) for c in range(self.num_classes)]


@dataclass(slots=True, frozen=True)
class Prediction:
    """A predicted output length (tokens, >= 1); `cls` is the length class when the predictor is a classifier."""

    length: int
    cls: int | None = None


class LengthPredictor(Protocol):
    """Predicts a request's output length before it is scheduled, from what a server would see.

    Contract: deterministic for a given (predictor, request); never mutates the request.
    Only `oracle` and `noisy` read `spec.output_len` (the hidden truth).
    """

    name: str

    def predict(self, spec: RequestSpec) -> Prediction: ...


@dataclass(slots=True, frozen=True)
class Profile:
    """What the resource profiler says about one request."""

    predicted_len: int
    predicted_cls: int | None
    kv_bytes: int


def memory_estimate_bytes(kv_bytes_per_token: int, prompt_len: int, predicted_len: int) -> int:
    """KV memory a request needs: bytes per token x (prompt + predicted output)."""
    return kv_bytes_per_token * (prompt_len + predicted_len)


def profile(predictor: LengthPredictor, spec: RequestSpec, kv_bytes_per_token: int) -> Profile:
    pred = predictor.predict(spec)
    return Profile(pred.length, pred.cls, memory_estimate_bytes(kv_bytes_per_token, spec.prompt_len, pred.length))
