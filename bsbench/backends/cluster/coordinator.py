"""The coordinator of a disaggregated run: prefill and decode instances on the engine loop's one timeline,
joined by KV transfers.

The engine loop (bsbench/engine/loop.py) drives the instances: each a policy, a block manager, an event log and a
simulated runner with its own cost model, on a clock of its own that the loop sets to the timeline before each
step; it books steps, admits arrivals, handles wake-ups, stalls and interrupts, and checks the invariant, as for
one instance. `TransferCoordinator` (an engine/coordinator.py `Coordinator`) owns what lies between instances.
At one instant the loop books the steps that end (instance order), then the coordinator collects the hand-offs
of those steps and ends the transfers that end (in the order they ended, then started), then arrivals come in,
then every idle instance plans its next step (instance order), then queued transfers start.

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
- On a stall or an interrupt the loop drains the policies, then the coordinator ends the requests queued for a
  transfer or in flight with the same reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bsbench.backends.cluster.links import LinkPreset
from bsbench.engine.instance import Instance as LoopInstance
from bsbench.engine.request_state import RequestState, Status, early_end_status
from bsbench.record.reasons import EndReason
from bsbench.schedulers.base import Scheduler
from bsbench.schedulers.continuous import ContinuousScheduler


@dataclass(slots=True, eq=False)
class Instance:
    """One instance of a disaggregated run: `unit` is what the loop drives (its policy, runner, block manager,
    event log and clock); `policy` is the same policy, typed as a scheduler. A decode instance's policy is the
    continuous one (its decode role)."""

    role: str  # "prefill" | "decode"
    policy: Scheduler
    unit: LoopInstance
    gpu: str = ""  # the device preset its cost model describes

    @property
    def name(self) -> str:
        return self.unit.name or ""


@dataclass(slots=True)
class Transfer:
    state: RequestState
    source: Instance
    target: Instance
    end_s: float


class TransferCoordinator:
    """Routes arrivals to prefill instances and moves handed-off requests to decode instances (module docstring)."""

    def __init__(self, instances: Sequence[Instance], link: LinkPreset, kv_bytes_per_token: int) -> None:
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
        self.queue: deque[tuple[RequestState, Instance]] = deque()  # handed off, transfer not started
        self.in_flight: list[Transfer] = []  # in start order
        self.cancels: list[tuple[RequestState, EndReason | None]] = []  # of requests in a step under way
        self.transfers = 0

    # --- the Coordinator protocol ----------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Queue what the steps booked at this instant handed off (instance order), carry out the cancels that
        waited for those steps, then end due transfers."""
        for instance in self.prefill:
            self.queue.extend((state, instance) for state in instance.policy.take_handoffs())
        cancels, self.cancels = self.cancels, []
        for state, reason in cancels:
            if not state.status.is_final:
                self.cancel(state, now, reason)
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

    def cancel(self, state: RequestState, now: float, reason: EndReason | None) -> None:
        """End `state` failed with `reason` (completed when None) wherever it is: in a policy (once the step it is
        in, if any, is booked), queued for a transfer or in flight."""
        for instance in self.instances:
            if state in instance.policy.unfinished():
                pending = instance.unit.pending
                if pending is not None and any(c.req_id == state.id for c in pending.plan.chunks):
                    self.cancels.append((state, reason))  # its step is under way: cancelled once it is booked
                else:
                    instance.policy.cancel(state, now, reason)
                return
        for queued, source in list(self.queue):
            if queued is state:
                self.queue.remove((queued, source))
                source.policy.blocks.free(state.id)
                state.finish(early_end_status(reason), now, reason)
                return
        for transfer in list(self.in_flight):
            if transfer.state is state:
                self.in_flight.remove(transfer)
                transfer.source.policy.blocks.free(state.id)
                transfer.target.policy.blocks.free(state.id)
                state.finish(early_end_status(reason), now, reason)
                return

    def dispatch(self, now: float) -> None:
        """Start queued transfers, head first, while the head can start (FCFS)."""
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

    def next_event_s(self) -> float | None:
        return min((t.end_s for t in self.in_flight), default=None)

    def busy(self) -> bool:
        return bool(self.queue or self.in_flight)

    def drain(self, now: float, reason: EndReason) -> None:
        """End every request queued for a transfer or in flight (the policies were drained before)."""
        for state in [s for s, _ in self.queue] + [t.state for t in self.in_flight]:
            state.finish(Status.FAILED, now, reason)
        self.queue.clear()
        self.in_flight.clear()
        self.cancels.clear()

    def _decode_target(self) -> Instance | None:
        """The decode instance with a free seat and the most free KV blocks (ties: the lower index)."""
        open_seats = [i for i in self.decode
                      if self.decoders[i.name].free_seats() - sum(t.target is i for t in self.in_flight) > 0]
        return max(open_seats, key=lambda i: i.policy.blocks.num_free, default=None)  # max keeps the first
