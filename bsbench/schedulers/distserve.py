"""DistServe (Zhong et al., OSDI 2024): prefill and decode on separate instances, written here from the public design.

Always disaggregated (bsbench/backends/cluster; `--instances prefill=N,decode=M`, and prefill=1,decode=1 when none is
given, which the record says): this policy runs on the prefill instances, the continuous policy on the decode
instances (`decode_options`).

Prefill instance, per step: the waiting requests in arrival order (FCFS) are packed into one prefill batch
(no padding) while the batch stays within `max_prefill_tokens` prompt tokens and `max_prefill_seqs` requests
and the prompt's KV fits the free blocks; a prompt larger than the whole budget runs alone. A request whose
KV does not fit waits at the head (FCFS: nobody overtakes it) until transfers free blocks. After the step,
a request with one output token completes here; every other one is handed off, in batch (arrival) order,
for its KV transfer, and keeps its prefill blocks until that transfer ends.

Decode instance: continuous batching of up to `max_num_seqs` requests, one token each per step, within
`max_num_batched_tokens` (the recompute of a preempted request is a prefill there).

Defaults are those of DistServe's public API server (LLMServe/DistServe,
distserve/api_server/distserve_api_server.py): --context-max-tokens-per-batch 4096, --context-max-batch-size
256, --decoding-max-batch-size 256, --decoding-max-tokens-per-batch 8192, FCFS on both stages.

Not reproduced: DistServe's placement search (how many instances of each kind, and their tensor/pipeline
parallelism, for a given SLO) - the topology is given by the user; its decode-side proactive offloading and
swap space; pipeline parallelism inside an instance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.request_state import RequestState, Status
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.chunks import advance, kv_slots_needed, next_chunk, uncomputed_tokens
from bsbench.schedulers.continuous import ContinuousOptions
from bsbench.schedulers.option_rules import AT_LEAST_ONE, PolicyOptions, check_fields
from bsbench.schedulers.registry import register
from bsbench.workloads.request import RequestSpec


@dataclass(slots=True)
class DistServeOptions(PolicyOptions):
    max_prefill_tokens: int = field(default=4096, metadata={
        "help": "Most prompt tokens in one prefill batch on a prefill instance (distserve)."})
    max_prefill_seqs: int = field(default=256, metadata={
        "help": "Most requests in one prefill batch on a prefill instance (distserve)."})
    max_num_seqs: int = field(default=256, metadata={
        "help": "Most requests decoding at once on a decode instance (distserve)."})
    max_num_batched_tokens: int = field(default=8192, metadata={
        "help": "Token budget of one decode-instance step (distserve)."})

    def validate(self) -> None:
        check_fields(self, {"max_prefill_tokens": AT_LEAST_ONE, "max_prefill_seqs": AT_LEAST_ONE,
                            "max_num_seqs": AT_LEAST_ONE, "max_num_batched_tokens": AT_LEAST_ONE})


@register
class DistServeScheduler(Scheduler):
    name = "distserve"
    Options = DistServeOptions
    disaggregated_only = True

    def __init__(self, options: DistServeOptions, ctx: SchedulerContext) -> None:
        super().__init__(options, ctx)
        self.waiting: deque[RequestState] = deque()
        self.prefilling: dict[str, RequestState] = {}  # the batch in flight
        self.batches = 0
        self.batch_rows = 0

    @classmethod
    def decode_options(cls, options: DistServeOptions) -> ContinuousOptions:
        return ContinuousOptions(max_num_seqs=options.max_num_seqs,
                                 max_num_batched_tokens=options.max_num_batched_tokens)

    def blocks_to_serve_alone(self, spec: RequestSpec) -> int:
        """A prefill instance holds a prompt's KV only (its decode instance checks the whole request)."""
        return self.blocks.blocks_for_tokens(spec.prompt_len)

    def add_request(self, state: RequestState, now: float) -> None:
        self.waiting.append(state)

    def unfinished(self) -> list[RequestState]:
        return list(self.prefilling.values()) + list(self.waiting)

    def _on_end(self, state: RequestState) -> None:
        if self.prefilling.pop(state.id, None) is None and state in self.waiting:
            self.waiting.remove(state)

    def _schedule(self, now: float) -> StepPlan | None:
        opts = self.options
        budget = opts.max_prefill_tokens
        chunks: list[SeqChunk] = []
        while self.waiting and len(chunks) < opts.max_prefill_seqs:
            state = self.waiting[0]
            count = uncomputed_tokens(state)
            if count > budget and chunks:
                break
            table = self.blocks.grown_table(state.id, kv_slots_needed(state, count))
            if table is None:
                break
            self.waiting.popleft()
            state.mark_scheduled(now)
            self.prefilling[state.id] = state
            chunks.append(next_chunk(state, table, count))
            budget -= count
        if not chunks:
            return None
        self.batches += 1
        self.batch_rows += len(chunks)
        return StepPlan(layout="packed", chunks=chunks)

    def update(self, plan: StepPlan, now: float) -> None:
        batch, self.prefilling = self.prefilling, {}
        done = {s.id for s in advance(plan, batch)}
        for chunk in plan.chunks:  # batch order is arrival order: the hand-off is FCFS
            state = batch[chunk.req_id]
            if state.id in done:
                self.end(state, Status.COMPLETED, now)
            else:
                self.hand_off(state, now)

    def summary(self) -> dict[str, object]:
        return {"prefill_batches": self.batches,
                "mean_prefill_batch": self.batch_rows / self.batches if self.batches else None}
