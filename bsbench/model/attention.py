"""Paged attention through transformers' attention-function hook, in pure PyTorch.

`register()` adds `paged_attention` to `transformers.AttentionInterface` under
`ATTN_NAME`; a model switched to it (`model.set_attn_implementation(ATTN_NAME)`)
calls it from every attention layer with q/k/v of the current tokens after
RoPE, plus our per-step `StepContext` passed through the model's forward
kwargs (`bsbench_ctx=`). No mask function is registered on purpose: for an
attention name unknown to `AttentionMaskInterface`, `create_causal_mask`
returns None at once, so transformers builds no mask at all (cheaper than a
registered function returning None, which would still run packed-sequence
detection on the position ids).

Per layer the function writes k/v into the KV cache at `slot_mapping`, then
attends, for each group of sequences, over their cached context gathered
through their block tables. Everything that depends only on the plan (slot
mapping, gather indices, masks) is built once per step in `StepContext.build`,
not per layer. The groups are the attention calls of `step_layout.py` (the
torch-free description the simulated backend prices too):

- all 1-token chunks (decode) of a packed step: ONE padded gather + ONE SDPA
  (split into a few groups of similar context length when the lengths differ
  by more than 2x, so the padded gather stays close to the real context);
- every multi-token chunk (prefill, chunked prefill) of a packed step: one call
  each; a chunk that starts at position 0 attends to its own fresh k/v (no
  gather), and without padding it is a plain `is_causal` call (no mask built);
- a padded step: one rectangular [batch, L] call.

GQA without copying K/V: the G query heads that share a KV head are folded
into the query-length axis ([b, kv_heads, G * tq, d]) with the mask repeated
G times, so SDPA sees as many heads as K/V have.

Masking: a query at KV slot p sees slots k <= p with k >= pad_len (left
padding is stored but never attended by real tokens); a pad token also sees
itself, so no row is fully masked (which would give NaN that could leak through
0 * NaN in later layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F

from bsbench.engine.plan import SeqChunk
from bsbench.engine.step_layout import DECODE, FRESH_CAUSAL, attention_calls
from bsbench.model.kv_cache import KVCache

ATTN_NAME = "bsbench_paged"
CTX_KWARG = "bsbench_ctx"


@dataclass(slots=True)
class AttnGroup:
    """Rows [start, end) of the flattened query tokens, viewed as [b, tq]."""

    start: int
    end: int
    b: int
    tq: int
    gather: torch.Tensor | None  # [b, nblk] KV block ids (Lk = nblk * block_size); None: the group's own fresh k/v
    mask: torch.Tensor | None  # bool [b, 1, G*tq or 1, Lk], True = attend; None: plain causal over fresh k/v


@dataclass(slots=True)
class StepContext:
    """Everything the attention function needs for one step; built once, read by every layer."""

    cache: KVCache
    slot_mapping: torch.Tensor  # [num_tokens] KV slot of every token, in forward order
    groups: list[AttnGroup]
    num_tokens: int
    reads_fresh: bool  # some group attends to its own fresh k/v (needs token-major k/v)

    @staticmethod
    def build(
        layout: str, chunks: list[SeqChunk], cache: KVCache, group_size: int, device: torch.device
    ) -> StepContext:
        """Chunks must be in `step_layout.forward_order`; the groups are `step_layout.attention_calls`."""
        bs = cache.block_size
        groups: list[AttnGroup] = []
        slot_parts: list[torch.Tensor] = []
        for call in attention_calls(layout, chunks, bs):
            part = chunks[call.lo:call.hi]
            b, t = call.rows, call.q_len
            pads = torch.tensor([c.pad_len for c in part], dtype=torch.long)
            if call.kind == DECODE:  # rows of different context lengths: one padded gather
                starts = torch.tensor([c.start_pos for c in part], dtype=torch.long)
                blocks, slots = _tables([c.block_table for c in part], call.kv_len, bs)
                slot_parts.append(slots.gather(1, starts[:, None]).squeeze(1))
                kpos = torch.arange(slots.shape[1])
                mask = (kpos[None, :] <= starts[:, None]) & (
                    (kpos[None, :] >= pads[:, None]) | (kpos[None, :] == starts[:, None]))
                groups.append(AttnGroup(call.row, call.row + b, b, 1, blocks.to(device, non_blocking=True),
                                        mask[:, None, None, :].to(device, non_blocking=True)))
                continue
            start = part[0].start_pos  # every row of a non-decode call has the same start and length
            blocks, slots = _tables([c.block_table for c in part], start + t, bs)
            slot_parts.append(slots[:, start:start + t].reshape(-1))
            if call.kind == FRESH_CAUSAL:  # a whole prompt: causal over its own k/v, no mask
                groups.append(AttnGroup(call.row, call.row + t, 1, t, None, None))
                continue
            qpos = torch.arange(start, start + t)[None, :].expand(b, t)
            mask = _mask(qpos, pads, call.kv_len, group_size, device)
            gather = blocks.to(device, non_blocking=True) if call.gathers else None
            groups.append(AttnGroup(call.row, call.row + b * t, b, t, gather, mask))
        slot_mapping = torch.cat(slot_parts) if len(slot_parts) > 1 else slot_parts[0]
        num_tokens = sum(len(c.token_ids) for c in chunks)
        return StepContext(cache, slot_mapping.to(device, non_blocking=True), groups, num_tokens,
                           any(grp.gather is None for grp in groups))


def _tables(tables: list[Sequence[int]], length: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block ids [b, nblk] covering positions 0..length-1 of each sequence, and their slots [b, nblk*block_size] (CPU).

    Tables shorter than nblk are padded with block 0 (gathered, then masked out).
    """
    nblk = -(-length // block_size)
    rows = [list(tb[:nblk]) if len(tb) >= nblk else [*tb, *[0] * (nblk - len(tb))] for tb in tables]
    blocks = torch.tensor(rows, dtype=torch.long)
    slots = (blocks[:, :, None] * block_size + torch.arange(block_size)).reshape(len(tables), -1)
    return blocks, slots


def _mask(qpos: torch.Tensor, pads: torch.Tensor, lk: int, group_size: int, device: torch.device) -> torch.Tensor:
    """bool [b, 1, G*tq, lk] on `device`: causal, left padding hidden (pads see themselves), repeated per folded head.

    Built on the device from the small position vectors (a padded prefill's mask can be large).
    """
    kpos = torch.arange(lk, device=device)[None, None, :]
    q = qpos.to(device, non_blocking=True)[:, :, None]
    pads = pads.to(device, non_blocking=True)
    allowed = (kpos <= q) & ((kpos >= pads[:, None, None]) | (kpos == q))  # [b, tq, lk]
    b, tq, _ = allowed.shape
    if group_size > 1 and tq > 1:
        allowed = allowed[:, None].expand(b, group_size, tq, lk).reshape(b, group_size * tq, lk)
    return allowed[:, None]


def paged_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: query [B, H, T, D], key/value [B, KVH, T, D] -> ([B, T, H, D], None)."""
    ctx: StepContext | None = kwargs.get(CTX_KWARG)
    if ctx is None:
        raise RuntimeError(f"{ATTN_NAME} attention needs `{CTX_KWARG}=` in the model's forward kwargs")
    layer = cast(int, module.layer_idx)  # set on every attention module by transformers
    bsz, heads, t, d = query.shape
    kvh = key.shape[1]
    g = heads // kvh
    n = bsz * t
    q_tok = query.transpose(1, 2).reshape(n, heads, d)
    fresh = ctx.reads_fresh  # token-major k/v only when a group reads its own
    k_tok = key.transpose(1, 2).reshape(n, kvh, d) if fresh else key
    v_tok = value.transpose(1, 2).reshape(n, kvh, d) if fresh else value
    k_cache = ctx.cache.k[layer]
    v_cache = ctx.cache.v[layer]
    nblocks = ctx.cache.num_blocks
    # cache layout [kv_heads, slots, d]: each head's context is contiguous once gathered
    k_cache.index_copy_(1, ctx.slot_mapping, key.transpose(0, 1).reshape(kvh, n, d))
    v_cache.index_copy_(1, ctx.slot_mapping, value.transpose(0, 1).reshape(kvh, n, d))

    if len(ctx.groups) == 1:
        out = None
    else:
        out = query.new_empty((n, heads, d))
    for grp in ctx.groups:
        b, tq = grp.b, grp.tq
        if grp.mask is None:  # fresh causal chunk: K/V heads repeated (cheap: only this chunk's tokens)
            q = q_tok[grp.start:grp.end].view(b, tq, heads, d).transpose(1, 2)
            k = k_tok[grp.start:grp.end].view(b, tq, kvh, d).transpose(1, 2)
            v = v_tok[grp.start:grp.end].view(b, tq, kvh, d).transpose(1, 2)
            if g > 1:
                k = k.repeat_interleave(g, dim=1)
                v = v.repeat_interleave(g, dim=1)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling)
            o = o.transpose(1, 2).reshape(b * tq, heads, d)
            if out is None:
                out = o
            else:
                out[grp.start:grp.end] = o
            continue
        q = q_tok[grp.start:grp.end].view(b, tq, kvh, g, d)
        q = q.permute(0, 2, 3, 1, 4).reshape(b, kvh, g * tq, d)
        if grp.gather is None:
            k = k_tok[grp.start:grp.end].view(b, tq, kvh, d).transpose(1, 2)
            v = v_tok[grp.start:grp.end].view(b, tq, kvh, d).transpose(1, 2)
        else:
            # whole blocks: per head, one contiguous run of block_size*d values per block id (much faster than per slot)
            idx = grp.gather.view(-1)
            # [b, kvh, Lk, d]
            k = k_cache.view(kvh, nblocks, -1).index_select(1, idx).view(kvh, b, -1, d).transpose(0, 1)
            v = v_cache.view(kvh, nblocks, -1).index_select(1, idx).view(kvh, b, -1, d).transpose(0, 1)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=grp.mask, scale=scaling)
        o = o.view(b, kvh, g, tq, d).permute(0, 3, 1, 2, 4).reshape(b * tq, heads, d)
        if out is None:
            out = o
        else:
            out[grp.start:grp.end] = o
    return cast(torch.Tensor, out).view(bsz, t, heads, d), None  # a step has at least one group


def register() -> str:
    """Register the attention function with transformers (idempotent); returns its name."""
    # lazy: transformers is heavy
    from transformers import AttentionInterface

    AttentionInterface.register(ATTN_NAME, paged_attention)
    return ATTN_NAME
