"""The engine loop: admit arrivals, ask the policy for a plan, run it, book tokens, repeat.

Requests come from an `Arrivals` (engine/arrivals.py): a replayed workload (`run`), or
requests submitted while the loop runs on the wall clock (`drive` with engine/online.py).

Invariant on return: every submitted request has a final status (completed,
failed or rejected, the latter two with a reason).

Decode runs: when the policy promises that the next steps repeat its plan one
position further on (`decode_run_length`, on the terms of `decode_run_terms`) and
the runner can execute such a run at once (`execute_decode_run`, the simulated
runner), the engine runs them in one call, ended early by the step in which the
next request arrives when the policy says arrivals matter, and books them as
those single steps would have been booked, arrivals and KV blocks in use
included, so the record is the same to the bit; only the loop's overhead goes. An interrupt (Ctrl-C) ends
the unfinished ones as failed with an `interrupted` end reason and marks the
run incomplete; nothing is lost.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bsbench.engine.arrivals import Arrivals, ReplayArrivals
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import Clock, WallClock
from bsbench.engine.events import OOM, EventLog
from bsbench.engine.phases import Phase
from bsbench.engine.plan import ActivationOOM, DecodeRunOutput, DecodeRunTerms, StepOutput, StepPlan
from bsbench.engine.policy import Policy
from bsbench.engine.request_state import RequestState
from bsbench.record.reasons import EndKind, EndReason
from bsbench.record.rows import StepRow
from bsbench.workloads.request import RequestSpec

PREEMPTED_PHASE = Phase.PREEMPTED


class Runner(Protocol):
    def execute(self, plan: StepPlan) -> StepOutput: ...


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


class Engine:
    """Drives one policy and one runner over a request list; `events` and `blocks` are the
    event log and block manager the policy was built with (the engine reads KV usage from
    `blocks` and records activation OOMs in `events`)."""

    def __init__(
        self,
        scheduler: Policy,
        runner: Runner,
        *,
        events: EventLog,
        blocks: BlockManager,
        clock: Clock | None = None,
        on_progress: ProgressFn | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.runner = runner
        self.clock = clock or WallClock()
        self.on_progress = on_progress
        self.events = events
        self.blocks = blocks
        # a runner that can execute several decode steps at once (the simulated one) has this method
        self._execute_decode_run: Callable[[StepPlan, int, float | None], DecodeRunOutput | None] | None = getattr(
            runner, "execute_decode_run", None)

    def run(self, requests: list[RequestSpec]) -> EngineResult:
        """Replay `requests` (each admitted when the clock passes its arrival time) until all have ended."""
        return self.drive(ReplayArrivals(requests))

    def drive(self, arrivals: Arrivals, *, start_clock: bool = True) -> EngineResult:
        """The loop: runs until no request may arrive and none is unfinished, or until interrupted (Ctrl-C, or
        `StopRun` raised by `arrivals`: the unfinished and the not yet admitted then end failed with its reason).
        `start_clock=False`: the caller started the clock (arrivals were stamped on it already)."""
        steps: list[StepRow] = []
        ended = 0
        tokens = 0
        complete = True
        by_id = arrivals.by_id
        if start_clock:
            self.clock.start()
        now = 0.0
        try:
            while True:
                now = self.clock.now()
                arrivals.admit(self.scheduler, now)
                plan = self.scheduler.schedule(now)
                ended += len(self.scheduler.take_ended())
                if plan is None:
                    unfinished = self.scheduler.has_unfinished()
                    if not unfinished and not arrivals.more():
                        break
                    wake = [t for t in (self.scheduler.next_wakeup(now), arrivals.next_arrival_s()) if t is not None]
                    if not wake and unfinished:
                        # The policy holds requests it will never schedule: a policy bug, not a hang.
                        stalled = "the policy returned no plan with nothing left to wait for"
                        self.scheduler.drain(now, EndReason(EndKind.STALLED, stalled))
                        ended += len(self.scheduler.take_ended())
                        continue
                    arrivals.wait(self.clock, min(wake) if wake else None)
                    continue
                run = self._decode_run(plan, by_id, arrivals)
                if run is not None:
                    produced = self._book_decode_run(plan, run, by_id, arrivals, steps)
                else:
                    step, produced = self._execute(plan, by_id)
                    if step is not None:
                        steps.append(step)
                tokens += produced
                ended += len(self.scheduler.take_ended())
                if self.on_progress is not None:
                    self.on_progress(ended, arrivals.submitted(), tokens)
        except KeyboardInterrupt as stop:
            complete = False
            now = self.clock.now()
            stopped = EndReason(EndKind.INTERRUPTED, "the run was stopped")
            if isinstance(stop, StopRun):
                stopped = stop.reason
            self.scheduler.drain(now, stopped)
            arrivals.fail_pending(now, stopped)
            self.scheduler.take_ended()
        states = arrivals.tracked()
        duration = max([now] + [s.finish_s for s in states if s.finish_s is not None])
        lost = [s.id for s in states if not s.status.is_final]
        if lost:
            raise AssertionError(f"engine invariant broken: requests without a final status: {lost[:5]}")
        return EngineResult(states, steps, self.events, duration, complete, self.scheduler.decision_s)

    def _execute(self, plan: StepPlan, by_id: dict[str, RequestState]) -> tuple[StepRow | None, int]:
        start = self.clock.now()
        used = self.blocks.num_used
        output = self.run_plan(plan)
        if output is None:
            return None, 0
        return self.book_step(plan, output, start, self.clock.now(), used, by_id)

    def run_plan(self, plan: StepPlan) -> StepOutput | None:
        """Execute `plan` on the runner; None when it failed for activation memory (its requests then failed and
        the OOM is logged). The multi-instance engine (bsbench/backends/cluster) calls it at a step's start."""
        try:
            return self.runner.execute(plan)
        except ActivationOOM as exc:
            now = self.clock.now()
            failed = self.scheduler.fail_plan(plan, now,
                                              EndReason(EndKind.OOM, "device out of memory running the step"))
            self.events.emit(OOM, now, failed, cause="activations", error=str(exc).splitlines()[0][:200])
            return None

    def book_step(self, plan: StepPlan, output: StepOutput, start: float, end: float, used: int,
                  by_id: dict[str, RequestState]) -> tuple[StepRow, int]:
        """Book an executed step that ran from `start` to `end` with `used` KV blocks in use before it: tokens,
        the policy's update, recompute catch-up; returns its step row and the tokens produced. The multi-instance
        engine calls it at the step's end."""
        produced = 0
        for chunk in plan.chunks:
            if chunk.sample:
                by_id[chunk.req_id].append_token(output.next_tokens[chunk.req_id], end)
                produced += 1
        self.scheduler.update(plan, end)
        for chunk in plan.chunks:  # a recompute that caught up ends its preempted time (engine/phases.py)
            state = by_id[chunk.req_id]
            if state.phases.phase is PREEMPTED_PHASE:  # checked here: this runs once per request per step
                state.note_computed(end)
        record = StepRow(
            start_s=start,
            duration_s=end - start,
            forward_s=output.forward_s,
            layout=plan.layout,
            num_seqs=len(plan.chunks),
            num_tokens=plan.num_tokens,
            pad_tokens=plan.pad_tokens,
            kv_blocks_used=used,
            kv_usage=used / self.blocks.num_blocks,
            measured_forward_s=output.measured_forward_s,
            measured_step_s=output.measured_step_s,
        )
        return record, produced

    def _decode_run(self, plan: StepPlan, by_id: dict[str, RequestState], arrivals: Arrivals
                    ) -> tuple[DecodeRunTerms, DecodeRunOutput] | None:
        """Several decode steps of `plan` at once, when the policy promises them and the runner can run
        them: (the policy's terms, the run); None: execute one step."""
        if self._execute_decode_run is None:
            return None
        length = self.scheduler.decode_run_length(plan)
        if length < 2:
            return None
        if any(by_id[c.req_id].phases.phase is PREEMPTED_PHASE for c in plan.chunks):
            return None  # a recompute may catch up inside the run: single steps end its preempted time exactly
        terms = self.scheduler.decode_run_terms(plan, length)
        until = terms.until
        arrival = arrivals.next_arrival_s() if terms.arrivals_matter else None
        if arrival is not None:  # the step it arrives in ends the run
            until = arrival if until is None else min(until, arrival)
        run = self._execute_decode_run(terms.plan, length, until)
        return None if run is None else (terms, run)

    def _book_decode_run(self, plan: StepPlan, started: tuple[DecodeRunTerms, DecodeRunOutput],
                         by_id: dict[str, RequestState], arrivals: Arrivals, steps: list[StepRow]) -> int:
        """Book a decode run as its single steps would have been: tokens, one step row per step, and the
        arrivals those steps would have admitted between them, each at the end of the step before it.
        Returns the tokens produced."""
        terms, run = started
        start, ends = run.start_s, run.end_s
        produced = 0
        for req_id, tokens in run.next_tokens.items():
            by_id[req_id].append_tokens(tokens, ends)
            produced += len(tokens)
        self.scheduler.update_decode_run(plan, ends)
        total = self.blocks.num_blocks
        layout, num_seqs, num_tokens, pad_tokens = plan.layout, len(plan.chunks), plan.num_tokens, plan.pad_tokens
        append = steps.append
        for end, forward, used in zip(ends, run.forward_s, terms.blocks_used):  # once per step: positional
            # start_s, duration_s, forward_s, layout, num_seqs, num_tokens, pad_tokens, kv_blocks_used, kv_usage
            append(StepRow(start, end - start, forward, layout, num_seqs, num_tokens, pad_tokens, used, used / total))
            start = end
        # each arrival is admitted at the first step end at or after it, as single steps would (the loop admits
        # what arrived by the last step's end): jump to that end instead of trying every end
        last = len(ends) - 1
        at = 0
        while (arrival := arrivals.next_arrival_s()) is not None:
            at = bisect_left(ends, arrival, at, last)
            if at == last:
                break
            arrivals.admit(self.scheduler, ends[at])
        return produced
