"""The measurement window of a run: which requests are scored as sustained load, and why.

A run starts with an empty system and ends with arrivals stopping. Requests that arrive early see a queue that
has not built up yet (warm-up); requests that arrive last run while the load falls away (cool-down). Both
flatter a policy, so the figures that describe sustained load (summary keys `steady_*`) are computed over the
requests that ARRIVE inside the window [start_s, end_s] only. Every request stays in the record; the summary's
`window` says where the window lies, how many requests were scored, left out as warm-up and as cool-down, and
the reason.

    warm-up   `Amount`: seconds from the first arrival ("30s"), a request count ("200") or a share of the
              arrivals ("10%"). Default: the first 10% of arrivals.
    duration  `Amount` or None: the window's length from its start, in seconds or requests. None: the window
              ends where the last 10% of arrivals begin (DEFAULT_COOLDOWN).

Why these defaults: the time a queue needs to forget its empty start grows like S / (1 - sqrt(rho))^2 and is
not known before the run, so a share of the run, not a fixed number of seconds, scales with the run a user
chose; capacity and reproduce size their runs by time on top of it (experiments/run_length.py). 10% at either
end keeps 80% of the requests scored, enough for a p99 of a few hundred requests.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SECONDS, REQUESTS, SHARE = "s", "requests", "share"
DEFAULT_WARMUP_SHARE = 0.1
DEFAULT_COOLDOWN = 0.1  # share of the arrivals left out at the end when no duration is set


@dataclass(slots=True, frozen=True)
class Amount:
    """A length of a run: `value` seconds, requests, or a share (0..1) of the arrivals."""

    value: float
    unit: str

    @classmethod
    def parse(cls, text: str | float) -> Amount:
        """'30s' -> 30 seconds, '200' -> 200 requests, '10%' -> a share of 0.1; ValueError says what is wrong."""
        raw = str(text).strip().lower()
        try:
            if raw.endswith("%"):
                amount = cls(float(raw[:-1]) / 100, SHARE)
            elif raw.endswith("s"):
                amount = cls(float(raw[:-1]), SECONDS)
            else:
                count = float(raw)
                if count != int(count):
                    raise ValueError
                amount = cls(count, REQUESTS)
        except ValueError:
            raise ValueError(f"expected seconds (30s), a request count (200) or a share (10%), got {text!r}") from None
        if not math.isfinite(amount.value) or amount.value < 0 or (amount.unit == SHARE and amount.value >= 1):
            raise ValueError(f"expected a finite amount >= 0 (a share below 100%), got {text!r}")
        return amount

    def text(self) -> str:
        if self.unit == SECONDS:
            return f"{self.value:g}s"
        if self.unit == SHARE:
            return f"{100 * self.value:g}%"
        return f"{int(self.value)}"


@dataclass(slots=True, frozen=True)
class WindowSpec:
    """How a run's window is chosen (see the module docstring)."""

    warmup: Amount = Amount(DEFAULT_WARMUP_SHARE, SHARE)
    duration: Amount | None = None

    def to_json(self) -> dict[str, Any]:
        return {"warmup": self.warmup.text(), "duration": None if self.duration is None else self.duration.text()}

    @classmethod
    def from_json(cls, obj: Any) -> WindowSpec:
        if not isinstance(obj, dict):
            return cls()
        duration = obj.get("duration")
        return cls(Amount.parse(obj.get("warmup", "10%")), None if duration is None else Amount.parse(duration))


@dataclass(slots=True)
class Window:
    """Where the window lies: requests arriving in [start_s, end_s] are scored."""

    start_s: float
    end_s: float
    scored: int
    warmup_requests: int
    cooldown_requests: int
    spec: WindowSpec
    reason: str

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s

    def contains(self, arrival_s: float) -> bool:
        return self.start_s <= arrival_s <= self.end_s

    def to_json(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "end_s": self.end_s, "scored": self.scored,
                "warmup_requests": self.warmup_requests, "cooldown_requests": self.cooldown_requests,
                **self.spec.to_json(), "reason": self.reason}


def resolve_window(arrivals: Sequence[float], spec: WindowSpec | None = None) -> Window | None:
    """The window of a run whose requests arrived at `arrivals` (any order); None for a run with no request."""
    spec = spec or WindowSpec()
    times = sorted(arrivals)
    n = len(times)
    if n == 0:
        return None
    if times[-1] - times[0] <= 0:
        return Window(times[0], times[-1], n, 0, 0, spec,
                      "every request arrived at once: no sustained load, every request scored")
    warm = spec.warmup
    if warm.unit == SECONDS:
        start = times[0] + warm.value
    else:
        index = int(warm.value) if warm.unit == REQUESTS else math.floor(warm.value * n)
        start = times[min(index, n - 1)]
    why = [f"warm-up: the first {warm.text()}{' of' if warm.unit != SECONDS else ''} arrivals left out"]
    if spec.duration is None:
        end = times[max(0, math.ceil((1 - DEFAULT_COOLDOWN) * n) - 1)]
        why.append(f"cool-down: the last {100 * DEFAULT_COOLDOWN:g}% of arrivals left out")
    elif spec.duration.unit == SECONDS:
        end = start + spec.duration.value
        why.append(f"window {spec.duration.text()} long; later arrivals are cool-down")
    else:
        first = bisect.bisect_left(times, start)
        end = times[min(n - 1, first + max(0, int(spec.duration.value) - 1))]
        why.append(f"window of {spec.duration.text()} arrivals; later arrivals are cool-down")
    if end > times[-1] and spec.duration is not None:
        why.append(f"arrivals stop at {times[-1]:.3g} s, before the window's end: the window is short")
        end = times[-1]
    if start > end:  # a warm-up longer than the run: nothing would be scored; score the last arrivals instead
        start = end
        why.append("the warm-up covers the whole run: only the last arrival is scored")
    first, last = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
    return Window(start, end, last - first, first, n - last, spec, "; ".join(why))
