"""What joins several instances on the loop's one timeline (bsbench/backends/cluster: KV transfers from prefill to
decode instances). The loop (engine/loop.py) drives the instances; a coordinator owns only what lies between them.

At each instant the loop calls, in this order: `advance(now)` once the steps that ended by `now` are booked (the
coordinator takes what they handed over and ends what is due), `add_request` for each arrival (it routes it to an
instance's policy), then, once every idle instance has planned its next step, `dispatch(now)` (it starts what can
start). `next_event_s()` is its own next time to be called (None: none); `busy()` says it holds a request that
has not ended; `drain(now, reason)` ends every such request as failed with `reason` (an interrupt, a stall),
after the loop has drained the instances' policies.
"""

from __future__ import annotations

from typing import Protocol

from bsbench.engine.request_state import RequestState
from bsbench.record.reasons import EndReason


class Coordinator(Protocol):
    def add_request(self, state: RequestState, now: float) -> None: ...

    def cancel(self, state: RequestState, now: float, reason: EndReason | None) -> None: ...

    def advance(self, now: float) -> None: ...

    def dispatch(self, now: float) -> None: ...

    def next_event_s(self) -> float | None: ...

    def busy(self) -> bool: ...

    def drain(self, now: float, reason: EndReason) -> None: ...
