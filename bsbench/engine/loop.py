"""The engine loop: admit arrivals, ask each instance's policy for a plan, run it, book tokens, repeat.

One loop drives 1..N instances (engine/instance.py) on one timeline, the loop's clock. `Engine` is the
single-instance case (one policy and one runner on the loop's clock); `Loop` takes several instances, each on
a clock of its own, and a `Coordinator` (engine/coordinator.py) for what lies between them (the KV transfers of
a disaggregated run, bsbench/backends/cluster). Requests come from an `Arrivals` (engine/arrivals.py): a
replayed workload (`run`), or requests submitted while the loop runs on the wall clock (`drive` with
engine/online.py).

At each instant `now` (a reading of the loop's clock), in this order: steps that ended by `now` are booked
(instance order), the coordinator advances, arrivals are admitted, every idle instance plans and starts its next
step (instance order), then the coordinator dispatches. A step on the loop's own clock runs synchronously: it is
booked as it returns, and the loop goes on to the next instant at once. A step on an instance's own clock is
priced from `now` and booked when the clock reaches its end. With nothing to run, the loop idles until the
earliest pending event: a step's end, the coordinator's next event, the next arrival, or an idle policy's
wake-up.

Decode runs (engine/decode_runs.py) are taken in one place, `_start_step`, for a single instance on the loop's
clock whose policy and runner both offer them.

Invariant on return: every submitted request has a final status (completed, failed or rejected, the latter two
with a reason). A stall (work is held but nothing can run and nothing is pending: a policy bug, not a hang) ends
the unfinished as failed with reason `stalled`; an interrupt (Ctrl-C, or `StopRun` raised by the arrivals) ends
them and the requests not yet admitted as failed with `interrupted` (or the StopRun's reason) and marks the run
incomplete; nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bsbench.engine.arrivals import Arrivals, ReplayArrivals, RequestSink
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import Clock, WallClock
from bsbench.engine.coordinator import Coordinator
from bsbench.engine.decode_runs import DecodeRunSeam, decode_runs_for
from bsbench.engine.events import EventLog
from bsbench.engine.instance import Instance, PendingStep, Runner
from bsbench.engine.policy import Policy
from bsbench.engine.request_state import RequestState
from bsbench.record.reasons import EndKind, EndReason
from bsbench.record.rows import StepRow
from bsbench.workloads.request import RequestSpec

__all__ = ["Engine", "EngineResult", "Loop", "ProgressFn", "Runner", "StopRun"]


@dataclass(slots=True)
class EngineResult:
    states: list[RequestState]
    steps: list[StepRow]
    events: EventLog
    duration_s: float
    complete: bool
    scheduler_decision_s: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


class StopRun(KeyboardInterrupt):
    """Raised by an `Arrivals` to stop the loop as an interrupt does, ending the unfinished with `reason`."""

    def __init__(self, reason: EndReason) -> None:
        super().__init__(str(reason))
        self.reason = reason


ProgressFn = Callable[[int, int, int], None]  # (ended, submitted, tokens generated so far)
EndedFn = Callable[[list[RequestState]], None]  # requests that reached a final status, as they end

STALLED = "no instance can run and nothing is pending"


class Loop:
    """Drives `instances` on the timeline of `clock`; `coordinator` joins them (required for more than one).
    An instance whose clock is `clock` runs its steps synchronously; any other has a clock of its own."""

    def __init__(self, instances: Sequence[Instance], clock: Clock, *, coordinator: Coordinator | None = None,
                 on_progress: ProgressFn | None = None, on_ended: EndedFn | None = None) -> None:
        if not instances:
            raise ValueError("the loop needs at least one instance")
        if coordinator is None and len(instances) > 1:
            raise ValueError("several instances need a coordinator to route their arrivals")
        self.instances = list(instances)
        self.clock = clock
        self.coordinator = coordinator
        self.on_progress = on_progress
        self.on_ended = on_ended

    def run(self, requests: list[RequestSpec]) -> EngineResult:
        """Replay `requests` (each admitted when the clock passes its arrival time) until all have ended."""
        return self.drive(ReplayArrivals(requests))

    def drive(self, arrivals: Arrivals, *, start_clock: bool = True) -> EngineResult:
        """The loop: runs until no request may arrive and none is unfinished, or until interrupted (Ctrl-C, or
        `StopRun` raised by `arrivals`: the unfinished and the not yet admitted then end failed with its reason).
        `start_clock=False`: the caller started the clock (arrivals were stamped on it already)."""
        steps: list[StepRow] = []
        ended = tokens = 0
        complete = True
        by_id = arrivals.by_id
        instances, clock, coordinator = self.instances, self.clock, self.coordinator
        sink: RequestSink = coordinator if coordinator is not None else instances[0].policy
        runs = self._decode_runs()
        if start_clock:
            clock.start()
        now = 0.0
        try:
            while True:
                now = clock.now()
                for instance in instances:  # steps on their own clocks that ended by now
                    if instance.pending is not None and instance.pending.end_s <= now:
                        tokens += self._book_pending(instance, by_id, steps)
                if coordinator is not None:
                    coordinator.advance(now)
                arrivals.admit(sink, now)
                moved = False  # a step ran on the loop's clock: the next instant is now, nothing to wait for
                for instance in instances:
                    if instance.pending is None:
                        ran, produced = self._start_step(instance, now, by_id, arrivals, sink, runs, steps)
                        moved |= ran
                        tokens += produced
                if coordinator is not None:
                    coordinator.dispatch(now)
                ended += self._take_ended()
                if self.on_progress is not None:
                    self.on_progress(ended, arrivals.submitted(), tokens)
                if moved:
                    continue
                busy = self._busy()
                if not busy and not arrivals.more():
                    break
                wake = self._next_event(now, arrivals)
                if wake is None and busy:
                    self._drain(now, EndReason(EndKind.STALLED, STALLED))
                    ended += self._take_ended()
                    continue
                arrivals.wait(clock, wake)
        except KeyboardInterrupt as stop:
            complete = False
            now = clock.now()
            stopped = stop.reason if isinstance(stop, StopRun) else EndReason(EndKind.INTERRUPTED,
                                                                              "the run was stopped")
            self._drain(now, stopped)
            arrivals.fail_pending(now, stopped)
            self._take_ended()
        states = arrivals.tracked()
        duration = max([now] + [s.finish_s for s in states if s.finish_s is not None])
        lost = [s.id for s in states if not s.status.is_final]
        if lost:
            raise AssertionError(f"engine invariant broken: requests without a final status: {lost[:5]}")
        if len(instances) > 1:
            order = {instance.name: k for k, instance in enumerate(instances)}
            steps.sort(key=lambda row: (row.start_s, order[row.instance]))
        return EngineResult(states, steps, self._events(), duration, complete,
                            sum(instance.policy.decision_s for instance in instances))

    # --- one instance's step ---------------------------------------------------------------------
    def _decode_runs(self) -> DecodeRunSeam | None:
        """The decode-run seam of a single instance on the loop's clock (engine/decode_runs.py), else None."""
        if len(self.instances) != 1 or self.instances[0].clock is not self.clock:
            return None
        instance = self.instances[0]
        return decode_runs_for(instance.policy, instance.runner, instance.blocks)

    def _start_step(self, instance: Instance, now: float, by_id: dict[str, RequestState], arrivals: Arrivals,
                    sink: RequestSink, runs: DecodeRunSeam | None, steps: list[StepRow]) -> tuple[bool, int]:
        """Plan and start `instance`'s next step at `now`. On the loop's clock it runs and is booked at once:
        (True, tokens produced); True also when it failed (activation OOM: the next instant plans again). On its
        own clock it becomes `pending` (a failed one is planned again at once): (False, 0)."""
        synchronous = instance.clock is self.clock
        while True:
            plan = instance.policy.schedule(now)
            if plan is None:
                return False, 0
            if runs is not None:
                started = runs.start(plan, by_id, arrivals)
                if started is not None:
                    return True, runs.book(plan, started, by_id, arrivals, sink, steps)
            clock = instance.clock
            if not synchronous:
                clock.sleep_until(now)  # its own clock joins the timeline (it ended its last step by now)
            start = clock.now()
            used = instance.blocks.num_used
            output = instance.run_plan(plan)
            if output is None:
                if synchronous:
                    return True, 0
                continue
            end = clock.now()
            instance.steps += 1
            instance.busy_s += end - start
            if not synchronous:
                instance.pending = PendingStep(plan, output, start, end, used)
                return False, 0
            row, produced = instance.book_step(plan, output, start, end, used, by_id)
            steps.append(row)
            return True, produced

    def _book_pending(self, instance: Instance, by_id: dict[str, RequestState], steps: list[StepRow]) -> int:
        step = instance.pending
        assert step is not None
        instance.pending = None
        row, produced = instance.book_step(step.plan, step.output, step.start_s, step.end_s, step.used, by_id)
        steps.append(row)
        return produced

    # --- time and ends ---------------------------------------------------------------------------
    def _next_event(self, now: float, arrivals: Arrivals) -> float | None:
        times = [i.pending.end_s for i in self.instances if i.pending is not None]
        for t in (self.coordinator.next_event_s() if self.coordinator is not None else None,
                  arrivals.next_arrival_s()):
            if t is not None:
                times.append(t)
        for instance in self.instances:
            if instance.pending is None:
                wake = instance.policy.next_wakeup(now)
                if wake is not None:
                    times.append(wake)
        return min(times) if times else None

    def _busy(self) -> bool:
        """Whether any request is held: by a policy, in a pending step, or by the coordinator."""
        return any(i.pending is not None or i.policy.has_unfinished() for i in self.instances) or (
            self.coordinator is not None and self.coordinator.busy())

    def _drain(self, now: float, reason: EndReason) -> None:
        """End everything unfinished as failed with `reason`: in the policies (pending steps included), then
        what the coordinator holds."""
        for instance in self.instances:
            instance.policy.drain(now, reason)
            instance.pending = None
        if self.coordinator is not None:
            self.coordinator.drain(now, reason)

    def _take_ended(self) -> int:
        """How many requests ended since the last call; `on_ended` gets those whose status is final."""
        count = 0
        for instance in self.instances:
            ended = instance.policy.take_ended()
            count += len(ended)
            if self.on_ended is not None and ended:
                self.on_ended([state for state in ended if state.status.is_final])
        return count

    def _events(self) -> EventLog:
        """The one instance's event log, or every instance's merged by time, each event naming its instance."""
        if len(self.instances) == 1:
            return self.instances[0].events
        merged = EventLog()
        rows = [(event, instance.name) for instance in self.instances for event in instance.events.events]
        for event, name in sorted(rows, key=lambda item: item[0].t_s):  # stable: instance order at equal times
            merged.emit(event.kind, event.t_s, event.request_ids, **event.detail, instance=name)
        return merged


class Engine(Loop):
    """The loop over one instance: `scheduler` and `runner` on `clock` (a fresh wall clock by default); `events`
    and `blocks` are the event log and block manager the policy was built with."""

    def __init__(
        self,
        scheduler: Policy,
        runner: Runner,
        *,
        events: EventLog,
        blocks: BlockManager,
        clock: Clock | None = None,
        on_progress: ProgressFn | None = None,
        on_ended: EndedFn | None = None,
    ) -> None:
        clock = clock or WallClock()
        super().__init__([Instance(scheduler, runner, blocks, events, clock)], clock, on_progress=on_progress,
                         on_ended=on_ended)

    @property
    def instance(self) -> Instance:
        return self.instances[0]

    @property
    def scheduler(self) -> Policy:
        return self.instance.policy

    @property
    def runner(self) -> Runner:
        return self.instance.runner

    @runner.setter
    def runner(self, runner: Runner) -> None:
        self.instance.runner = runner

    @property
    def events(self) -> EventLog:
        return self.instance.events

    @property
    def blocks(self) -> BlockManager:
        return self.instance.blocks
