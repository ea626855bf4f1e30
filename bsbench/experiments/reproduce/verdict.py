"""The verdict on one claim: holds / does not hold / not comparable, and the rule that decides it.

"Holds" means: the LOWER end of the measured improvement factor's 95% interval reaches HOLD_FRACTION (80%) of
the claimed factor (of its lower end, for a range claim). Why the lower end: noise alone must not make a claim
hold. Why 80%: the figures here come from a cost model (an uncalibrated roofline unless a calibration is
given) on stand-in data, not from the paper's testbed; a claim whose effect is reproduced to within 20% of its
stated size is reproduced, one that misses by more is not, whatever the direction. With one repeat and no
interval the point figure is judged and the verdict says so. A claim whose baseline is not the paper's, or
whose figure could not be measured (a scheduler not registered, a capacity search that never brackets the
capacity), is "not comparable" with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsbench.experiments.reproduce.claims import Claim
from bsbench.stats import Interval

HOLD_FRACTION = 0.8
FAR_ABOVE = 2.0  # a measured lower end this many times the claim is flagged: the effect's size is the setup's
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

    def text(self) -> str:
        if self.point is None:
            return "—"
        if self.interval is None:
            return f"{self.point:.2f}x"
        return f"{self.point:.2f}x [{self.interval.low:.2f}, {self.interval.high:.2f}]"

    def to_dict(self) -> dict[str, Any]:
        return {"point": self.point, "interval": self.interval.to_json() if self.interval else None,
                "source": self.source, "missing": self.missing or None}


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
    needed = HOLD_FRACTION * claim.factor
    basis = "" if measured.interval is not None else ", one repeat: point figure, no interval"
    if low >= needed:
        far = f"; over {FAR_ABOVE:g}x the claim: the setup decides the size" if low > FAR_ABOVE * claim.factor else ""
        return f"{HOLDS} (lower end {low:.2f}x >= {needed:.2f}x{basis}{far})"
    if low > 1:
        why = f"{claim.ours} better, but lower end {low:.2f}x < {needed:.2f}x"
    elif high < 1:
        why = f"reverse: {claim.baseline} better"
    else:
        why = "no clear difference" if measured.interval is not None else "no improvement"
    return f"{DOES_NOT_HOLD} ({why}{basis})"


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
