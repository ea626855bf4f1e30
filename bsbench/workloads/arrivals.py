"""Arrival processes: poisson (default), gamma (burstiness k or cv), constant; rate inf puts everything at t = 0.

Arrival times are drawn at UNIT rate from the seed and divided by the rate:
the same seed gives the same unit-rate draws at every rate, so request i of a
workload at rate r1 and at rate r2 is the same request, arriving at
unit_i / r1 and unit_i / r2 (a paired sweep). The first request arrives at t = 0.
Gamma gaps have shape k and mean 1 / rate (k = 1 is Poisson; cv = 1 / sqrt(k)).

Normalised arrivals (`normalised=True`) scale the drawn gaps so that the
realised offered rate, (n - 1) / (last arrival - first arrival), equals the
rate exactly: n draws of a Poisson process at rate 4 can otherwise offer 5.2
req/s. The shape of the gaps (burstiness) is kept. vLLM's benchmark
(vllm/benchmarks/serve.py, since PR #21108) always rescales this way, with no
flag, and counts a gap before its first request (the last request is sent at
n / rate); here the first request arrives at t = 0, and normalisation is a
choice, off by default, so that existing workloads keep their arrivals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.values import parse_rate

PROCESSES = ("poisson", "gamma", "constant")
RAMP_STRATEGIES = ("linear", "exponential")


@dataclass(slots=True, frozen=True)
class ArrivalSpec:
    process: str = "poisson"
    rate: float = math.inf
    burstiness: float = 1.0
    normalised: bool = False  # gaps scaled so that the realised rate equals `rate` exactly


def make_arrival_spec(process: str | None, rate: str | float | None, burstiness: float | None = None,
                      cv: float | None = None, normalised: bool = False) -> ArrivalSpec:
    name = (process or "poisson").lower()
    if name not in PROCESSES:
        raise BsbenchError(f"unknown arrival process {process!r} (choose from {', '.join(PROCESSES)})")
    value = parse_rate("inf" if rate is None else rate)
    if burstiness is not None and cv is not None:
        raise BsbenchError("give --burstiness or --cv, not both")
    if cv is not None:
        if cv <= 0:
            raise BsbenchError(f"cv must be > 0, got {cv}")
        burstiness = 1.0 / (cv * cv)
    if burstiness is not None and (math.isnan(burstiness) or burstiness <= 0):
        raise BsbenchError(f"burstiness must be > 0, got {burstiness}")
    if burstiness is not None and name != "gamma" and burstiness != 1.0:
        raise BsbenchError(f"--burstiness/--cv applies to --arrival gamma, not {name}")
    return ArrivalSpec(name, value, float(burstiness if burstiness is not None else 1.0), bool(normalised))


def unit_arrivals(spec: ArrivalSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival times at rate 1 (first at 0); divide by the rate to get seconds."""
    if n <= 0:
        return np.zeros(0)
    if spec.process == "constant":
        gaps = np.ones(n - 1)
    elif spec.process == "gamma":
        gaps = rng.gamma(spec.burstiness, 1.0 / spec.burstiness, size=n - 1)
    else:
        gaps = rng.exponential(1.0, size=n - 1)
    return np.concatenate([[0.0], np.cumsum(gaps)])


def arrival_times(spec: ArrivalSpec, n: int, rng: np.random.Generator) -> list[float]:
    """Seconds from the start for n requests (all 0.0 when the rate is inf)."""
    unit = unit_arrivals(spec, n, rng)  # drawn even at rate inf, so the rng stream is rate-independent
    if math.isinf(spec.rate):
        return [0.0] * n
    if spec.normalised and n > 1 and unit[-1] > 0:
        unit = unit * ((n - 1) / unit[-1])  # the last arrival at exactly (n - 1) / rate
    return [float(t) for t in unit / spec.rate]


def realised_rate(times: Sequence[float]) -> float | None:
    """The offered rate a list of arrival times realises: (n - 1) / (last - first); inf when they all arrive at
    once, None for fewer than two requests."""
    if len(times) < 2:
        return None
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else math.inf


def ramp_rates(strategy: str, start: float, end: float, n: int) -> np.ndarray:
    """vLLM's ramp-up (`--ramp-up-strategy`): the rate request i is sent at, progress p = i / (n - 1) from start
    to end: linear start + (end - start) p, exponential start (end / start)^p. Bad bounds are user errors."""
    if strategy not in RAMP_STRATEGIES:
        raise BsbenchError(f"--ramp-up-strategy must be one of {', '.join(RAMP_STRATEGIES)}, got {strategy!r}")
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= 0:
        raise BsbenchError(f"--ramp-up-start-rps must be >= 0 and --ramp-up-end-rps > 0, got {start} and {end}")
    if strategy == "exponential" and start <= 0:
        raise BsbenchError("--ramp-up-strategy exponential needs --ramp-up-start-rps > 0")
    progress = np.arange(n) / max(n - 1, 1)
    if strategy == "linear":
        return start + (end - start) * progress
    return start * (end / start) ** progress


def ramped_arrival_times(unit: np.ndarray, rates: np.ndarray) -> list[float]:
    """Arrival times whose gap before request i is its unit-rate gap divided by request i's rate (the first at 0):
    the burstiness of the unit draws is kept while the rate ramps."""
    if len(unit) == 0:
        return []
    gaps = np.diff(unit) / rates[1:]
    return [float(t) for t in np.concatenate([[0.0], np.cumsum(gaps)])]
