"""One instance the engine loop drives: a policy over its block manager and event log, and the runner that
executes its plans on the instance's clock.

The clock is the loop's own (a single engine: a step runs synchronously and is booked as soon as it returns), or
a view of its own (a multi-instance run: the loop sets it to the timeline's time before each step, so the runner
prices the step and reports its end; the step stays `pending` until the timeline reaches that end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import Clock
from bsbench.engine.events import OOM, EventLog
from bsbench.engine.phases import Phase
from bsbench.engine.plan import ActivationOOM, StepOutput, StepPlan
from bsbench.engine.policy import Policy
from bsbench.engine.request_state import RequestState
from bsbench.record.reasons import EndKind, EndReason
from bsbench.record.rows import StepRow

PREEMPTED_PHASE = Phase.PREEMPTED


class Runner(Protocol):
    def execute(self, plan: StepPlan) -> StepOutput: ...


@dataclass(slots=True)
class PendingStep:
    """A step executed on an instance's own clock, booked when the timeline reaches `end_s`."""

    plan: StepPlan
    output: StepOutput
    start_s: float
    end_s: float
    used: int  # KV blocks in use before it


@dataclass(slots=True, eq=False)
class Instance:
    """`events` and `blocks` are the event log and block manager `policy` was built with (the loop reads KV
    usage from `blocks` and records activation OOMs in `events`). `name` labels its step rows and events
    when the loop drives several; `steps` and `busy_s` count the steps it started on its own clock and their
    seconds."""

    policy: Policy
    runner: Runner
    blocks: BlockManager
    events: EventLog
    clock: Clock
    name: str | None = None
    pending: PendingStep | None = None
    steps: int = 0
    busy_s: float = 0.0

    def run_plan(self, plan: StepPlan) -> StepOutput | None:
        """Execute `plan` on the runner; None when it failed for activation memory (its requests then failed
        and the OOM is logged)."""
        try:
            return self.runner.execute(plan)
        except ActivationOOM as exc:
            now = self.clock.now()
            failed = self.policy.fail_plan(plan, now, EndReason(EndKind.OOM, "device out of memory running the step"))
            self.events.emit(OOM, now, failed, cause="activations", error=str(exc).splitlines()[0][:200])
            return None

    def book_step(self, plan: StepPlan, output: StepOutput, start: float, end: float, used: int,
                  by_id: dict[str, RequestState]) -> tuple[StepRow, int]:
        """Book an executed step that ran from `start` to `end` with `used` KV blocks in use before it: tokens,
        the policy's update, recompute catch-up; returns its step row and the tokens produced."""
        produced = 0
        for chunk in plan.chunks:
            if chunk.sample:
                by_id[chunk.req_id].append_token(output.next_tokens[chunk.req_id], end)
                produced += 1
        self.policy.update(plan, end)
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
            instance=self.name,
        )
        return record, produced
