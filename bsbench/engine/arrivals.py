"""Where the engine loop's requests come from: a replayed workload, or requests submitted while it runs.

The loop (engine/loop.py) calls, each iteration, `admit(sink, now)`, which hands
the sink (a policy, or the coordinator of several instances) every request that
has arrived by `now`; when no plan can run it asks
`more()` (may requests still arrive?) and `next_arrival_s()` (the scheduled time of
the next known one), and idles in `wait(clock, until)`. On an interrupt it ends the
requests not yet admitted with `fail_pending`. `ReplayArrivals` is a workload's
sorted request list; `engine/online.py` feeds requests submitted from other threads.
"""

from __future__ import annotations

from typing import Protocol

from bsbench.engine.clock import Clock
from bsbench.engine.request_state import RequestState, Status
from bsbench.record.reasons import EndReason
from bsbench.workloads.request import RequestSpec


def request_states(requests: list[RequestSpec]) -> tuple[list[RequestState], dict[str, RequestState]]:
    """A fresh state per request, in arrival order (ties by id), and the same by id; ids must be unique."""
    states = [RequestState(spec) for spec in sorted(requests, key=lambda r: (r.arrival_s, r.id))]
    by_id = {s.id: s for s in states}
    if len(by_id) != len(states):
        raise ValueError("request ids must be unique")
    return states, by_id


class RequestSink(Protocol):
    """What arrivals are handed to: the policy of a single instance, or the loop's `Coordinator`
    (engine/coordinator.py) that routes them to one of several."""

    def add_request(self, state: RequestState, now: float) -> None: ...

    def cancel(self, state: RequestState, now: float, reason: EndReason | None) -> None: ...


class Arrivals(Protocol):
    """The engine loop's source of requests; its methods are called from the engine's thread only.
    `by_id` maps the id of every admitted, unfinished request to its state (the loop books tokens through it)."""

    by_id: dict[str, RequestState]

    def admit(self, sink: RequestSink, now: float) -> None:
        """Hand `sink` every request that has arrived by `now`, in arrival order."""

    def more(self) -> bool:
        """Whether requests may still arrive (the loop ends when none may and no instance holds one)."""

    def next_arrival_s(self) -> float | None:
        """The arrival time of the next request not yet admitted; None when none is known now."""

    def wait(self, clock: Clock, until: float | None) -> None:
        """Idle until `until` (None: until something arrives), or earlier when a request arrives."""

    def fail_pending(self, now: float, reason: EndReason) -> None:
        """End every request not yet admitted as failed with `reason` (the run was stopped)."""

    def submitted(self) -> int:
        """Requests submitted so far (admitted or not)."""

    def tracked(self) -> list[RequestState]:
        """The requests the run result lists (each must have a final status when the loop returns)."""


class ReplayArrivals:
    """A workload: every request known up front, admitted when the clock passes its arrival time."""

    def __init__(self, requests: list[RequestSpec]) -> None:
        self.states, self.by_id = request_states(requests)
        self.next = 0  # index of the next request to arrive

    def admit(self, sink: RequestSink, now: float) -> None:
        states, index = self.states, self.next
        while index < len(states) and states[index].spec.arrival_s <= now:
            sink.add_request(states[index], now)
            index += 1
        self.next = index

    def more(self) -> bool:
        return self.next < len(self.states)

    def next_arrival_s(self) -> float | None:
        return self.states[self.next].spec.arrival_s if self.next < len(self.states) else None

    def wait(self, clock: Clock, until: float | None) -> None:
        if until is None:
            raise ValueError("a replay never waits without a wake-up time")
        clock.sleep_until(until)

    def fail_pending(self, now: float, reason: EndReason) -> None:
        for state in self.states[self.next:]:
            state.finish(Status.FAILED, now, reason)
        self.next = len(self.states)

    def submitted(self) -> int:
        return len(self.states)

    def tracked(self) -> list[RequestState]:
        return self.states
