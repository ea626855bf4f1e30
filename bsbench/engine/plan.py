"""The step plan a scheduler hands to the model runner, and what the runner returns.

The plan is the whole contract between policy and runner: the scheduler decides
who runs and which KV blocks they use; the runner only computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Layout = Literal["packed", "padded"]


@dataclass(slots=True)
class SeqChunk:
    """Tokens of one sequence to compute in this step.

    - `token_ids` are written to KV slots `start_pos .. start_pos + len - 1` of the
      sequence, addressed through `block_table` (slot = block * block_size + offset).
    - `pad_len`: the first `pad_len` KV slots of the sequence hold left padding.
      They are really computed and stored but masked out of attention, and token
      positions (RoPE) count from the first real token.
    - `sample`: return the next token after the last of `token_ids` (the last
      prefill chunk or a decode step). A padded row whose request already
      finished still computes but has `sample=False`.
    """

    req_id: str
    token_ids: list[int]
    start_pos: int
    block_table: Sequence[int]  # the block manager's immutable tuple; never mutated after the plan is built
    sample: bool = True
    pad_len: int = 0

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(slots=True)
class StepPlan:
    """One forward pass.

    `packed`: chunks of any lengths concatenated into one forward (prefill and
    decode may mix). `padded`: a rectangular batch; every chunk has the same
    number of tokens and the same `start_pos` (rows are left-padded by the
    scheduler, pad ids included in `token_ids`).
    `pad_tokens` counts the tokens in this plan computed only as padding or for
    rows that are already finished; it is reported as waste.
    """

    layout: Layout
    chunks: list[SeqChunk]
    pad_tokens: int = 0

    @property
    def num_tokens(self) -> int:
        return sum([len(c.token_ids) for c in self.chunks])


class ActivationOOM(RuntimeError):
    """A runner's signal that a plan could not execute because the device ran out of memory
    for the step's activations (KV blocks are the block manager's business, never this).
    The engine fails the plan's requests with reason "oom" and records an OOM event."""


@dataclass(slots=True)
class StepOutput:
    """The runner's answer: the next token of every chunk with `sample=True`.

    `forward_s` is the forward time the clock was charged: measured on a wall clock,
    predicted by the cost model on a virtual clock. A real runner on a virtual clock
    also reports what it measured: `measured_forward_s` (the forward alone, as
    `forward_s` on a wall clock) and `measured_step_s` (the whole `execute` call);
    None elsewhere.
    """

    next_tokens: dict[str, int] = field(default_factory=dict)
    forward_s: float = 0.0
    measured_forward_s: float | None = None
    measured_step_s: float | None = None
