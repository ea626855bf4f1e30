"""Continuous (iteration-level) batching, as vLLM and Orca do it.

Each step: every running request gets its next chunk (one decode token, or the
rest of a chunked prefill) in arrival order; then waiting requests are admitted
FCFS while the step's token budget (`max_num_batched_tokens`), the sequence cap
(`max_num_seqs`) and free KV blocks allow. Prefill and decode mix in one packed
step. Blocks are allocated as sequences grow. When a running request needs a
block and none is free, the newest running request is preempted by recompute
(its blocks are freed; it returns to the queue head and is prefilled again over
prompt + generated tokens). With `chunked_prefill`, a prompt longer than the
remaining budget is split over several steps; without it, a prompt waits for a
step with room (a prompt larger than the whole budget runs alone).

Decode role (disaggregated runs, bsbench/backends/cluster): a request whose prompt KV arrived
from a prefill instance joins the running requests at once (`accept_transferred`,
its blocks already reserved by the transfer; it is the newest, so the first
preemption victim), up to `max_num_seqs` (`free_seats`). A preempted request is
recomputed here, on the decode instance, from its prompt and generated tokens
(a packed prefill priced by this instance's cost model), never sent back.

Decode runs: when every running request decodes, the next steps repeat the plan one
position further until the first request finishes (its last token ends the run), a
block allocation would fail (a preemption), or the queue could admit someone. The
queue's head blocked now stays blocked (its budget, the sequence cap and its tokens
stay the same; free blocks only shrink), and arrivals join behind it; with no one
waiting and room, the run ends with the step the next request arrives in.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat

from bsbench.engine.decode_runs import DecodeRunTerms
from bsbench.engine.events import PREEMPTION
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.request_state import RequestState, Status
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.chunks import advance, advance_decoding, kv_slots_needed, next_chunk, uncomputed_tokens
from bsbench.schedulers.option_rules import AT_LEAST_ONE, Interval, PolicyOptions, check_fields
from bsbench.schedulers.registry import register


@dataclass(slots=True)
class ContinuousOptions(PolicyOptions):
    max_num_seqs: int = field(default=64, metadata={"help": "Most requests running at once (continuous, bucket)."})
    max_num_batched_tokens: int = field(
        default=2048, metadata={"help": "Token budget of one step, prefill and decode together (continuous)."}
    )
    chunked_prefill: bool = field(
        default=False, metadata={"help": "Split long prompts over several steps (continuous)."})
    watermark: float = field(
        default=0.01,
        metadata={"help": "Share of KV blocks kept free when admitting, to limit preemption thrash (continuous)."}
    )

    def validate(self) -> None:
        check_fields(self, {"max_num_seqs": AT_LEAST_ONE, "max_num_batched_tokens": AT_LEAST_ONE,
                            "watermark": Interval(0, 1, high_open=True)})


@register
class ContinuousScheduler(Scheduler):
    name = "continuous"
    Options = ContinuousOptions

    def __init__(self, options: ContinuousOptions, ctx: SchedulerContext) -> None:
        super().__init__(options, ctx)
        self.max_num_seqs: int = options.max_num_seqs
        self.waiting: deque[RequestState] = deque()
        self.running: list[RequestState] = []
        self._watermark_blocks = int(options.watermark * self.blocks.num_blocks)
        self._growth: tuple[StepPlan | None, list[tuple[int, int]]] = (None, [])  # the last run's _run_growth

    def add_request(self, state: RequestState, now: float) -> None:
        self.waiting.append(state)

    def unfinished(self) -> list[RequestState]:
        return self.running + list(self.waiting)

    def free_seats(self) -> int:
        """Decode role: how many more requests may join (running and recomputing ones count)."""
        return self.max_num_seqs - len(self.running) - len(self.waiting)

    def accept_transferred(self, state: RequestState, now: float) -> None:
        """Decode role: `state`'s prompt KV is in this instance's blocks (num_computed of it): it runs from now."""
        state.phases.transferred(now)
        self.running.append(state)

    def _on_end(self, state: RequestState) -> None:
        if state in self.running:
            self.running.remove(state)
        elif state in self.waiting:
            self.waiting.remove(state)

    def _preempt(self, victim: RequestState, now: float) -> None:
        self.running.remove(victim)
        self.blocks.free(victim.id)
        victim.reset_for_recompute(now)
        self.waiting.appendleft(victim)
        self.ctx.events.emit(PREEMPTION, now, [victim.id], mode="recompute", num_output=victim.num_output)

    def _schedule(self, now: float) -> StepPlan | None:
        opts = self.options
        budget = opts.max_num_batched_tokens
        chunks: list[SeqChunk] = []

        # 1. running requests, oldest first; preempt the newest when blocks run out
        index = 0
        running = self.running
        grown_table = self.blocks.grown_table
        while index < len(running) and budget > 0:
            state = running[index]
            # uncomputed_tokens and kv_slots_needed inlined: this runs once per running request per step
            computed = state.num_computed
            count = len(state.spec.prompt_ids) + len(state.output_ids) - computed
            if count > 1:  # an unfinished chunked prefill
                count = min(count, budget)
            while (table := grown_table(state.spec.id, state.kv_pad_len + computed + count)) is None:
                victim = running[-1]
                self._preempt(victim, now)
                if victim is state:
                    break
            if table is None:  # it preempted itself
                break
            chunks.append(next_chunk(state, table, count))
            budget -= count
            index += 1

        # 2. admit waiting requests FCFS while budget, sequence cap and memory allow
        while self.waiting and budget > 0 and len(self.running) < opts.max_num_seqs:
            state = self.waiting[0]
            count = uncomputed_tokens(state)
            if count > budget:
                if opts.chunked_prefill:
                    count = budget
                elif chunks or count <= opts.max_num_batched_tokens:
                    break
            slots = kv_slots_needed(state, count)
            need = self.blocks.blocks_needed(state.id, slots)
            if need + self._watermark_blocks > self.blocks.num_free and (chunks or need > self.blocks.num_free):
                break
            table = self.blocks.grown_table(state.id, slots)
            if table is None:
                break
            self.waiting.popleft()
            state.mark_scheduled(now)
            self.running.append(state)
            chunks.append(next_chunk(state, table, count))
            budget -= count
        if not chunks:
            return None
        return StepPlan(layout="packed", chunks=chunks)

    def update(self, plan: StepPlan, now: float) -> None:
        for state in advance(plan, {s.id: s for s in self.running}):
            self.end(state, Status.COMPLETED, now)

    # --- decode runs (see the module docstring) ----------------------------------
    def decode_run_length(self, plan: StepPlan) -> int:
        running = self.running
        if len(plan.chunks) != len(running) or len(plan.chunks[-1].token_ids) != 1:
            return 1  # admissions (prefills) come last in the plan: the common no, without a scan
        steps = None
        for state, chunk in zip(running, plan.chunks):  # once per running request per step: properties inlined
            output = len(state.output_ids)
            spec = state.spec
            if len(chunk.token_ids) != 1 or not output or state.num_computed != len(spec.prompt_ids) + output - 1:
                return 1  # a prefill (or its last piece) in the plan
            left = spec.output_len - output  # the step that samples the last token finishes it
            steps = left if steps is None or left < steps else steps
        if steps is None or steps < 2:
            return 1
        growth = self._run_growth(plan, steps)
        self._growth = (plan, growth)  # its terms and booking read prefixes of it
        if len(growth) > self.blocks.num_free:
            steps = growth[self.blocks.num_free][0]  # that step would preempt: the run ends before it
        return steps

    def _run_growth(self, plan: StepPlan, steps: int) -> list[tuple[int, int]]:
        """(step, chunk index) of every block single steps 1..steps-1 of the run would allocate, in their order:
        a chunk writes slot start_pos + j at step j and gets a block when that slot begins one."""
        plan_seen, growth = self._growth
        if plan_seen is plan:  # decode_run_length's list, for at least as many steps
            return growth[:bisect_left(growth, (steps, -1))]
        size = self.blocks.block_size
        growth = []
        for i, chunk in enumerate(plan.chunks):
            first = len(chunk.block_table) * size - chunk.start_pos  # the step that writes past its table
            growth.extend(zip(range(max(first, 1), steps, size), repeat(i)))
        growth.sort()
        return growth

    def decode_run_terms(self, plan: StepPlan, steps: int) -> DecodeRunTerms:
        growth = self._run_growth(plan, steps)
        ids = iter(self.blocks.next_free(len(growth)))
        new: dict[int, list[int]] = {}
        used = [self.blocks.num_used] * steps
        for j, i in growth:
            new.setdefault(i, []).append(next(ids))
            used[j] += 1
        for j in range(1, steps):
            used[j] += used[j - 1] - self.blocks.num_used
        chunks = [c if i not in new else
                  SeqChunk(c.req_id, c.token_ids, c.start_pos, (*c.block_table, *new[i]), c.sample, c.pad_len)
                  for i, c in enumerate(plan.chunks)]
        opts = self.options
        admission_open = (not self.waiting and len(self.running) < opts.max_num_seqs
                          and opts.max_num_batched_tokens > len(self.running))  # else it stays shut for the run
        return DecodeRunTerms(StepPlan(plan.layout, chunks, plan.pad_tokens), used, arrivals_matter=admission_open)

    def update_decode_run(self, plan: StepPlan, ends: Sequence[float]) -> None:
        steps = len(ends)
        allocate = self.blocks.allocate
        for _step, i in self._run_growth(plan, steps):
            allocate(plan.chunks[i].req_id, 1)
        for state in advance_decoding(self.running, steps):
            self.end(state, Status.COMPLETED, ends[-1])
