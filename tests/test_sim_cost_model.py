"""The roofline cost model: operator groups against hand computations, the smooth corner, the engine overhead."""

from __future__ import annotations

import math

import pytest

from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.errors import BsbenchError
from bsbench.model.shape import model_shape
from bsbench.sim.cost_model import (
    ATTENTION_DECODE_BANDWIDTH_EFFICIENCY,
    LINEAR_BANDWIDTH_EFFICIENCY,
    LINEAR_FLOP_EFFICIENCY,
    RooflineCostModel,
    corner,
)
from bsbench.sim.engine_overhead import PRESETS, engine_overhead
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.work import step_work

L13B = model_shape("llama2-13b", "float16")
A100 = gpu_preset("a100-40gb")
NONE = engine_overhead("none")
DEFAULT = RooflineCostModel(L13B, A100)


def decode(batch: int, context: int) -> StepPlan:
    return StepPlan("packed", [SeqChunk(f"r{i}", [5], context, list(range(context // 16 + 1))) for i in range(batch)])


def prefill(n: int) -> StepPlan:
    return StepPlan("packed", [SeqChunk("p", [5] * n, 0, list(range(-(-n // 16))))])


def test_smooth_corner_is_root_two_at_the_crossover_and_the_max_far_from_it():
    assert corner(1.0, 1.0) == pytest.approx(math.sqrt(2))
    assert corner(1.0, 0.01) == pytest.approx(1.0, rel=1e-4)
    assert corner(0.0, 3.0) == 3.0


def test_linear_group_against_a_hand_computation():
    model = RooflineCostModel(L13B, A100, overhead=NONE)
    # one decode row: bandwidth-bound, the 12.7 B matmul weights (26 GB less embedding and LM head) read once
    weights = L13B.matmul_params * 2
    hand_memory = weights / (A100.bandwidth * LINEAR_BANDWIDTH_EFFICIENCY)
    assert model.linear_s(1) == pytest.approx(hand_memory, rel=0.01)
    # 4,096 rows: compute-bound, 2 x rows x weights at the linear efficiency
    hand_compute = 2 * 4096 * L13B.matmul_params / (A100.peak_flops * LINEAR_FLOP_EFFICIENCY)
    assert model.linear_s(4096) == pytest.approx(hand_compute, rel=0.03)
    assert model.linear_s(4096) > hand_compute  # the smooth corner never undercuts the max


def test_decode_attention_reads_the_gathered_kv_at_its_bandwidth():
    model = RooflineCostModel(L13B, A100, overhead=NONE)
    work = step_work(decode(16, 1024), 16)
    kv_read = sum(c.rows * c.kv_len for c in work.calls) * L13B.info.kv_bytes_per_token
    hand = kv_read / (A100.bandwidth * ATTENTION_DECODE_BANDWIDTH_EFFICIENCY)
    assert model.attention_s(work.calls) == pytest.approx(hand, rel=0.05)


def test_groups_sum_to_the_step_and_the_lm_head_prices_sampled_rows_only():
    work = step_work(prefill(512), 16)
    groups = DEFAULT.group_times(work)
    assert sum(groups.values()) == DEFAULT.step_time(work)
    assert groups["overhead"] == PRESETS["eager"].seconds and groups["all_reduce"] == 0.0
    unsampled = StepPlan("packed", [SeqChunk("p", [5] * 512, 0, list(range(32)), sample=False)])
    assert DEFAULT.group_times(step_work(unsampled, 16))["lm_head"] == 0.0 < groups["lm_head"]


def test_prefill_attention_grows_quadratically():
    a1 = DEFAULT.attention_s(step_work(prefill(1024), 16).calls)
    a2 = DEFAULT.attention_s(step_work(prefill(2048), 16).calls)
    assert 3.5 < a2 / a1 < 4.1


def test_padding_context_and_device_cost_time():
    lengths = [64 * (i + 1) for i in range(8)]
    packed = StepPlan("packed", [SeqChunk(f"r{i}", [5] * n, 0, list(range(n // 16))) for i, n in enumerate(lengths)])
    padded = StepPlan("padded", [SeqChunk(f"r{i}", [5] * 512, 0, list(range(32)), True, 512 - n)
                                 for i, n in enumerate(lengths)])
    assert DEFAULT.step_time(step_work(padded, 16)) > 1.5 * DEFAULT.step_time(step_work(packed, 16))
    assert DEFAULT.step_time(step_work(decode(16, 2048), 16)) > DEFAULT.step_time(step_work(decode(16, 1024), 16))
    h100 = RooflineCostModel(L13B, gpu_preset("h100-sxm"))
    assert h100.step_time(step_work(decode(16, 1024), 16)) < DEFAULT.step_time(step_work(decode(16, 1024), 16))


def test_engine_overhead_presets_and_durations():
    work = step_work(decode(1, 128), 16)
    eager = RooflineCostModel(L13B, A100, overhead=engine_overhead("eager"))
    graphs = RooflineCostModel(L13B, A100, overhead=engine_overhead("cuda-graphs"))
    assert eager.step_time(work) - graphs.step_time(work) == pytest.approx(
        PRESETS["eager"].seconds - PRESETS["cuda-graphs"].seconds)
    assert engine_overhead("800us").seconds == pytest.approx(0.0008) == engine_overhead("0.8ms").seconds
    assert engine_overhead("0.0008").seconds == pytest.approx(0.0008)
    assert all(p.source for p in PRESETS.values())
    for bad in ("fast", "-1ms", "nan"):
        with pytest.raises(BsbenchError, match="engine-overhead"):
            engine_overhead(bad)
    described = eager.describe()
    assert described["tier"] == "roofline" and described["engine_overhead"]["name"] == "eager"
    assert described["device"]["name"] == "a100-40gb" and "linear" in described["sources"]
