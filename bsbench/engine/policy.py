"""The batching policy as the engine loop sees it.

The engine depends on this Protocol only, never on `bsbench.schedulers`; the
full contract (call order, invariants) is in `bsbench/schedulers/base.py`,
whose `Scheduler` base class satisfies it. Decode runs, a simulation speed-up
a policy may offer besides, are no part of it (engine/decode_runs.py).
"""

from __future__ import annotations

from typing import Protocol

from bsbench.engine.plan import StepPlan
from bsbench.engine.request_state import RequestState
from bsbench.record.reasons import EndReason


class Policy(Protocol):
    """Decides each step's plan; owns its queues; ends every request it cannot serve."""

    decision_s: float  # wall time spent deciding, for overhead reports

    def add_request(self, state: RequestState, now: float) -> None: ...

    def schedule(self, now: float) -> StepPlan | None: ...

    def update(self, plan: StepPlan, now: float) -> None: ...

    def next_wakeup(self, now: float) -> float | None: ...

    def has_unfinished(self) -> bool: ...

    def take_ended(self) -> list[RequestState]: ...

    def drain(self, now: float, reason: EndReason) -> None: ...

    def cancel(self, state: RequestState, now: float, reason: EndReason | None) -> None: ...

    def fail_plan(self, plan: StepPlan, now: float, reason: EndReason) -> list[str]: ...
