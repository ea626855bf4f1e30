"""The verdict on one claim: holds / does not hold / not comparable, and the rule that decides it.

The rule is two-sided, an equivalence test: "holds" means the measured improvement factor's WHOLE 95% interval
lies inside the band [HOLD_FRACTION x claim, claim / HOLD_FRACTION] (0.8x to 1.25x of the claimed factor; of its
lower and upper end for a range claim). Why the whole interval: noise alone must make a claim neither hold
nor fail. Why 80% both ways: the figures here come from a cost model (an uncalibrated roofline unless a
calibration is given) on stand-in data, not from the paper's testbed; a claim whose effect is reproduced to
within 20% of its stated size is reproduced, one that misses it by more is not, whatever the direction: an
effect far larger than claimed says the setup, not the policy, decides its size. A verdict that does not hold
says which side: "below the claim" (the interval reaches under the band), "above the claim" (over it), or both
(the interval is wider than the band). With one repeat and no interval the point figure is judged and the
verdict says so. A claim whose baseline is not the paper's, or whose figure could not be measured (a scheduler
not registered, a capacity search that never brackets the capacity), is "not comparable" with the reason. The
factor that decides is measured at the claim's own rate and setting; a best-of-rates figure is only shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsbench.experiments.reproduce.claims import Claim
from bsbench.stats import Interval

HOLD_FRACTION = 0.8
HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_COMPARABLE = "not comparable"


@dataclass(slots=True)
class Measured:
    """The measured improvement factor (>= 1: ours better) of a claim, its 95% interval when there is one, and
    where it came from (`source`: e.g. 'rate 8 req/s, 3 seeds'); `missing` says why there is no figure."""

    point: float | None
    interval: Interval | None = None
    source: str = ""
    missing: str = ""
    best_of_rates: str = ""  # an 'up to' claim's best factor over the swept rates: shown, labelled, never deciding

    def text(self) -> str:
        if self.point is None:
            return "—"
        if self.interval is None:
            return f"{self.point:.2f}x"
        return f"{self.point:.2f}x [{self.interval.low:.2f}, {self.interval.high:.2f}]"

    def to_dict(self) -> dict[str, Any]:
        return {"point": self.point, "interval": self.interval.to_json() if self.interval else None,
                "source": self.source, "missing": self.missing or None, "best_of_rates": self.best_of_rates or None}


def inverted(interval: Interval) -> Interval:
    """A ratio interval ours / baseline of a lower-is-better figure as the factor baseline / ours."""
    low = 1 / interval.high if interval.high > 0 else float("inf")
    high = 1 / interval.low if interval.low > 0 else float("inf")
    return Interval(1 / interval.point, low, high, interval.level, interval.method, interval.n)


def judge(claim: Claim, measured: Measured) -> str:
    """The verdict text on the measured factor against the claim, by the rule of the module docstring, ignoring
    whether the baseline is the paper's (see `verdict`)."""
    if measured.point is None:
        return f"{NOT_COMPARABLE} ({measured.missing or 'no figure'})"
    low = measured.interval.low if measured.interval is not None else measured.point
    high = measured.interval.high if measured.interval is not None else measured.point
    floor = HOLD_FRACTION * claim.factor
    ceiling = (claim.factor_high or claim.factor) / HOLD_FRACTION
    basis = "" if measured.interval is not None else ", one repeat: point figure, no interval"
    band = f"{floor:.2f}x..{ceiling:.2f}x"
    if floor <= low and high <= ceiling:
        return f"{HOLDS} (within {band}: {low:.2f}x..{high:.2f}x{basis})"
    sides = [side for side, out in (("below the claim", low < floor), ("above the claim", high > ceiling)) if out]
    if low < floor and high > ceiling:
        why = f"interval {low:.2f}x..{high:.2f}x wider than the band {band}"
    elif low < floor:
        direction = ("reverse: " + claim.baseline + " better, " if high < 1 else
                     "" if low > 1 or measured.interval is None else "no clear difference, ")
        why = f"{direction}lower end {low:.2f}x < {floor:.2f}x"
    else:
        why = f"lower end {low:.2f}x; upper end {high:.2f}x > {ceiling:.2f}x: the setup decides the size"
    return f"{DOES_NOT_HOLD}, {' and '.join(sides)} ({why}{basis})"


def verdict(claim: Claim, measured: Measured) -> str:
    """`judge`, except that a claim measured against a stand-in baseline is not comparable: the rule's outcome
    on the stand-in follows in brackets, as the like-for-like part."""
    outcome = judge(claim, measured)
    if claim.stand_in:
        return (f"{NOT_COMPARABLE} (baseline differs: {claim.paper_baseline} not in bsbench); "
                f"vs {claim.baseline}: {outcome}")
    return outcome


def verdict_kind(text: str) -> str:
    """The verdict's first words: holds, does not hold or not comparable."""
    return next(kind for kind in (HOLDS, DOES_NOT_HOLD, NOT_COMPARABLE) if text.startswith(kind))
