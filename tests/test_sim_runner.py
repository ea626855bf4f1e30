"""The simulated runner: deterministic tokens and time, the real runner's memory rules, activation OOM."""

from __future__ import annotations

import pytest

from bsbench.engine.clock import VirtualClock
from bsbench.engine.plan import ActivationOOM, SeqChunk, StepPlan
from bsbench.errors import BsbenchError
from bsbench.model.shape import model_shape
from bsbench.sim.backend import open_sim
from bsbench.sim.cost_model import RooflineCostModel
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.memory import free_after_weights, step_activation_bytes
from bsbench.sim.sim_runner import SimRunner
from bsbench.sim.work import step_work

L13B = model_shape("llama2-13b", "float16")
A100 = gpu_preset("a100-40gb")


def plans() -> list[StepPlan]:
    prefill = StepPlan("packed", [SeqChunk(f"r{i}", [5] * (10 + i), 0, [i]) for i in range(4)])
    decode = StepPlan("packed", [SeqChunk(f"r{i}", [7], 10 + i, [i], pad_len=0) for i in range(4)])
    padded = StepPlan("padded", [SeqChunk(f"p{i}", [0] * i + [5] * (8 - i), 0, [10 + i], i != 2, i) for i in range(3)])
    return [prefill, decode, padded]


def runner(kv_blocks: int = 100) -> SimRunner:
    r = SimRunner(L13B, A100, RooflineCostModel(L13B, A100), VirtualClock())
    r.allocate_kv(kv_blocks, 16)
    return r


def test_same_plans_same_tokens_and_times():
    a, b = runner(), runner()
    outs_a = [(a.execute(p), a.clock.now()) for p in plans()]
    outs_b = [(b.execute(p), b.clock.now()) for p in plans()]
    assert [(o.next_tokens, o.forward_s, t) for o, t in outs_a] == [(o.next_tokens, o.forward_s, t) for o, t in outs_b]
    tokens = [tok for o, _ in outs_a for tok in o.next_tokens.values()]
    assert all(0 <= tok < L13B.vocab_size for tok in tokens)
    assert len(set(tokens)) == len(tokens)  # a hash of (request, position): no constant token
    assert "p2" not in outs_a[2][0].next_tokens  # a finished padded row computes but samples nothing


def test_clock_advances_by_the_cost_model():
    r = runner()
    cost = RooflineCostModel(L13B, A100)
    expected = 0.0
    for plan in plans():
        out = r.execute(plan)
        predicted = cost.step_time(step_work(plan, 16))
        expected += predicted
        assert out.forward_s == predicted and out.measured_forward_s is None
        assert r.clock.now() == pytest.approx(expected, rel=1e-12)


def test_malformed_plans_fail_as_on_the_real_runner():
    r = runner(kv_blocks=4)
    with pytest.raises(ValueError, match="outside"):
        r.execute(StepPlan("packed", [SeqChunk("a", [5], 0, [4])]))
    with pytest.raises(ValueError, match="same number"):
        r.execute(StepPlan("padded", [SeqChunk("a", [5, 6], 0, [0]), SeqChunk("b", [5], 0, [1])]))


def test_block_ids_are_checked_whenever_a_table_is_new_or_mutable():
    """The runner skips the id scan only for the very tuple it already checked for that request."""
    r = runner(kv_blocks=4)
    good = (0, 1)
    r.execute(StepPlan("packed", [SeqChunk("a", [5] * 20, 0, good)]))
    r.execute(StepPlan("packed", [SeqChunk("a", [5], 20, good)]))  # the same snapshot: fine
    with pytest.raises(ValueError, match="outside"):  # a new snapshot of the same request is checked again
        r.execute(StepPlan("packed", [SeqChunk("a", [5], 21, (0, 1, 9))]))
    mutable = [0, 1]
    r.execute(StepPlan("packed", [SeqChunk("b", [5] * 20, 0, mutable)]))
    mutable[1] = 7  # a list may change after it was checked: it is scanned every time
    with pytest.raises(ValueError, match="outside"):
        r.execute(StepPlan("packed", [SeqChunk("b", [5], 20, mutable)]))


def test_default_kv_budget_is_vllms_rule():
    sim = open_sim("llama2-13b", "a100-40gb", dtype="float16")
    split = sim.memory
    assert split["rule"] == "vllm" and split["utilization"] == 0.9
    usable = int(A100.memory_bytes * 0.9)
    assert split["kv_cache"] == usable - split["weights"] - split["peak_activations"] - split["non_torch"]
    assert split["weights"] == L13B.weight_bytes and sim.kv_budget_bytes == split["kv_cache"]
    # the reading of vLLM's rule for this pair: about 13,200-13,800 tokens
    assert 13_200 <= sim.num_blocks * 16 <= 14_000
    assert open_sim("llama2-13b", "a100-40gb", dtype="float16", kv_memory=2**30).num_blocks == 2**30 // (819_200 * 16)
    assert open_sim("llama2-13b", "a100-80gb").num_blocks > 3 * sim.num_blocks


def test_memory_user_errors():
    with pytest.raises(BsbenchError, match="do not fit"):
        open_sim("llama2-13b", "l4")  # 26 GB of bf16 weights on a 24 GB card
    with pytest.raises(BsbenchError, match="cannot allocate the KV cache"):
        open_sim("llama2-13b", "a100-40gb", kv_memory=20 * 2**30)
    with pytest.raises(BsbenchError, match="unknown GPU preset"):
        open_sim("tiny", "tpu-v5")


def test_oversized_padded_plan_raises_activation_oom_and_charges_no_time():
    free = free_after_weights(L13B, A100)
    kv_blocks = (free - 2**30) // (819_200 * 16)  # KV takes all but ~1 GiB
    r = runner(kv_blocks)
    small = StepPlan("padded", [SeqChunk(f"s{i}", [5] * 512, 0, list(range(32 * i, 32 * i + 32))) for i in range(8)])
    big = StepPlan("padded", [SeqChunk(f"b{i}", [5] * 1024, 0, list(range(64 * i, 64 * i + 64))) for i in range(16)])
    assert step_activation_bytes(step_work(small, 16), L13B) < r.activation_room < step_activation_bytes(
        step_work(big, 16), L13B)
    r.execute(small)
    before = r.clock.now()
    with pytest.raises(ActivationOOM, match="simulated out of memory on a100-40gb"):
        r.execute(big)
    assert r.clock.now() == before
