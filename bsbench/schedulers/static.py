"""Static batching: FCFS batches that run to completion as one padded batch.

A batch forms when `max_batch_size` requests wait, or when the oldest has
waited `batch_timeout` seconds. It prefills as one left-padded rectangle and
decodes until its longest output is done; rows that finish early keep
computing (that waste is counted as padding). KV for
batch x (longest prompt + longest output) is reserved when the batch is
admitted, as a framework allocating a padded batch does. If it does not fit,
`oom_policy=fail` fails the batch's requests with reason "oom" (an OOM event),
`split` retries with half the batch (the rest goes back to the queue head).
One batch runs at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from bsbench.engine.decode_runs import DecodeRunTerms
from bsbench.engine.events import OOM
from bsbench.engine.plan import StepPlan
from bsbench.engine.request_state import RequestState, Status, early_end_status
from bsbench.record.reasons import EndKind, EndReason
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.chunks import PaddedBatch, row_slots
from bsbench.schedulers.option_rules import AT_LEAST_ONE, NON_NEGATIVE, PolicyOptions, check_fields
from bsbench.schedulers.registry import register


@dataclass(slots=True)
class StaticOptions(PolicyOptions):
    max_batch_size: int = field(default=8, metadata={"help": "Requests per batch (static, uellm)."})
    batch_timeout: float = field(
        default=0.5, metadata={"help": "Seconds the oldest waiting request waits before a partial batch runs (static)."}
    )
    oom_policy: str = field(
        default="fail",
        metadata={"help": "When a batch's KV does not fit: fail its requests, or split it in half (static).",
                  "choices": ("fail", "split")},
    )

    def validate(self) -> None:
        check_fields(self, {"max_batch_size": AT_LEAST_ONE, "batch_timeout": NON_NEGATIVE})


@register
class StaticScheduler(Scheduler):
    name = "static"
    Options = StaticOptions
    options: StaticOptions

    def __init__(self, options: StaticOptions, ctx: SchedulerContext) -> None:
        super().__init__(options, ctx)
        self.waiting: deque[RequestState] = deque()
        self.batch: PaddedBatch | None = None
        self.batches_run = 0
        self.batches_failed = 0

    def add_request(self, state: RequestState, now: float) -> None:
        self.waiting.append(state)

    def unfinished(self) -> list[RequestState]:
        running = [r for r in self.batch.rows if not r.status.is_final] if self.batch else []
        return running + list(self.waiting)

    def next_wakeup(self, now: float) -> float | None:
        if self.waiting:
            return self.waiting[0].spec.arrival_s + self.options.batch_timeout
        return None

    def _schedule(self, now: float) -> StepPlan | None:
        if self.batch is None:
            self.batch = self._form_batch(now)
            if self.batch is None:
                return None
        return self.batch.next_plan(self.blocks)

    def _form_batch(self, now: float) -> PaddedBatch | None:
        opts = self.options
        while self.waiting:
            full = len(self.waiting) >= opts.max_batch_size
            timed_out = now >= cast(float, self.next_wakeup(now))  # the same expression as the wake-up time
            if not (full or timed_out):
                return None
            size = min(opts.max_batch_size, len(self.waiting))
            while True:
                rows = [self.waiting[i] for i in range(size)]
                max_out = max(r.spec.output_len for r in rows)
                per_row = self.blocks.blocks_for_tokens(row_slots(PaddedBatch.width_of(rows), max_out))
                need = per_row * len(rows)
                if self.blocks.can_allocate(need):
                    for _ in range(size):
                        row = self.waiting.popleft()
                        self.blocks.allocate(row.id, per_row)
                        row.mark_scheduled(now)
                    self.batches_run += 1
                    return PaddedBatch.of(rows, self.ctx.model.pad_token_id)
                if opts.oom_policy == "split" and size > 1:
                    size = (size + 1) // 2
                    continue
                self._fail_oom(rows, now, need)
                break
        return None

    def _fail_oom(self, rows: list[RequestState], now: float, need: int) -> None:
        self.batches_failed += 1
        self.ctx.events.emit(
            OOM, now, [r.id for r in rows], cause="kv", blocks_needed=need, blocks_free=self.blocks.num_free,
            policy=self.options.oom_policy,
        )
        for row in rows:
            self.end(row, Status.FAILED, now, EndReason(EndKind.OOM, "padded batch KV does not fit the memory budget"))

    def _on_end(self, state: RequestState) -> None:
        if state in self.waiting:
            self.waiting.remove(state)

    def update(self, plan: StepPlan, now: float) -> None:
        self.update_decode_run(plan, (now,))

    def decode_run_length(self, plan: StepPlan) -> int:
        return self.batch.decode_run_length() if self.batch is not None else 1

    def decode_run_terms(self, plan: StepPlan, steps: int) -> DecodeRunTerms:
        return DecodeRunTerms(plan, [self.blocks.num_used] * steps)  # the batch's reservation covers the run

    def update_decode_run(self, plan: StepPlan, ends: Sequence[float]) -> None:
        steps, now = len(ends), ends[-1]
        batch = self.batch
        assert batch is not None
        for row in batch.book(plan, steps):
            self.end(row, Status.COMPLETED, now, free=False)
        if batch.all_done():
            batch.free(self.blocks)
            self.batch = None

    def cancel(self, state: RequestState, now: float, reason: EndReason | None) -> None:
        """A row of the running batch keeps its KV until the batch ends (its later steps compute it as padding)."""
        batch = self.batch
        if batch is None or state not in batch.rows:
            super().cancel(state, now, reason)
            return
        self.end(state, early_end_status(reason), now, reason, free=False)
        if batch.all_done():
            batch.free(self.blocks)
            self.batch = None

    def fail_plan(self, plan: StepPlan, now: float, reason: EndReason) -> list[str]:
        failed = super().fail_plan(plan, now, reason)
        if self.batch is not None:
            self.batch.free(self.blocks)
            self.batch = None
        return failed

    def summary(self) -> dict[str, Any]:
        return {"batches_run": self.batches_run, "batches_failed_oom": self.batches_failed}
