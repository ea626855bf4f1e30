"""How the runner lays out one step, without torch: the forward order of the chunks and the attention calls.

The runner (runner.py) and the attention context (attention.py) build their tensors
from these shapes, and the simulated backend (bsbench/sim/work.py) prices the same
shapes, so a change to the grouping changes both.

Packed layout: 1-token chunks (decode) come first, sorted by context length, then the
multi-token chunks in plan order (the order inside a forward does not matter to the
model). Attention calls per step:

- `DECODE`: the 1-token chunks, split into groups of similar context length (a new
  group starts once a group holds `DECODE_MIN_GROUP` rows and the next context is
  more than `DECODE_SPLIT_RATIO` x the group's shortest); each group is one padded
  gather of its rows' cached K/V up to its longest context, in whole blocks;
- `FRESH_CAUSAL`: a whole unpadded prompt (start 0, no padding) attends causally to
  its own fresh k/v, no mask: a causal kernel computes the lower triangle only;
- `FRESH_MASKED`: a whole left-padded prompt, or a padded prefill rectangle: its own
  fresh k/v under an explicit mask (the whole rectangle is computed);
- `GATHERED`: a later chunk of a prompt, or a padded step after the prefill: the
  cached context is gathered in whole blocks and attended under a mask.

Padded layout: one call over the [batch, L] rectangle (`FRESH_MASKED` when the rows
start at position 0, else `GATHERED`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from bsbench.engine.plan import SeqChunk

DECODE = "decode"
FRESH_CAUSAL = "fresh_causal"
FRESH_MASKED = "fresh_masked"
GATHERED = "gathered"

DECODE_SPLIT_RATIO = 2.0
DECODE_MIN_GROUP = 8


@dataclass(slots=True, frozen=True)
class AttnCall:
    """One attention call: `rows` sequences of `q_len` queries each over `kv_len` keys each.

    `lo:hi` are the call's chunks in forward order; `row` is its first query token in the
    flattened forward. For gathered calls `kv_len` is the gathered length (the longest
    context of the call rounded up to whole blocks); for fresh calls it is `q_len`.
    """

    kind: str
    lo: int
    hi: int
    row: int
    rows: int
    q_len: int
    kv_len: int

    @property
    def gathers(self) -> bool:
        """Reads its context from the KV cache (else attends to its own fresh k/v)."""
        return self.kind in (DECODE, GATHERED)

    @property
    def score_pairs(self) -> int:
        """(query, key) pairs the kernel computes, per head and layer."""
        if self.kind == FRESH_CAUSAL:
            return self.rows * self.q_len * (self.q_len + 1) // 2
        return self.rows * self.q_len * self.kv_len


def whole_blocks(length: int, block_size: int) -> int:
    """`length` KV slots rounded up to whole blocks, in slots (what a block-table gather reads)."""
    return -(-length // block_size) * block_size


_start_pos = attrgetter("start_pos")


def forward_order(layout: str, chunks: list[SeqChunk]) -> list[SeqChunk]:
    """The chunks in the order the runner puts them in the forward (see the module docstring)."""
    if layout != "packed":
        return chunks
    decode = sorted([c for c in chunks if len(c.token_ids) == 1], key=_start_pos)
    return decode + [c for c in chunks if len(c.token_ids) != 1]


def decode_splits(chunks: list[SeqChunk], nd: int) -> list[int]:
    """End indices of the decode groups among the first `nd` chunks (ascending context length expected)."""
    return split_ends([c.start_pos for c in chunks[:nd]])


def split_ends(starts: Sequence[int], shift: int = 0) -> list[int]:
    """`decode_splits` of 1-token chunks at positions `starts` (ascending) moved on by `shift`: the one place of
    the split rule. A group starting at lo ends before the first row j >= lo + DECODE_MIN_GROUP whose context
    passes DECODE_SPLIT_RATIO x the group's shortest; contexts ascend, so that row is found by bisection."""
    ends: list[int] = []
    n = len(starts)

    def context(start: int) -> int:
        return start + shift + 1

    lo = 0
    while lo + DECODE_MIN_GROUP < n:
        lo = bisect_right(starts, DECODE_SPLIT_RATIO * context(starts[lo]), lo + DECODE_MIN_GROUP, n, key=context)
        if lo == n:
            break
        ends.append(lo)
    if n:
        ends.append(n)
    return ends


def next_decode_change(starts: Sequence[int], shift: int, block_size: int) -> int:
    """For 1-token chunks at positions `starts` (ascending) moved on by `shift`, all alike: the least larger
    shift at which their decode calls may differ. Until then the groups stay (a split k after a group start
    lo holds while starts[k] + shift + 1 > 2 (starts[lo] + shift + 1), i.e. shift < starts[k] - 2 starts[lo]
    - 1, and a pair that does not split never will) and so do their gathered lengths (each group's longest
    context, in whole blocks)."""
    change = shift + block_size  # any group's gathered length changes within one block
    lo = 0
    for hi in split_ends(starts, shift):
        longest = starts[hi - 1] + shift + 1
        change = min(change, shift + whole_blocks(longest, block_size) - longest + 1)
        if hi < len(starts):
            change = min(change, math.ceil((starts[hi] + 1 - DECODE_SPLIT_RATIO * (starts[lo] + 1))
                                           / (DECODE_SPLIT_RATIO - 1)))
        lo = hi
    return max(change, shift + 1)


def decode_calls(starts: Sequence[int], block_size: int, shift: int = 0) -> list[AttnCall]:
    """The `DECODE` calls of 1-token chunks at positions `starts` (ascending) moved on by `shift`, the first
    chunks of the forward."""
    calls: list[AttnCall] = []
    lo = 0
    for hi in split_ends(starts, shift):
        calls.append(AttnCall(DECODE, lo, hi, lo, hi - lo, 1, whole_blocks(starts[hi - 1] + shift + 1, block_size)))
        lo = hi
    return calls


def packed_calls(decode_starts: Sequence[int], others: Sequence[SeqChunk], block_size: int) -> list[AttnCall]:
    """The attention calls of a packed step: its 1-token chunks at `decode_starts` (ascending), then the
    multi-token chunks `others` in plan order (see the module docstring)."""
    calls = decode_calls(decode_starts, block_size)
    row = nd = len(decode_starts)
    for i, c in enumerate(others, nd):
        t = len(c.token_ids)
        if c.start_pos == 0:
            calls.append(AttnCall(FRESH_CAUSAL if c.pad_len == 0 else FRESH_MASKED, i, i + 1, row, 1, t, t))
        else:
            calls.append(AttnCall(GATHERED, i, i + 1, row, 1, t, whole_blocks(c.start_pos + t, block_size)))
        row += t
    return calls


def padded_call(rows: int, q_len: int, start_pos: int, block_size: int) -> AttnCall:
    """The one attention call of a padded step: `rows` rows of `q_len` tokens each, all at `start_pos`."""
    if start_pos == 0:
        return AttnCall(FRESH_MASKED, 0, rows, 0, rows, q_len, q_len)
    return AttnCall(GATHERED, 0, rows, 0, rows, q_len, whole_blocks(start_pos + q_len, block_size))


def attention_calls(layout: str, ordered: list[SeqChunk], block_size: int) -> list[AttnCall]:
    """The attention calls of a step whose chunks are already in `forward_order`."""
    if layout == "padded":
        return [padded_call(len(ordered), len(ordered[0].token_ids), ordered[0].start_pos, block_size)]
    nd = 0
    while nd < len(ordered) and len(ordered[nd].token_ids) == 1:
        nd += 1
    return packed_calls([c.start_pos for c in ordered[:nd]], ordered[nd:], block_size)
