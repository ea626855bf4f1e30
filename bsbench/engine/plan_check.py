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
                  checked: dict[str, Sequence[int]] | None = None, run_steps: int = 1) -> list[SeqChunk]:
    """Cheap integrity checks of a plan; returns its chunks. ValueError means a policy bug.

    `checked` (req_id -> the tuple table whose ids were last found in range) skips the id scan
    of a table seen before; the caller keeps it between plans of one block manager.
    `run_steps` > 1 checks a decode run in one pass: the plan and its `run_steps - 1` next steps, every chunk
    one position further each step. Only the reach checks (max_model_len, table coverage) depend on the
    position, and they only tighten as it grows, so the last step's reach bounds the run.
    """
    chunks = plan.chunks
    if plan.layout not in ("packed", "padded"):
        raise ValueError(f"unknown plan layout {plan.layout!r}")
    if not chunks:
        raise ValueError("empty step plan")
    further = run_steps - 1
    seen: set[str] = set()
    for c in chunks:
        req_id = c.req_id
        t = len(c.token_ids)
        if t == 0:
            raise ValueError(f"chunk of {req_id} has no tokens")
        if req_id in seen:
            raise ValueError(f"request {req_id} appears twice in one plan")
        seen.add(req_id)
        start, pad = c.start_pos, c.pad_len
        end = start + t
        if start < 0 or pad < 0 or pad >= end:
            raise ValueError(f"chunk of {req_id}: bad start_pos={start} / pad_len={pad} for {t} tokens")
        reach = end + further
        if reach - pad > max_model_len:
            raise ValueError(f"chunk of {req_id} reaches position {reach - pad} > max_model_len {max_model_len}")
        table = c.block_table
        if len(table) * block_size < reach:
            raise ValueError(
                f"block table of {req_id} ({len(table)} blocks of {block_size}) does not cover slot {reach - 1}"
            )
        if checked is not None and checked.get(req_id) is table:
            continue
        if table and (min(table) < 0 or max(table) >= num_blocks):
            raise ValueError(f"block table of {req_id} has a block id outside 0..{num_blocks - 1}")
        if checked is not None and type(table) is tuple:
            checked[req_id] = table
    if plan.layout == "padded":
        t0, s0 = len(chunks[0].token_ids), chunks[0].start_pos
        for c in chunks:
            if len(c.token_ids) != t0 or c.start_pos != s0:
                raise ValueError("padded plan: every row needs the same number of tokens and start_pos")
    return chunks
