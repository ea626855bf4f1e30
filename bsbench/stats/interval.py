"""The interval every report shows beside a figure, and the verdict on a ratio interval."""

from __future__ import annotations

from dataclasses import dataclass

# what was resampled: the `method` of an Interval
WITHIN_RUN = "bootstrap over requests (within one run)"
STRATIFIED = "bootstrap over requests (within each repeat, averaged over repeats)"
ACROSS_SEEDS = "t-interval over seeds (across runs)"
PAIRED_OVER_REQUESTS = "paired bootstrap over requests (paired by request id within each repeat)"
PAIRED_OVER_SEEDS = "paired t-interval over seeds (one ratio per repeat)"
NO_CLEAR_DIFFERENCE = "no clear difference"


@dataclass(slots=True, frozen=True)
class Interval:
    """`point` with a `level` (0.95) confidence interval [low, high]; `method` says what was resampled and
    `n` how many units it was over (requests, request pairs, or runs)."""

    point: float
    low: float
    high: float
    level: float
    method: str
    n: int

    def contains(self, value: float) -> bool:
        """low <= value <= high, up to rounding (a ratio of two equal figures computed apart can be 1 - 1e-16)."""
        slack = 1e-9 * max(abs(value), abs(self.low), abs(self.high))
        return self.low - slack <= value <= self.high + slack

    @property
    def width(self) -> float:
        return self.high - self.low

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def to_json(self) -> dict[str, float | str | int]:
        return {"point": self.point, "low": self.low, "high": self.high, "level": self.level,
                "method": self.method, "n": self.n}


def verdict(ratio: Interval, sign: int, name: str, reference: str) -> str:
    """The verdict on `name` / `reference` of a metric whose direction is `sign` (+1 higher is better, -1 lower
    is better, 0 neither): "no clear difference" when the interval contains 1, else the winner ('bucket better')
    or, for a metric with no direction, 'bucket higher' / 'bucket lower'."""
    if ratio.contains(1.0):
        return NO_CLEAR_DIFFERENCE
    higher = ratio.low > 1.0
    if sign == 0:
        return f"{name} {'higher' if higher else 'lower'}"
    return f"{name if higher == (sign > 0) else reference} better"
