"""Plan-building helpers shared by every policy: the one place that turns request state into chunks."""

from __future__ import annotations

from dataclasses import dataclass

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.request_state import RequestState


def uncomputed_tokens(state: RequestState) -> int:
    """Tokens of prompt + output that have no KV yet (1 for a request in decode)."""
    return state.prompt_len + state.num_output - state.num_computed


def kv_slots_needed(state: RequestState, num_tokens: int) -> int:
    """KV slots the request occupies after computing `num_tokens` more tokens."""
    return state.kv_len + num_tokens


def max_kv_slots(state: RequestState) -> int:
    """KV slots at the end of the request: every token but the last generated one has KV."""
    return state.kv_pad_len + state.target_len - 1


def row_slots(width: int, output_len: int) -> int:
    """KV slots one row of a padded batch of width `width` holds after `output_len` tokens (the last has no KV)."""
    return width + output_len - 1


def next_chunk(state: RequestState, table: tuple[int, ...], max_tokens: int | None = None) -> SeqChunk:
    """The next piece of work for a request in packed layout: a (partial) prefill or one decode token.

    Samples a token only when the chunk reaches the end of the known tokens. `table` is the request's block
    table (the block manager's immutable snapshot: shared, not copied), already covering the chunk.
    """
    # uncomputed_tokens and token_ids_between inlined: this runs once per request per step
    n = len(state.spec.prompt_ids)
    computed = state.num_computed
    output = state.output_ids
    remaining = n + len(output) - computed
    count = remaining if max_tokens is None or max_tokens >= remaining else max_tokens
    if computed >= n:
        tokens = output[computed - n : computed - n + count]
    else:
        tokens = state.token_ids_between(computed, computed + count)
    pad = state.kv_pad_len
    return SeqChunk(state.spec.id, tokens, pad + computed, table, count == remaining, pad)


def advance(plan: StepPlan, states: dict[str, RequestState]) -> list[RequestState]:
    """Book the computed tokens of a plan; returns requests of the plan that are done generating."""
    done = []
    for chunk in plan.chunks:
        state = states[chunk.req_id]
        if state.status.is_final:
            continue
        state.num_computed += len(chunk.token_ids)
        if state.done_generating:
            done.append(state)
    return done


def advance_decoding(states: list[RequestState], steps: int) -> list[RequestState]:
    """Book `steps` decode steps of every request in `states` (a decode run); returns those done generating."""
    done = []
    for state in states:
        state.num_computed += steps
        if state.done_generating:
            done.append(state)
    return done


@dataclass(slots=True)
class PaddedBatch:
    """A rectangular, left-padded batch that prefills together and decodes together.

    Every row occupies `width` prompt slots (its prompt right-aligned after
    `width - prompt_len` pads) and then one slot per decode step, so all rows
    always have the same KV length. Rows that finish keep computing until the
    batch ends (`sample=False`); those tokens are counted as padding.
    """

    rows: list[RequestState]
    width: int
    pad_token_id: int
    prefilled: bool = False

    @staticmethod
    def width_of(rows: list[RequestState]) -> int:
        """The width `rows` would have as one batch: their longest known tokens (prompt + output so far)."""
        return max(r.prompt_len + r.num_output for r in rows)

    @classmethod
    def of(cls, rows: list[RequestState], pad_token_id: int) -> PaddedBatch:
        """Admit `rows` as one batch: each row's `kv_pad_len` is set here. Call it only for rows that are
        admitted (their KV fits); size a candidate batch with `width_of`, which changes nothing."""
        width = cls.width_of(rows)
        for r in rows:
            r.kv_pad_len = width - (r.prompt_len + r.num_output)
        return cls(rows=rows, width=width, pad_token_id=pad_token_id)

    def free(self, blocks: BlockManager) -> None:
        """Give back every row's blocks (a batch keeps its finished rows' KV until it ends)."""
        for row in self.rows:
            blocks.free(row.id)

    def all_done(self) -> bool:
        return all(r.done_generating or r.status.is_final for r in self.rows)

    def next_plan(self, blocks: BlockManager) -> StepPlan:
        """The prefill step first, then one decode step per call."""
        chunks: list[SeqChunk] = []
        pad_tokens = 0
        table_of = blocks.block_table  # immutable snapshots: shared, not copied
        if not self.prefilled:
            for row in self.rows:
                tokens = [self.pad_token_id] * row.kv_pad_len + row.all_token_ids()
                chunks.append(SeqChunk(row.id, tokens, 0, table_of(row.id), sample=True, pad_len=row.kv_pad_len))
                pad_tokens += row.kv_pad_len
                row.pad_tokens += row.kv_pad_len
            return StepPlan(layout="padded", chunks=chunks, pad_tokens=pad_tokens)
        for row in self.rows:  # a decode step, once per output token of the batch: kept lean
            req_id = row.spec.id
            output = row.output_ids
            finished = len(output) >= row.spec.output_len or row.status.is_final  # done_generating or final
            pad = row.kv_pad_len
            chunks.append(SeqChunk(req_id, [output[-1] if output else self.pad_token_id], pad + row.num_computed,
                                   table_of(req_id), not finished, pad))
            if finished:
                pad_tokens += 1
                row.pad_tokens += 1
        return StepPlan(layout="padded", chunks=chunks, pad_tokens=pad_tokens)

    def decode_run_length(self) -> int:
        """Decode steps, starting with the planned one, whose plans differ only by position: until the
        first row still sampling produces its last token (1 before the prefill)."""
        if not self.prefilled:
            return 1
        left = [r.spec.output_len - len(r.output_ids) for r in self.rows
                if not r.status.is_final and len(r.output_ids) < r.spec.output_len]
        return max(1, min(left, default=1))

    def book(self, plan: StepPlan, steps: int = 1) -> list[RequestState]:
        """After a padded step (or `steps` decode steps of one plan): every row advanced (pads for finished
        rows); returns rows newly done."""
        newly_done = []
        for chunk, row in zip(plan.chunks, self.rows):
            if not self.prefilled:
                row.num_computed += chunk.num_tokens - row.kv_pad_len
            else:
                row.num_computed += steps
                if not chunk.sample:
                    row.pad_tokens += steps - 1  # next_plan counted the first step's pad
            if chunk.sample and row.done_generating:
                newly_done.append(row)
        self.prefilled = True
        return newly_done
