"""The engine loop: admit arrivals, ask the policy for a plan, run it, book tokens, repeat.

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

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import Clock, WallClock
from bsbench.engine.events import OOM, EventLog
from bsbench.engine.phases import Phase
from bsbench.engine.plan import ActivationOOM, DecodeRunOutput, DecodeRunTerms, StepOutput, StepPlan
from bsbench.engine.policy import Policy
from bsbench.engine.request_state import RequestState, Status
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


ProgressFn = Callable[[int, int, int], None]  # (ended, submitted, tokens generated so far)


def request_states(requests: list[RequestSpec]) -> tuple[list[RequestState], dict[str, RequestState]]:
    """A fresh state per request, in arrival order (ties by id), and the same by id; ids must be unique."""
    states = [RequestState(spec) for spec in sorted(requests, key=lambda r: (r.arrival_s, r.id))]
    by_id = {s.id: s for s in states}
    if len(by_id) != len(states):
        raise ValueError("request ids must be unique")
    return states, by_id


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
        states, by_id = request_states(requests)
        steps: list[StepRow] = []
        ended = 0
        tokens = 0
        next_arrival = 0
        complete = True
        self.clock.start()
        now = 0.0
        try:
            while True:
                now = self.clock.now()
                next_arrival = self._admit(states, next_arrival, now)
                plan = self.scheduler.schedule(now)
                ended += len(self.scheduler.take_ended())
                if plan is None:
                    if next_arrival >= len(states) and not self.scheduler.has_unfinished():
                        break
                    wake = [t for t in (self.scheduler.next_wakeup(now),) if t is not None]
                    if next_arrival < len(states):
                        wake.append(states[next_arrival].spec.arrival_s)
                    if not wake:
                        # The policy holds requests it will never schedule: a policy bug, not a hang.
                        stalled = "the policy returned no plan with nothing left to wait for"
                        self.scheduler.drain(now, EndReason(EndKind.STALLED, stalled))
                        ended += len(self.scheduler.take_ended())
                        continue
                    self.clock.sleep_until(min(wake))
                    continue
                run = self._decode_run(plan, by_id, states, next_arrival)
                if run is not None:
                    produced, next_arrival = self._book_decode_run(plan, run, by_id, states, next_arrival, steps)
                else:
                    step, produced = self._execute(plan, by_id)
                    if step is not None:
                        steps.append(step)
                tokens += produced
                ended += len(self.scheduler.take_ended())
                if self.on_progress is not None:
                    self.on_progress(ended, len(states), tokens)
        except KeyboardInterrupt:
            complete = False
            now = self.clock.now()
            stopped = EndReason(EndKind.INTERRUPTED, "the run was stopped")
            self.scheduler.drain(now, stopped)
            for state in states[next_arrival:]:
                state.finish(Status.FAILED, now, stopped)
            self.scheduler.take_ended()
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
        the OOM is logged). The multi-instance engine (bsbench/cluster) calls it at a step's start."""
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

    def _decode_run(self, plan: StepPlan, by_id: dict[str, RequestState], states: list[RequestState],
                    next_arrival: int) -> tuple[DecodeRunTerms, DecodeRunOutput] | None:
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
        if terms.arrivals_matter and next_arrival < len(states):  # the step it arrives in ends the run
            arrival = states[next_arrival].spec.arrival_s
            until = arrival if until is None else min(until, arrival)
        run = self._execute_decode_run(terms.plan, length, until)
        return None if run is None else (terms, run)

    def _book_decode_run(self, plan: StepPlan, started: tuple[DecodeRunTerms, DecodeRunOutput],
                         by_id: dict[str, RequestState], states: list[RequestState], next_arrival: int,
                         steps: list[StepRow]) -> tuple[int, int]:
        """Book a decode run as its single steps would have been: tokens, one step row per step, and the
        arrivals those steps would have admitted between them, each at the end of the step before it.
        Returns the tokens produced and the index of the next arrival."""
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
        while next_arrival < len(states):
            at = bisect_left(ends, states[next_arrival].spec.arrival_s, at, last)
            if at == last:
                break
            next_arrival = self._admit(states, next_arrival, ends[at])
        return produced, next_arrival

    def _admit(self, states: list[RequestState], next_arrival: int, now: float) -> int:
        """Hand the policy every request (in arrival order, from index `next_arrival`) that has arrived by
        `now`; returns the index of the next one to arrive."""
        while next_arrival < len(states) and states[next_arrival].spec.arrival_s <= now:
            self.scheduler.add_request(states[next_arrival], now)
            next_arrival += 1
        return next_arrival
