"""The scheduler protocol every batching policy implements.

Contract (the engine calls, in this order, each step):

1. `add_request(state, now)` for every request whose arrival time has passed;
2. `schedule(now)` returns the next `StepPlan`, or None when nothing can run now
   (the engine then sleeps until the next arrival or `next_wakeup(now)`);
3. the runner executes the plan and the engine appends each sampled token to
   its request (`RequestState.append_token`);
4. `update(plan, now)` advances the policy's bookkeeping: `num_computed`,
   finished requests (completed when `done_generating`), freed blocks.

Between steps the engine may call `cancel(state, now, reason)`: failed with `reason` (a client went away), or
completed with `reason` None (a server found a stop string or token before its output length),
and at the end of a stopped or stalled run `drain(now, reason)`; `next_wakeup(now)`,
`has_unfinished()` and `take_ended()` tell it when to come back, whether the policy
holds work, and what ended.

Decode runs are no part of this contract: a policy may additionally implement the
`DecodeRuns` extension (bsbench/engine/decode_runs.py, which states it), a speed-up
of simulated runs that changes no decision; static, continuous, uellm and bucket do.

A policy never touches tensors. It owns its queues, asks the block manager for
memory before putting a sequence in a plan (a plan's block tables always cover
every slot it writes), picks preemption victims, and ends every request it
cannot serve through `end()` with a typed `EndReason`, so that
completed + failed + rejected == submitted always holds. Memory exhaustion is
an event (`events.OOM`), never an exception out of `schedule`.

Roles (disaggregated runs, bsbench/backends/cluster): `ctx.role` is "single" (one instance does everything), "prefill"
or "decode". A prefill-role policy computes prompts only: a request whose first token is out and that has more
to generate leaves it through `hand_off` (kept out of `unfinished()`, its blocks kept until the cluster frees
them after the KV transfer); the cluster collects them with `take_handoffs()`. A policy that can run
disaggregated says so with `decode_options(options)`: the options of the continuous policy its decode
instances run (None: it cannot).

Admission bound: `blocks_to_serve_alone(spec)` and `admission_bound()` say,
before the run, which requests the policy would never serve even alone in an
empty cache (need > bound). A policy that keeps part of the cache back, or
reserves more than the request's own tokens, overrides them; the run refuses
such a workload up front (`bench.check_workload_fits`), so a request the
check passed is never rejected for its size later.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.events import EventLog
from bsbench.engine.model_info import ModelInfo
from bsbench.engine.plan import StepPlan
from bsbench.engine.request_state import RequestState, Status, early_end_status
from bsbench.record.reasons import EndReason
from bsbench.schedulers.chunks import row_slots
from bsbench.schedulers.option_rules import PolicyOptions
from bsbench.workloads.request import RequestSpec


@dataclass(slots=True)
class SchedulerContext:
    block_manager: BlockManager
    model: ModelInfo
    events: EventLog
    seed: int = 0
    progress: Any = None  # a bsbench.progress.Progress for slow set-up (predictor training); None: silent
    role: str = "single"  # "single" | "prefill" | "decode" (see "Roles" above)


@dataclass(slots=True, frozen=True)
class AdmissionBound:
    """The most KV blocks a policy lets one request hold, and why (told to the user when a request needs more)."""

    max_blocks: int
    why: str


@dataclass(slots=True)
class NoOptions(PolicyOptions):
    """A policy without options."""


class Scheduler(ABC):
    """Base class for batching policies; see the module docstring for the contract."""

    name: ClassVar[str]
    Options: ClassVar[type[PolicyOptions]] = NoOptions  # a dataclass whose validate() checks every field
    disaggregated_only: ClassVar[bool] = False  # True: always runs on a cluster (prefill=1,decode=1 by default)

    def __init__(self, options: Any, ctx: SchedulerContext) -> None:
        self.options = options
        self.ctx = ctx
        self.blocks = ctx.block_manager
        self._ended: list[RequestState] = []
        self._handoffs: list[RequestState] = []
        self.decision_s = 0.0  # wall time spent inside schedule(), for overhead reports

    # --- the protocol ---------------------------------------------------------
    @abstractmethod
    def add_request(self, state: RequestState, now: float) -> None: ...

    @abstractmethod
    def _schedule(self, now: float) -> StepPlan | None: ...

    @abstractmethod
    def update(self, plan: StepPlan, now: float) -> None: ...

    @abstractmethod
    def unfinished(self) -> list[RequestState]:
        """Every request admitted and not yet ended (waiting or running)."""

    def next_wakeup(self, now: float) -> float | None:
        """A time at which `schedule` may return a plan without new arrivals (e.g. a batch timeout)."""
        return None

    def summary(self) -> dict[str, Any]:
        """Policy-specific figures for the run record (e.g. bucket decisions)."""
        return {}

    def blocks_to_serve_alone(self, spec: RequestSpec) -> int:
        """KV blocks this policy holds for `spec` at most when serving it alone: prompt + output but the last token."""
        return self.blocks.blocks_for_tokens(row_slots(spec.prompt_len, spec.output_len))

    def admission_bound(self) -> AdmissionBound:
        """The most blocks one request may hold under this policy: by default the whole cache."""
        return AdmissionBound(self.blocks.num_blocks, f"the whole KV cache of {self.blocks.num_blocks} blocks")

    @classmethod
    def decode_options(cls, options: Any) -> Any:
        """The continuous policy's options for this policy's decode instances; None: no disaggregated form."""
        return None

    # --- shared machinery -------------------------------------------------------
    def schedule(self, now: float) -> StepPlan | None:
        """Times the policy's decision so its overhead can be reported."""
        start = time.perf_counter()
        try:
            return self._schedule(now)
        finally:
            self.decision_s += time.perf_counter() - start

    def has_unfinished(self) -> bool:
        return bool(self.unfinished())

    def end(
        self, state: RequestState, status: Status, now: float, reason: EndReason | None = None, *,
        free: bool = True
    ) -> None:
        """End a request: final status, reported to the engine, blocks freed.

        `free=False` keeps the blocks: a padded batch holds a finished row's KV
        until the whole batch ends (the policy frees it then).
        """
        if free:
            self.blocks.free(state.id)
        state.finish(status, now, reason)
        self._ended.append(state)
        self._on_end(state)

    def _on_end(self, state: RequestState) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Hook: drop an ended request from the policy's queues."""

    def hand_off(self, state: RequestState, now: float) -> None:
        """Prefill role: `state` has its first token and leaves for a decode instance (blocks kept, see Roles)."""
        state.phases.handed_off(now)
        self._handoffs.append(state)

    def take_handoffs(self) -> list[RequestState]:
        """Requests handed off since the last call, in hand-off order."""
        handed, self._handoffs = self._handoffs, []
        return handed

    def take_ended(self) -> list[RequestState]:
        """Requests ended since the last call (the engine uses this for progress)."""
        ended, self._ended = self._ended, []
        return ended

    def drain(self, now: float, reason: EndReason) -> None:
        """End every unfinished request as failed with `reason` (interrupt, stall)."""
        for state in list(self.unfinished()):
            self.end(state, Status.FAILED, now, reason)

    def cancel(self, state: RequestState, now: float, reason: EndReason | None) -> None:
        """End an admitted, unfinished request between steps, its KV freed: failed with `reason` (its client went
        away), or completed when `reason` is None (stopped early: a stop string or token). A policy whose padded
        batch keeps a row's KV until the batch ends overrides this."""
        self.end(state, early_end_status(reason), now, reason)

    def fail_plan(self, plan: StepPlan, now: float, reason: EndReason) -> list[str]:
        """End the unfinished requests of a plan that could not execute (e.g. activation OOM)."""
        by_id = {s.id: s for s in self.unfinished()}
        failed = [c.req_id for c in plan.chunks if c.req_id in by_id]
        for req_id in failed:
            self.end(by_id[req_id], Status.FAILED, now, reason)
        return failed
