"""The work description of a plan matches what the real runner builds for it, group by group."""

from __future__ import annotations

import random

import pytest
import torch

from bsbench.engine.model_info import ModelInfo
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.step_layout import DECODE, FRESH_CAUSAL, FRESH_MASKED, GATHERED, forward_order
from bsbench.model.attention import StepContext
from bsbench.model.kv_cache import KVCache
from bsbench.sim.work import step_work

BS = 4
NUM_BLOCKS = 64
INFO = ModelInfo("t", num_layers=1, num_kv_heads=2, head_dim=4, dtype_bytes=4, max_model_len=512, pad_token_id=0,
                 vocab_size=1000)


def table(end: int, first: int = 0) -> list[int]:
    return [(first + i) % NUM_BLOCKS for i in range(-(-end // BS))]


def runner_groups(plan: StepPlan) -> list[tuple[int, int, int, int, int | None, int | None]]:
    """(start, end, b, tq, gathered slots per row, mask key length) of the runner's attention groups."""
    cache = KVCache(INFO, NUM_BLOCKS, BS, "cpu", torch.float32)
    ctx = StepContext.build(plan.layout, forward_order(plan.layout, plan.chunks), cache, 2, torch.device("cpu"))
    return [(g.start, g.end, g.b, g.tq, None if g.gather is None else g.gather.shape[1] * BS,
             None if g.mask is None else g.mask.shape[-1]) for g in ctx.groups]


def work_groups(plan: StepPlan) -> list[tuple[int, int, int, int, int | None, int | None]]:
    out = []
    for c in step_work(plan, BS).calls:
        out.append((c.row, c.row + c.rows * c.q_len, c.rows, c.q_len, c.kv_len if c.gathers else None,
                    None if c.kind == FRESH_CAUSAL else c.kv_len))
    return out


def test_packed_decode_groups_prefills_and_chunks():
    contexts = [11, 3, 40, 5, 6, 7, 8, 9, 10, 41]  # plan order is shuffled; the runner sorts by context
    chunks = [SeqChunk(f"d{i}", [7], s, table(s + 1, 2 * i)) for i, s in enumerate(contexts)]
    chunks += [SeqChunk("fresh", list(range(4, 10)), 0, table(6)),
               SeqChunk("padded", [0, 0, 5, 6, 7], 0, table(5), sample=True, pad_len=2),
               SeqChunk("later", [8, 9, 10], 9, table(12), sample=False)]
    chunks[1].sample = False
    plan = StepPlan("packed", chunks)
    w = step_work(plan, BS)
    kinds = [(c.kind, c.rows, c.q_len, c.kv_len) for c in w.calls]
    # 8 shortest contexts (3..11 -> 12 slots) form a group; 40 and 41 > 2 x 4 start a new one (42 -> 44 slots)
    assert kinds == [(DECODE, 8, 1, 12), (DECODE, 2, 1, 44), (FRESH_CAUSAL, 1, 6, 6), (FRESH_MASKED, 1, 5, 5),
                     (GATHERED, 1, 3, 12)]
    assert (w.tokens, w.sampled, w.num_seqs) == (24, 11, 13)
    assert w.attn_pairs == 8 * 12 + 2 * 44 + 6 * 7 // 2 + 25 + 3 * 12
    assert w.kv_read_slots == 8 * 12 + 2 * 44 + 12
    assert work_groups(plan) == runner_groups(plan)


def test_padded_prefill_and_decode_rectangles():
    rows = [SeqChunk(f"r{i}", [0] * p + [5] * (7 - p), 0, table(12, 3 * i), True, p) for i, p in enumerate((2, 0, 4))]
    prefill = StepPlan("padded", rows, pad_tokens=6)
    w = step_work(prefill, BS)
    assert [(c.kind, c.rows, c.q_len, c.kv_len) for c in w.calls] == [(FRESH_MASKED, 3, 7, 7)]
    assert (w.tokens, w.sampled, w.pad_tokens, w.attn_pairs, w.kv_read_slots) == (21, 3, 6, 3 * 49, 0)
    assert work_groups(prefill) == runner_groups(prefill)
    decode = StepPlan("padded", [SeqChunk(r.req_id, [9], 9, r.block_table, i != 1, r.pad_len)
                                 for i, r in enumerate(rows)], pad_tokens=1)
    w = step_work(decode, BS)
    # a finished row still computes: 3 tokens, 2 sampled, every row gathers 12 slots (10 rounded to blocks)
    assert [(c.kind, c.rows, c.q_len, c.kv_len) for c in w.calls] == [(GATHERED, 3, 1, 12)]
    assert (w.tokens, w.sampled, w.attn_pairs, w.kv_read_slots) == (3, 2, 36, 36)
    assert work_groups(decode) == runner_groups(decode)


@pytest.mark.parametrize("seed", range(6))
def test_random_packed_plans_match_the_runner(seed):
    rng = random.Random(seed)
    chunks = []
    for i in range(rng.randint(1, 30)):
        kind = rng.random()
        if kind < 0.6:
            start, n = rng.randint(0, 200), 1
        elif kind < 0.8:
            start, n = 0, rng.randint(2, 40)
        else:
            start, n = rng.randint(1, 100), rng.randint(2, 40)
        pad = rng.randint(0, min(start, 5)) if start else (rng.randint(0, n - 1) if rng.random() < 0.3 else 0)
        chunks.append(SeqChunk(f"c{i}", [5] * n, start, table(start + n, 5 * i), rng.random() < 0.8, pad))
    plan = StepPlan("packed", chunks)
    w = step_work(plan, BS)
    assert work_groups(plan) == runner_groups(plan)
    assert w.tokens == plan.num_tokens and w.sampled == sum(c.sample for c in chunks)
