"""Integrity checks of a StepPlan against the KV cache geometry, without torch.

The real runner and the simulated one call the same checks, so a policy bug
(a plan that does not describe real work) fails the same way on both.
Given a `checked` memo, `validate_plan` gives the same guarantees step after step
without rescanning every block table: a table is the block manager's immutable
tuple, so one whose ids were checked for a request needs no second look until
the request's table is replaced (a list, which could change, is always scanned).
"""

from __future__ import annotations

from collections.abc import Sequence

from bsbench.engine.plan import SeqChunk, StepPlan


def validate_plan(plan: StepPlan, block_size: int, num_blocks: int, max_model_len: int,
                  checked: dict[str, Sequence[int]] | None = None) -> list[SeqChunk]:
    """Cheap integrity checks of a plan; returns its chunks. ValueError means a policy bug.

    `checked` (req_id -> the tuple table whose ids were last found in range) skips the id scan
    of a table seen before; the caller keeps it between plans of one block manager.
    """
    chunks = plan.chunks
    if plan.layout not in ("packed", "padded"):
        raise ValueError(f"unknown plan layout {plan.layout!r}")
    if not chunks:
        raise ValueError("empty step plan")
    seen: set[str] = set()
    for c in chunks:
        t = len(c.token_ids)
        if t == 0:
            raise ValueError(f"chunk of {c.req_id} has no tokens")
        if c.req_id in seen:
            raise ValueError(f"request {c.req_id} appears twice in one plan")
        seen.add(c.req_id)
        end = c.start_pos + t
        if c.start_pos < 0 or c.pad_len < 0 or c.pad_len >= end:
            raise ValueError(f"chunk of {c.req_id}: bad start_pos={c.start_pos} / pad_len={c.pad_len} for {t} tokens")
        if end - c.pad_len > max_model_len:
            raise ValueError(f"chunk of {c.req_id} reaches position {end - c.pad_len} > max_model_len {max_model_len}")
        if len(c.block_table) * block_size < end:
            raise ValueError(
                f"block table of {c.req_id} ({len(c.block_table)} blocks of {block_size}) does not cover slot {end - 1}"
            )
        table = c.block_table
        if checked is not None and checked.get(c.req_id) is table:
            continue
        if table and (min(table) < 0 or max(table) >= num_blocks):
            raise ValueError(f"block table of {c.req_id} has a block id outside 0..{num_blocks - 1}")
        if checked is not None and type(table) is tuple:
            checked[c.req_id] = table
    if plan.layout == "padded":
        t0, s0 = len(chunks[0].token_ids), chunks[0].start_pos
        for c in chunks:
            if len(c.token_ids) != t0 or c.start_pos != s0:
                raise ValueError("padded plan: every row needs the same number of tokens and start_pos")
    return chunks
