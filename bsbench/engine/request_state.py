"""Runtime state of one request inside the engine."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bsbench.engine.phases import PhaseTimer
from bsbench.record.reasons import EndReason
from bsbench.workloads.request import RequestSpec


class Status(str, enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.REJECTED)


def early_end_status(reason: EndReason | None) -> Status:
    """The final status of a request ended between steps (`Policy.cancel`): failed with `reason`, or completed
    when there is none (a server stopped it at a stop string or token)."""
    return Status.COMPLETED if reason is None else Status.FAILED


@dataclass(slots=True, eq=False)
class RequestState:
    """Mutable state of a request from admission to its end.

    Invariants: `num_computed` tokens of `prompt + output` have KV in the cache
    (0 after a preemption by recompute), stored after `kv_pad_len` slots of left
    padding (non-zero only when the request was prefilled in a padded batch); `token_times[i]` is the wall time at
    which `output_ids[i]` was produced; a final status has a `reason` unless it
    is COMPLETED (a typed `EndReason`). `phases` accrues where its time goes (engine/phases.py):
    the transitions below feed it, and the engine tells it after each step how much KV is computed.
    """

    spec: RequestSpec
    status: Status = Status.WAITING
    output_ids: list[int] = field(default_factory=list)
    token_times: list[float] = field(default_factory=list)
    num_computed: int = 0
    kv_pad_len: int = 0
    first_scheduled_s: float | None = None
    finish_s: float | None = None
    reason: EndReason | None = None
    preemptions: int = 0
    pad_tokens: int = 0
    truncated: bool = False
    transfer_start_s: float | None = None  # disaggregated: when its prompt KV began to move (cluster/coordinator.py)
    transfer_end_s: float | None = None
    # free-form per-policy annotations that end up in the run record (e.g. predicted length)
    notes: dict[str, object] = field(default_factory=dict)
    released_output: int = 0  # output ids let go after the request ended (release_output_ids), still counted
    phases: PhaseTimer = field(init=False)

    def __post_init__(self) -> None:
        self.phases = PhaseTimer(self.spec.arrival_s)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def prompt_len(self) -> int:
        return len(self.spec.prompt_ids)

    @property
    def kv_len(self) -> int:
        """KV slots the request occupies now: padding plus computed tokens."""
        return self.kv_pad_len + self.num_computed

    @property
    def num_output(self) -> int:
        return len(self.output_ids) + self.released_output

    def release_output_ids(self) -> None:
        """Let an ended request's output ids go (a run that does not record them held millions: one per token);
        `num_output` still counts them."""
        if not self.status.is_final:
            raise ValueError(f"request {self.id} is still running: its output ids feed its next step")
        self.released_output += len(self.output_ids)
        self.output_ids = []

    @property
    def target_len(self) -> int:
        """Total tokens (prompt + output) the request reaches when it completes."""
        return self.prompt_len + self.spec.output_len

    @property
    def done_generating(self) -> bool:
        return len(self.output_ids) >= self.spec.output_len

    def all_token_ids(self) -> list[int]:
        return list(self.spec.prompt_ids) + self.output_ids

    def token_ids_between(self, start: int, stop: int) -> list[int]:
        """`all_token_ids()[start:stop]` without copying the whole history (a decode step reads one token)."""
        prompt = self.spec.prompt_ids
        n = len(prompt)
        if start >= n:
            return self.output_ids[start - n : stop - n]
        return list(prompt[start:stop]) + self.output_ids[: max(0, stop - n)]

    def mark_scheduled(self, now: float) -> None:
        if self.first_scheduled_s is None:
            self.first_scheduled_s = now
        self.phases.scheduled(now)
        self.status = Status.RUNNING

    def reset_for_recompute(self, now: float) -> None:
        """Preempted by recompute at `now`: back to waiting with no KV (the caller frees the blocks)."""
        self.phases.preempted(now, self.num_computed)
        self.num_computed = 0
        self.kv_pad_len = 0
        self.preemptions += 1
        self.status = Status.WAITING

    def append_token(self, token_id: int, now: float) -> None:
        self.output_ids.append(token_id)
        self.token_times.append(now)
        if len(self.output_ids) == 1:  # only the first token can end prefill
            self.phases.token(now)

    def note_computed(self, now: float) -> None:
        """After a step this request took part in (its `num_computed` booked): ends a caught-up recompute."""
        self.phases.computed(now, self.num_computed, bool(self.output_ids))

    def append_tokens(self, token_ids: list[int], times: list[float]) -> None:
        """`append_token` for each pair, in order (one decode run of several steps)."""
        first = not self.output_ids
        self.output_ids.extend(token_ids)
        self.token_times.extend(times)
        if first and times:
            self.phases.token(times[0])

    def finish(self, status: Status, now: float, reason: EndReason | None = None) -> None:
        """Move to a final status. Failing or rejecting needs a reason."""
        if not status.is_final:
            raise ValueError(f"finish() needs a final status, got {status}")
        if (status is Status.COMPLETED) != (reason is None):
            raise ValueError("a failed or rejected request needs a reason, and a completed one has none")
        if self.status.is_final:
            raise ValueError(f"request {self.id} already ended as {self.status.value}")
        self.status = status
        self.reason = reason
        self.finish_s = now
        self.phases.ended(now)
