"""The multi-instance engine: prefill and decode instances on one virtual timeline, joined by KV transfers.

Each instance is a policy, a block manager, an event log and a simulated runner with its own cost model,
driven through the single-instance `Engine`'s own step execution (`Engine.run_plan`) and booking
(`Engine.book_step`): no second copy of pricing or booking. The shared clock is `now`; before an instance
starts a step its runner's clock is set to `now`, so the runner prices the step and reports its end; the step
is booked (tokens, policy update, step row) when the shared clock reaches that end.

The clock always moves to the earliest pending event: a step's end, a transfer's end, an arrival, or a
policy's wake-up. At one instant, in this order: steps that end (instance order), transfers that end (in
the order they ended, then started), arrivals, then every idle instance plans its next step (instance
order), then queued transfers start.

- Arrivals go to the prefill instance with the fewest unfinished requests (ties: the lower index).
- Hand-off: a prefill policy hands off a request after its prefill (`Scheduler.hand_off`); hand-offs queue
  FCFS. The head starts its transfer when a decode instance has a free seat (`free_seats`, counting
  transfers already under way to it), the one of those with the most free KV blocks (ties: the lower index)
  has blocks for the prompt, and the link between the two carries no other transfer. Otherwise the whole
  queue waits (FCFS: nobody overtakes the head). On start, the decode side reserves blocks for the prompt's
  KV; the transfer takes `link.transfer_s(prompt tokens x KV bytes per token)` (left padding never travels);
  at its end the prefill side frees its blocks and the decode policy runs the request
  (`accept_transferred`). The request's notes name its decode instance (`decode_instance`).
- A decode instance that must preempt recomputes there (continuous.py, "Decode role").

Invariant on return, as in the single engine: every request has a final status; a stall (nothing can run and
nothing is pending) ends the unfinished requests as failed with reason `stalled`, a Ctrl-C as `interrupted`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bsbench.backends.cluster.links import LinkPreset
from bsbench.engine.arrivals import ReplayArrivals
from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import EventLog
from bsbench.engine.loop import Engine, EngineResult, ProgressFn
from bsbench.engine.plan import StepOutput, StepPlan
from bsbench.engine.request_state import RequestState, Status
from bsbench.record.reasons import EndKind, EndReason
from bsbench.record.rows import StepRow
from bsbench.schedulers.base import Scheduler
from bsbench.schedulers.continuous import ContinuousScheduler
from bsbench.workloads.request import RequestSpec


@dataclass(slots=True)
class PendingStep:
    plan: StepPlan
    output: StepOutput
    start_s: float
    end_s: float
    used: int  # KV blocks in use before it


@dataclass(slots=True)
class Instance:
    """One instance: `policy` (the one `engine` drives over its runner, block manager and event log); `clock`
    is its runner's. A decode instance's policy is the continuous one (its decode role)."""

    name: str
    role: str  # "prefill" | "decode"
    policy: Scheduler
    engine: Engine
    clock: VirtualClock
    gpu: str = ""  # the device preset its cost model describes
    pending: PendingStep | None = None
    steps: int = 0
    busy_s: float = 0.0


@dataclass(slots=True)
class Transfer:
    state: RequestState
    source: Instance
    target: Instance
    end_s: float


class ClusterEngine:
    def __init__(self, instances: Sequence[Instance], link: LinkPreset, kv_bytes_per_token: int,
                 on_progress: ProgressFn | None = None) -> None:
        self.instances = list(instances)
        self.prefill = [i for i in self.instances if i.role == "prefill"]
        self.decode = [i for i in self.instances if i.role == "decode"]
        if not self.prefill or not self.decode:
            raise ValueError("a cluster needs at least one prefill and one decode instance")
        self.decoders: dict[str, ContinuousScheduler] = {}  # decode instance name -> its policy, typed
        for instance in self.decode:
            if not isinstance(instance.policy, ContinuousScheduler):
                raise ValueError(f"decode instance {instance.name} must run the continuous policy")
            self.decoders[instance.name] = instance.policy
        self.link = link
        self.kv_bytes_per_token = kv_bytes_per_token
        self.on_progress = on_progress
        self.queue: deque[tuple[RequestState, Instance]] = deque()  # handed off, transfer not started
        self.in_flight: list[Transfer] = []  # in start order
        self.transfers = 0

    def run(self, requests: list[RequestSpec]) -> EngineResult:
        arrivals = ReplayArrivals(requests)
        states, by_id = arrivals.states, arrivals.by_id
        steps: list[StepRow] = []
        ended = tokens = 0
        now = 0.0
        complete = True
        try:
            while True:
                produced = self._book_steps(now, by_id, steps)
                tokens += produced
                self._end_transfers(now)
                arrivals.admit(self, now)
                for instance in self.instances:
                    self._start_step(instance, now)
                self._start_transfers(now)
                ended += sum(len(i.policy.take_ended()) for i in self.instances)
                if self.on_progress is not None:
                    self.on_progress(ended, len(states), tokens)
                wake = self._next_event(now, arrivals.next_arrival_s())
                if wake is None:
                    if not arrivals.more() and self._idle():
                        break
                    self._drain(now, EndReason(EndKind.STALLED, "no instance can run and nothing is pending"))
                    ended += sum(len(i.policy.take_ended()) for i in self.instances)
                    break
                now = max(now, wake)
        except KeyboardInterrupt:
            complete = False
            stopped = EndReason(EndKind.INTERRUPTED, "the run was stopped")
            self._drain(now, stopped)
            arrivals.fail_pending(now, stopped)
        duration = max([now] + [s.finish_s for s in states if s.finish_s is not None])
        lost = [s.id for s in states if not s.status.is_final]
        if lost:
            raise AssertionError(f"cluster invariant broken: requests without a final status: {lost[:5]}")
        order = {i.name: k for k, i in enumerate(self.instances)}
        steps.sort(key=lambda row: (row.start_s, order[row.instance or ""]))
        return EngineResult(states, steps, self._merged_events(), duration, complete,
                            sum(i.policy.decision_s for i in self.instances))

    # --- one instant -----------------------------------------------------------------------------
    def _book_steps(self, now: float, by_id: dict[str, RequestState], steps: list[StepRow]) -> int:
        produced = 0
        for instance in self.instances:
            step = instance.pending
            if step is None or step.end_s > now:
                continue
            instance.pending = None
            row, made = instance.engine.book_step(step.plan, step.output, step.start_s, step.end_s, step.used, by_id)
            row.instance = instance.name
            steps.append(row)
            produced += made
            self.queue.extend((state, instance) for state in instance.policy.take_handoffs())
        return produced

    def _end_transfers(self, now: float) -> None:
        done = [t for t in self.in_flight if t.end_s <= now]
        if not done:
            return
        self.in_flight = [t for t in self.in_flight if t.end_s > now]
        for transfer in sorted(done, key=lambda t: t.end_s):  # stable: equal ends in start order
            state = transfer.state
            transfer.source.policy.blocks.free(state.id)
            state.transfer_end_s = transfer.end_s
            self.decoders[transfer.target.name].accept_transferred(state, transfer.end_s)

    def add_request(self, state: RequestState, now: float) -> None:
        """An arrival goes to the prefill instance with the fewest unfinished requests (ties: the first)."""
        target = min(self.prefill, key=lambda i: len(i.policy.unfinished()))  # min keeps the first on ties
        target.policy.add_request(state, now)

    def _start_step(self, instance: Instance, now: float) -> None:
        while instance.pending is None:
            plan = instance.policy.schedule(now)
            if plan is None:
                return
            instance.clock.t = now
            used = instance.policy.blocks.num_used
            output = instance.engine.run_plan(plan)
            if output is None:  # activation OOM: its requests failed; plan again
                continue
            instance.pending = PendingStep(plan, output, now, instance.clock.t, used)
            instance.steps += 1
            instance.busy_s += instance.clock.t - now

    def _start_transfers(self, now: float) -> None:
        while self.queue:
            state, source = self.queue[0]
            target = self._decode_target()
            if target is None:
                return
            blocks = target.policy.blocks
            need = blocks.blocks_for_tokens(state.prompt_len)
            if need > blocks.num_free or any(t.source is source and t.target is target for t in self.in_flight):
                return
            self.queue.popleft()
            state.kv_pad_len = 0  # the prefill side's left padding stays there
            blocks.allocate(state.id, need)
            state.transfer_start_s = now
            state.notes["decode_instance"] = target.name  # in the record's request notes
            end = now + self.link.transfer_s(state.prompt_len * self.kv_bytes_per_token)
            self.in_flight.append(Transfer(state, source, target, end))
            self.transfers += 1

    def _decode_target(self) -> Instance | None:
        """The decode instance with a free seat and the most free KV blocks (ties: the lower index)."""
        open_seats = [i for i in self.decode
                      if self.decoders[i.name].free_seats() - sum(t.target is i for t in self.in_flight) > 0]
        return max(open_seats, key=lambda i: i.policy.blocks.num_free, default=None)  # max keeps the first

    # --- time and ends ---------------------------------------------------------------------------
    def _next_event(self, now: float, next_arrival_s: float | None) -> float | None:
        times = [i.pending.end_s for i in self.instances if i.pending is not None]
        times += [t.end_s for t in self.in_flight]
        if next_arrival_s is not None:
            times.append(next_arrival_s)
        for instance in self.instances:
            if instance.pending is None:
                wake = instance.policy.next_wakeup(now)
                if wake is not None:
                    times.append(wake)
        return min(times) if times else None

    def _idle(self) -> bool:
        return not self.queue and not self.in_flight and all(
            i.pending is None and not i.policy.has_unfinished() for i in self.instances)

    def _drain(self, now: float, reason: EndReason) -> None:
        """End everything unfinished: in the policies, queued for a transfer, in flight."""
        for instance in self.instances:
            instance.policy.drain(now, reason)
        for state in [s for s, _ in self.queue] + [t.state for t in self.in_flight]:
            state.finish(Status.FAILED, now, reason)
        self.queue.clear()
        self.in_flight.clear()
        for instance in self.instances:
            instance.pending = None

    def _merged_events(self) -> EventLog:
        merged = EventLog()
        rows = [(event, instance.name) for instance in self.instances for event in instance.engine.events.events]
        for event, name in sorted(rows, key=lambda item: item[0].t_s):  # stable: instance order at equal times
            merged.emit(event.kind, event.t_s, event.request_ids, **event.detail, instance=name)
        return merged
