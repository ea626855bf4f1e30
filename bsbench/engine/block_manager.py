"""KV block manager: owns block ids only, never tensors.

Capacity (`num_blocks`) comes from a real memory budget (see kv_budget.py); the
runner allocates K/V tensors for exactly that many blocks, so a block id handed
out here is real memory. Usage can never pass the budget: `allocate` raises
rather than over-commit, and callers ask `can_allocate` first.

A block table is an immutable tuple, replaced (never changed) when the request
grows: a plan can share it without a copy, and whoever holds it never sees it
change later.
"""

from __future__ import annotations

import math
from collections import deque
from itertools import islice


def blocks_for_tokens(num_tokens: int, block_size: int) -> int:
    """Whole blocks needed to hold `num_tokens` KV slots."""
    return math.ceil(num_tokens / block_size) if num_tokens > 0 else 0


class OutOfBlocks(RuntimeError):
    """Raised when an allocation would pass the budget; policies should check first."""


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks <= 0 or block_size <= 0:
            raise ValueError("num_blocks and block_size must be positive")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self._free: deque[int] = deque(range(num_blocks))
        self._owned: dict[str, tuple[int, ...]] = {}

    # --- queries -------------------------------------------------------------
    def blocks_for_tokens(self, num_tokens: int) -> int:
        return blocks_for_tokens(num_tokens, self.block_size)

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return self.num_blocks - len(self._free)

    def block_table(self, req_id: str) -> tuple[int, ...]:
        """The request's blocks in order: an immutable snapshot, replaced when the table grows."""
        return self._owned.get(req_id, ())

    def num_blocks_of(self, req_id: str) -> int:
        return len(self._owned.get(req_id, ()))

    def next_free(self, num_blocks: int) -> tuple[int, ...]:
        """The ids the next `num_blocks` single-block allocations will hand out, in order (changes nothing)."""
        return tuple(islice(self._free, num_blocks))

    def can_allocate(self, num_blocks: int) -> bool:
        return num_blocks <= len(self._free)

    def blocks_needed(self, req_id: str, total_tokens: int) -> int:
        """Extra blocks `req_id` needs to hold `total_tokens` tokens in KV."""
        return max(0, self.blocks_for_tokens(total_tokens) - self.num_blocks_of(req_id))

    # --- mutations -----------------------------------------------------------
    def allocate(self, req_id: str, num_blocks: int) -> tuple[int, ...]:
        """Append `num_blocks` blocks to `req_id`'s table; returns the whole (new) table."""
        if num_blocks > len(self._free):
            raise OutOfBlocks(f"asked for {num_blocks} blocks, {len(self._free)} free")
        pop = self._free.popleft
        table = self._owned.get(req_id, ()) + tuple(pop() for _ in range(num_blocks))
        self._owned[req_id] = table
        return table

    def ensure(self, req_id: str, total_tokens: int) -> bool:
        """Grow `req_id`'s table to hold `total_tokens`; False (and no change) if it does not fit."""
        return self.grown_table(req_id, total_tokens) is not None

    def grown_table(self, req_id: str, total_tokens: int) -> tuple[int, ...] | None:
        """`ensure`, returning the table that holds `total_tokens` (None, and no change, if it does not fit)."""
        table = self._owned.get(req_id)
        if table is not None and total_tokens <= len(table) * self.block_size:
            return table  # the common case (a decode step inside its last block): nothing to compute
        need = self.blocks_needed(req_id, total_tokens)
        if need > len(self._free):
            return None
        if need:
            return self.allocate(req_id, need)
        if table is None:
            table = self._owned[req_id] = ()
        return table

    def free(self, req_id: str) -> int:
        """Return all of `req_id`'s blocks; returns how many were freed."""
        table = self._owned.pop(req_id, ())
        self._free.extend(table)
        return len(table)
