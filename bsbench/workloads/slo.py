"""Per-request SLOs (fixed thresholds or drawn uniformly from a range) and priority classes by share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.values import Invalid, Real
from bsbench.workloads.request import SLO, Priority


@dataclass(slots=True, frozen=True)
class Bound:
    """A threshold in ms: `low == high` is fixed, otherwise drawn uniformly per request in [low, high]."""

    low: float
    high: float

    def text(self) -> str:
        return f"{self.low:g}" if self.low == self.high else f"{self.low:g}..{self.high:g}"


_MS = Real(low=0, low_open=True)


def _ms(text: Any, value: Any) -> float:
    try:
        return _MS.check(text.strip() if isinstance(text, str) else text)
    except Invalid:
        raise Invalid(f"must be milliseconds > 0 (at most {_MS.high:g}) or a range LOW..HIGH, got {value!r}") from None


def bound_of(value: Any) -> Bound | None:
    """'500' or 500 -> fixed 500 ms; '150000..300000' (or a [low, high] list in a spec) -> a uniform range.

    None or '' -> None. Anything else (NaN, inf, <= 0, LOW > HIGH, wrong types) raises values.Invalid."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = _ms(value[0], value), _ms(value[1], value)
    elif isinstance(value, str):
        low_text, dots, high_text = value.partition("..")
        low = _ms(low_text, value)
        high = _ms(high_text, value) if dots else low
    else:
        low = high = _ms(value, value)  # numbers; other types are refused by the rule
    if low > high:
        raise Invalid(f"must have LOW <= HIGH, got {value!r}")
    return Bound(low, high)


def parse_bound(value: Any, name: str) -> Bound | None:
    """`bound_of`, with a refusal as a one-line BsbenchError naming `name`."""
    try:
        return bound_of(value)
    except Invalid as exc:
        raise BsbenchError(f"{name} {exc}") from None


@dataclass(slots=True, frozen=True)
class SloBound:
    """The value rule of an SLO option (see values.Rule): checked with `bound_of`, kept as given."""

    def describe(self) -> str:
        return "milliseconds > 0 or a range LOW..HIGH"

    def check(self, value: Any) -> Any:
        bound_of(value)
        return value


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
    online = set(rng.permutation(n)[: round(online_share * n)].tolist())
    return ["online" if i in online else "offline" for i in range(n)]


def draw_block_slos(n: int, rng: np.random.Generator, blocks: list[Bound], block_size: int) -> list[float]:
    """One value per request drawn uniformly from the range of its block: request i falls in block
    (i // block_size) mod len(blocks), as UELLM's public code assigns its SLOs (blocks of 20 requests)."""
    if not blocks or block_size < 1:
        raise BsbenchError("SLO blocks need at least one range and a block size >= 1")
    draws = rng.random(n)
    ranges = [blocks[(i // block_size) % len(blocks)] for i in range(n)]
    return [b.low + (b.high - b.low) * float(u) for b, u in zip(ranges, draws)]
