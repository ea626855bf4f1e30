"""The work of one StepPlan exactly as the real runner executes it, as numbers a cost model can price.

Built from the runner's own layout (`engine/step_layout.py`: forward order and
attention calls), so the simulated backend prices the same padded gathers,
rectangles and causal prefills the real runner computes:

- `tokens`: rows through every linear layer, pads and finished padded rows included;
- `sampled`: rows through the LM head (chunks with `sample=True`);
- `calls`: the attention calls; `attn_pairs` sums the (query, key) pairs they compute
  (per head and layer) and `kv_read_slots` the cached KV slots they gather
  (decode groups padded to their longest context, in whole blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bsbench.engine.plan import StepPlan
from bsbench.engine.step_layout import AttnCall, attention_calls, decode_calls, packed_calls, padded_call


@dataclass(slots=True, frozen=True)
class StepWork:
    layout: str
    num_seqs: int
    tokens: int
    sampled: int
    pad_tokens: int
    attn_pairs: int
    kv_read_slots: int
    calls: tuple[AttnCall, ...]

    @property
    def num_calls(self) -> int:
        return len(self.calls)


def step_work(plan: StepPlan, block_size: int) -> StepWork:
    """The work the runner does for `plan` with KV blocks of `block_size` slots."""
    chunks = plan.chunks
    tokens = 0
    sampled = 0
    decode_starts = []
    others = []
    for c in chunks:
        t = len(c.token_ids)
        tokens += t
        sampled += c.sample
        if t == 1:
            decode_starts.append(c.start_pos)
        else:
            others.append(c)
    if plan.layout == "packed":  # the forward order's calls, from the decode rows' sorted starts alone
        calls = packed_calls(sorted(decode_starts), others, block_size)
    else:
        calls = attention_calls(plan.layout, chunks, block_size)
    return _work(plan.layout, len(chunks), tokens, sampled, plan.pad_tokens, calls)


def decode_step_work(plan: StepPlan, shift: int, block_size: int, starts: Sequence[int]) -> StepWork:
    """`step_work` of a plan of 1-token chunks as it is `shift` decode steps later (every chunk `shift` positions
    further on), without building that plan; `starts`: its chunks' start positions in ascending order (packed
    only). Rows, tokens and samples stay; only the attention calls move on."""
    chunks = plan.chunks
    n = len(chunks)
    if plan.layout == "padded":
        calls = [padded_call(n, 1, chunks[0].start_pos + shift, block_size)]
    else:
        calls = decode_calls(starts, block_size, shift)
    return _work(plan.layout, n, n, sum([c.sample for c in chunks]), plan.pad_tokens, calls)


def _work(layout: str, num_seqs: int, tokens: int, sampled: int, pad_tokens: int,
          calls: Sequence[AttnCall]) -> StepWork:
    """A StepWork with the sums of its attention calls."""
    return StepWork(
        layout=layout,
        num_seqs=num_seqs,
        tokens=tokens,
        sampled=sampled,
        pad_tokens=pad_tokens,
        attn_pairs=sum([call.score_pairs for call in calls]),
        kv_read_slots=sum([call.rows * call.kv_len for call in calls if call.gathers]),
        calls=tuple(calls),
    )
