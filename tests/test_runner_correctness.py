"""The runner's generated tokens equal the greedy oracle (tests/hf_reference.py) on each prompt alone.

Tiny preset, fp32, dummy weights seed 0, CPU. Plans are built by hand with a
real BlockManager, covering every way a scheduler drives the runner.
"""

from __future__ import annotations

import copy
import random

import pytest
import torch

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.kv_budget import kv_bytes_per_block
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.errors import BsbenchError
from bsbench.model.attention import ATTN_NAME
from bsbench.model.loader import load_model
from bsbench.model.runner import ModelRunner
from tests.hf_reference import greedy_argmax

BLOCK = 16
NUM_BLOCKS = 96
N_REF = 10  # tokens of reference generation per prompt
_rng = random.Random(0)
# one pool of prompts (random ids, lengths 5..60) shared by all tests, so each reference is generated once
POOL = [[_rng.randrange(3, 32000) for _ in range(n)] for n in (5, 12, 17, 23, 33, 41, 52, 60)]


@pytest.fixture(scope="module")
def tiny():
    model, info = load_model("tiny", "dummy", "cpu", "float32", 0)
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("sdpa")
    assert model.config._attn_implementation == ATTN_NAME
    assert reference.config._attn_implementation == "sdpa"
    cache: dict[tuple[int, ...], list[int]] = {}

    def expected(prompt: list[int], n: int) -> list[int]:
        """The oracle (a plain argmax loop, this prompt alone) with a stock attention implementation."""
        assert n <= N_REF
        key = tuple(prompt)
        if key not in cache:
            cache[key] = greedy_argmax(reference, prompt, N_REF)
        return cache[key][:n]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: one thread per process avoids OpenMP stalls under load
    yield model, info, expected
    torch.set_num_threads(threads)


@pytest.fixture()
def runner(tiny):
    model, info, _ = tiny
    r = ModelRunner(model, info, "cpu", torch.float32)
    r.allocate_kv(NUM_BLOCKS, BLOCK)
    return r


def prompts(lengths: list[int]) -> list[list[int]]:
    """Prompts of the pool by length."""
    by_len = {len(p): p for p in POOL}
    return [by_len[n] for n in lengths]


def chunk(bm: BlockManager, rid: str, tokens: list[int], start: int, sample: bool = True, pad: int = 0) -> SeqChunk:
    assert bm.ensure(rid, start + len(tokens))
    return SeqChunk(rid, list(tokens), start, list(bm.block_table(rid)), sample, pad)


def test_packed_several_prefills_then_decode(tiny, runner):
    _, _, expected = tiny
    ps = prompts([5, 17, 33, 60])
    n = 10
    bm = BlockManager(NUM_BLOCKS, BLOCK)
    out = runner.execute(StepPlan("packed", [chunk(bm, str(i), p, 0) for i, p in enumerate(ps)]))
    assert out.forward_s > 0
    gen = {str(i): [out.next_tokens[str(i)]] for i in range(len(ps))}
    for s in range(n - 1):
        plan = StepPlan("packed", [chunk(bm, str(i), [gen[str(i)][-1]], len(p) + s) for i, p in enumerate(ps)])
        out = runner.execute(plan)
        for rid, tok in out.next_tokens.items():
            gen[rid].append(tok)
    for i, p in enumerate(ps):
        assert gen[str(i)] == expected(p, n), f"prompt {i} (len {len(p)})"


def test_packed_mixed_prefill_decode_and_chunked_prefill(tiny, runner):
    """Requests join while others decode; one 60-token prompt is prefilled over 3 steps."""
    _, _, expected = tiny
    ps = prompts([12, 41, 60, 5])
    n = 8
    bm = BlockManager(NUM_BLOCKS, BLOCK)
    gen: dict[str, list[int]] = {}
    computed: dict[str, int] = {}  # tokens of prompt+output in KV
    joins = {0: [0], 1: [1, 2], 2: [], 3: [3]}  # step -> requests whose prefill starts
    chunked = {"2": [20, 20, 20]}  # request 2's prefill in three chunks
    pending_chunks: dict[str, list[int]] = {}
    step = 0
    while step < 40 and any(len(gen.get(str(i), [])) < n for i in range(len(ps))):
        items: list[SeqChunk] = []
        for i in joins.get(step, []):
            rid = str(i)
            pending_chunks[rid] = list(chunked.get(rid, [len(ps[i])]))
            computed[rid] = 0
            gen[rid] = []
        for rid in list(gen):
            p = ps[int(rid)]
            if pending_chunks.get(rid):
                size = pending_chunks[rid].pop(0)
                start = computed[rid]
                items.append(chunk(bm, rid, p[start:start + size], start, sample=not pending_chunks[rid]))
                computed[rid] += size
            elif 0 < len(gen[rid]) < n:
                items.append(chunk(bm, rid, [gen[rid][-1]], computed[rid]))
                computed[rid] += 1
        random.Random(step).shuffle(items)  # order in the plan must not matter
        out = runner.execute(StepPlan("packed", items))
        assert set(out.next_tokens) == {c.req_id for c in items if c.sample}
        for rid, tok in out.next_tokens.items():
            gen[rid].append(tok)
        step += 1
    for i, p in enumerate(ps):
        assert gen[str(i)] == expected(p, n), f"prompt {i} (len {len(p)})"


def test_recompute_after_preemption(tiny, runner):
    _, _, expected = tiny
    a, b = prompts([23, 33])
    n = 10
    bm = BlockManager(NUM_BLOCKS, BLOCK)
    out = runner.execute(StepPlan("packed", [chunk(bm, "a", a, 0), chunk(bm, "b", b, 0)]))
    gen = {"a": [out.next_tokens["a"]], "b": [out.next_tokens["b"]]}
    for s in range(4):
        out = runner.execute(StepPlan("packed", [chunk(bm, "a", [gen["a"][-1]], len(a) + s),
                                                 chunk(bm, "b", [gen["b"][-1]], len(b) + s)]))
        for rid, tok in out.next_tokens.items():
            gen[rid].append(tok)
    # preempt "a": its blocks go back (and are reused by someone else), then "a" is recomputed
    bm.free("a")
    filler = prompts([41])[0]
    runner.execute(StepPlan("packed", [chunk(bm, "filler", filler, 0, sample=False),
                                       chunk(bm, "b", [gen["b"][-1]], len(b) + 4)]))
    bm.free("b")
    bm.free("filler")
    redo = a + gen["a"]
    out = runner.execute(StepPlan("packed", [chunk(bm, "x", prompts([17])[0], 0), chunk(bm, "a", redo, 0)]))
    gen["a"].append(out.next_tokens["a"])
    while len(gen["a"]) < n:
        pos = len(a) + len(gen["a"]) - 1
        out = runner.execute(StepPlan("packed", [chunk(bm, "a", [gen["a"][-1]], pos)]))
        gen["a"].append(out.next_tokens["a"])
    assert gen["a"] == expected(a, n)


def _padded_prefill(bm: BlockManager, ps: list[list[int]], pad_id: int, total: int) -> tuple[list[SeqChunk], int]:
    length = max(len(p) for p in ps)
    rows = []
    for i, p in enumerate(ps):
        pad = length - len(p)
        assert bm.ensure(str(i), total)  # static batching reserves the whole batch up front
        rows.append(SeqChunk(str(i), [pad_id] * pad + p, 0, list(bm.block_table(str(i))), True, pad))
    return rows, length


def test_padded_left_padding_with_finished_rows(tiny, runner):
    _, info, expected = tiny
    ps = prompts([5, 33, 17, 52])
    outs = [3, 10, 6, 10]  # rows 0 and 2 finish early and keep computing with sample=False
    bm = BlockManager(NUM_BLOCKS, BLOCK)
    rows, length = _padded_prefill(bm, ps, info.pad_token_id, 52 + 10)
    out = runner.execute(StepPlan("padded", rows, pad_tokens=sum(r.pad_len for r in rows)))
    gen = {str(i): [out.next_tokens[str(i)]] for i in range(len(ps))}
    for s in range(max(outs) - 1):
        batch = []
        for i in range(len(ps)):
            rid = str(i)
            alive = len(gen[rid]) < outs[i]
            batch.append(SeqChunk(rid, [gen[rid][-1]], length + s, list(bm.block_table(rid)), alive, rows[i].pad_len))
        out = runner.execute(StepPlan("padded", batch))
        assert set(out.next_tokens) == {c.req_id for c in batch if c.sample}
        for rid, tok in out.next_tokens.items():
            gen[rid].append(tok)
    for i, p in enumerate(ps):
        assert gen[str(i)] == expected(p, outs[i]), f"row {i} (len {len(p)}, pad {rows[i].pad_len})"


def test_padded_prefill_then_packed_decode(tiny, runner):
    """The bucket scheduler's pattern: padded prefill, then packed decode using pad_len, mixed with a new prefill."""
    _, info, expected = tiny
    ps = prompts([12, 41, 23])
    late = prompts([60])[0]
    n = 9
    bm = BlockManager(NUM_BLOCKS, BLOCK)
    rows, length = _padded_prefill(bm, ps, info.pad_token_id, 41)
    out = runner.execute(StepPlan("padded", rows))
    gen = {str(i): [out.next_tokens[str(i)]] for i in range(len(ps))}
    for s in range(n - 1):
        items = [chunk(bm, str(i), [gen[str(i)][-1]], length + s, pad=rows[i].pad_len) for i in range(len(ps))]
        if s == 2:
            items.append(chunk(bm, "late", late, 0))
            gen["late"] = []
        elif s > 2:
            items.append(chunk(bm, "late", [gen["late"][-1]], len(late) + s - 3))
        out = runner.execute(StepPlan("packed", items))
        for rid, tok in out.next_tokens.items():
            gen[rid].append(tok)
    for i, p in enumerate(ps):
        assert gen[str(i)] == expected(p, n), f"row {i}"
    assert gen["late"] == expected(late, len(gen["late"]))


def test_kv_cache_size_and_budget(tiny):
    model, info, _ = tiny
    r = ModelRunner(model, info, "cpu", torch.float32)
    cache = r.allocate_kv(10, BLOCK)
    assert cache.nbytes == 10 * kv_bytes_per_block(info, BLOCK) == r.kv_bytes
    assert cache.k[0].shape == (info.num_kv_heads, 10 * BLOCK, info.head_dim)
    with pytest.raises(BsbenchError, match="cannot allocate the KV cache"):
        r.allocate_kv(10**9, BLOCK)  # ~60 TiB: a user error naming the size, not a traceback


def test_malformed_plan_raises_value_error(tiny, runner):
    bm = BlockManager(NUM_BLOCKS, BLOCK)
    c = chunk(bm, "a", list(range(3, 20)), 0)  # 17 tokens, 2 blocks
    bad = SeqChunk("a", c.token_ids, 0, c.block_table[:1])
    with pytest.raises(ValueError, match="does not cover"):
        runner.execute(StepPlan("packed", [bad]))
    with pytest.raises(ValueError, match="outside"):
        runner.execute(StepPlan("packed", [SeqChunk("a", [5], 0, [NUM_BLOCKS + 3])]))
    with pytest.raises(ValueError, match="same number"):
        runner.execute(StepPlan("padded", [SeqChunk("a", [5, 6], 0, [0]), SeqChunk("b", [5], 0, [1])]))
    with pytest.raises(ValueError, match="twice"):
        runner.execute(StepPlan("packed", [SeqChunk("a", [5], 0, [0]), SeqChunk("a", [5], 1, [0])]))


def test_device_oom_becomes_activation_oom(tiny, runner, monkeypatch):
    from bsbench.model.runner import ActivationOOM

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runner, "decoder", boom)
    with pytest.raises(ActivationOOM, match="out of memory"):
        runner.execute(StepPlan("packed", [SeqChunk("a", [5, 6], 0, [0])]))

    def other(*args, **kwargs):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(runner, "decoder", other)
    with pytest.raises(RuntimeError, match="a real bug"):  # nothing else is swallowed or renamed
        runner.execute(StepPlan("packed", [SeqChunk("a", [5, 6], 0, [0])]))


def test_decode_split_into_context_length_groups(tiny, runner, monkeypatch):
    """Decode chunks of very different context lengths go to several gather groups; results unchanged."""
    from bsbench.engine import step_layout

    monkeypatch.setattr(step_layout, "DECODE_MIN_GROUP", 2)
    _, _, expected = tiny
    n = 8
    bm = BlockManager(NUM_BLOCKS, BLOCK)
    out = runner.execute(StepPlan("packed", [chunk(bm, str(i), p, 0) for i, p in enumerate(POOL)]))
    gen = {rid: [tok] for rid, tok in out.next_tokens.items()}
    for s in range(n - 1):
        plan = StepPlan("packed", [chunk(bm, str(i), [gen[str(i)][-1]], len(p) + s) for i, p in enumerate(POOL)][::-1])
        ctx_groups = step_layout.decode_splits(sorted(plan.chunks, key=lambda c: c.start_pos), len(plan.chunks))
        assert len(ctx_groups) >= 3
        out = runner.execute(plan)
        for rid, tok in out.next_tokens.items():
            gen[rid].append(tok)
    for i, p in enumerate(POOL):
        assert gen[str(i)] == expected(p, n), f"prompt {i} (len {len(p)})"
