"""Runs sized by time, not by count: how long capacity and reproduce run arrivals at each probed rate.

A run of N requests at a rate above capacity ends while its queue is still building, so its attainment is the
request count's, not the policy's. Each probe therefore runs arrivals for a measurement window of
`window_seconds` (at least MIN_WINDOW_S, and SLO_MULTIPLE times the TTFT SLO: a queue must be able to grow past
the SLO inside the window for the SLO to notice it), plus the warm-up before it and the cool-down after it;
the request count follows from the rate. A count over the budget (`max_requests`) is one clear error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bsbench.errors import BsbenchError
from bsbench.record.window import DEFAULT_COOLDOWN, REQUESTS, SECONDS, SHARE, Amount, WindowSpec

if TYPE_CHECKING:
    from bsbench.workloads.workload import Workload

MIN_WINDOW_S = 60.0
SLO_MULTIPLE = 10.0
DEFAULT_MAX_REQUESTS = 20_000


def window_seconds(ttft_slo_ms: float | None, given_s: float | None = None) -> float:
    """The window of a probe: `given_s` (--duration) when set, else max(MIN_WINDOW_S, SLO_MULTIPLE x TTFT SLO)."""
    if given_s is not None:
        return float(given_s)
    return max(MIN_WINDOW_S, SLO_MULTIPLE * (ttft_slo_ms or 0.0) / 1000.0)


@dataclass(slots=True, frozen=True)
class RunLength:
    """A probe's arrivals: a window of `window_s` seconds after `warmup`, cool-down DEFAULT_COOLDOWN of the
    arrivals after it, at most `max_requests` requests."""

    window_s: float
    warmup: Amount = WindowSpec().warmup
    max_requests: int = DEFAULT_MAX_REQUESTS

    def spec(self) -> WindowSpec:
        """The runs' measurement window: the warm-up, then `window_s` seconds."""
        return WindowSpec(self.warmup, Amount(self.window_s, SECONDS))

    def doubled(self) -> RunLength:
        """The same with twice the window: the confirmation of a found capacity."""
        return RunLength(2 * self.window_s, self.warmup, self.max_requests)

    def requests_at(self, rate: float) -> int:
        """Requests that fill warm-up, window and cool-down at `rate`; BsbenchError over the budget."""
        if self.warmup.unit == SHARE:
            span = self.window_s / (1 - self.warmup.value - DEFAULT_COOLDOWN)
            count = rate * span
        elif self.warmup.unit == REQUESTS:
            count = (rate * self.window_s) / (1 - DEFAULT_COOLDOWN) + self.warmup.value
        else:
            count = rate * (self.warmup.value + self.window_s) / (1 - DEFAULT_COOLDOWN)
        needed = max(2, math.ceil(count) + 1)
        if needed > self.max_requests:
            raise BsbenchError(f"a {self.window_s:g} s window at {rate:g} req/s needs {needed:,} requests, over the "
                               f"budget of {self.max_requests:,} (--max-requests): raise it, shorten --duration or "
                               f"lower --max-rate")
        return needed


def probe_length(window: WindowSpec | None, workload: Workload, max_requests: int = DEFAULT_MAX_REQUESTS
                 ) -> RunLength:
    """The RunLength of the probes of a search on `workload`: the user's window (--warmup, --duration in
    seconds) where given, else the default window of `window_seconds` for the workload's TTFT SLO."""
    given = None if window is None else window.duration
    if given is not None and given.unit != SECONDS:
        raise BsbenchError(f"--duration {given.text()}: capacity and reproduce size runs by time; give seconds "
                           f"(e.g. {MIN_WINDOW_S:g}s)")
    ttfts = [r.slo.ttft_ms for r in workload.requests if r.slo.ttft_ms is not None]
    warmup = WindowSpec().warmup if window is None else window.warmup
    return RunLength(window_seconds(max(ttfts) if ttfts else None, None if given is None else given.value), warmup,
                     max_requests)
