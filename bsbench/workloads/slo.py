"""Per-request SLOs (fixed thresholds or drawn uniformly from a range) and priority classes by share."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.workloads.request import SLO, Priority


@dataclass(slots=True, frozen=True)
class Bound:
    """A threshold in ms: `low == high` is fixed, otherwise drawn uniformly per request in [low, high]."""

    low: float
    high: float

    def text(self) -> str:
        return f"{self.low:g}" if self.low == self.high else f"{self.low:g}..{self.high:g}"


def parse_bound(value: str | float | int | list | None, name: str) -> Bound | None:
    """'500' -> fixed 500 ms; '150000..300000' (or a [low, high] list in a spec) -> a uniform range."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = value
    elif isinstance(value, (int, float)):
        low = high = value
    else:
        number = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"
        match = re.fullmatch(rf"\s*{number}\s*(?:\.\.\s*{number}\s*)?", str(value))
        if not match:
            raise BsbenchError(f"{name} must be milliseconds or a range LOW..HIGH, got {value!r}")
        low, high = match.group(1), match.group(2) or match.group(1)
    try:
        low, high = float(low), float(high)
    except ValueError:
        raise BsbenchError(f"{name} must be milliseconds or a range LOW..HIGH, got {value!r}") from None
    if not (0 < low <= high):
        raise BsbenchError(f"{name} must be > 0 with LOW <= HIGH, got {value!r}")
    return Bound(low, high)


def draw_slos(n: int, rng: np.random.Generator, ttft: Bound | None, tpot: Bound | None,
              e2e: Bound | None) -> list[SLO]:
    """One SLO per request; every range is drawn (even fixed ones), so the stream does not depend on which are set."""
    columns = []
    for bound in (ttft, tpot, e2e):
        draws = rng.random(n)
        columns.append(None if bound is None else [bound.low + (bound.high - bound.low) * float(u) for u in draws])
    return [SLO(*(None if col is None else col[i] for col in columns)) for i in range(n)]


def assign_priorities(n: int, rng: np.random.Generator, online_share: float) -> list[Priority]:
    """Exactly round(share * n) requests are 'online', chosen by a seeded permutation; the rest 'offline'."""
    if not 0.0 <= online_share <= 1.0:
        raise BsbenchError(f"online share must be in [0, 1], got {online_share}")
    online = set(rng.permutation(n)[: int(round(online_share * n))].tolist())
    return ["online" if i in online else "offline" for i in range(n)]
