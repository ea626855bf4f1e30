"""The roofline cost model against hand computations (papers.md figures) and its documented constants."""

from __future__ import annotations

import pytest

from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.model.shape import model_shape
from bsbench.sim.cost_model import (
    BANDWIDTH_EFFICIENCY,
    FLOP_EFFICIENCY,
    STEP_OVERHEAD_S,
    RooflineCostModel,
)
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.work import step_work

L13B = model_shape("llama2-13b", "float16")
A100 = gpu_preset("a100-40gb")
IDEAL = RooflineCostModel(L13B, A100, flop_efficiency=1.0, bandwidth_efficiency=1.0, step_overhead_s=0.0)
DEFAULT = RooflineCostModel(L13B, A100)


def decode(batch: int, context: int) -> StepPlan:
    return StepPlan("packed", [SeqChunk(f"r{i}", [5], context, list(range(context // 16 + 1))) for i in range(batch)])


def prefill(n: int) -> StepPlan:
    return StepPlan("packed", [SeqChunk("p", [5] * n, 0, list(range(-(-n // 16))))])


def test_decode_16x1024_is_about_25_ms_at_roofline():
    # hand computation: 26.0 GB weights + 16 x 1024 tokens x 819,200 B of KV, read once at 1,555 GB/s
    hand = (26.0e9 + 16 * 1024 * 819_200) / 1555e9
    got = IDEAL.step_time(step_work(decode(16, 1024), 16))
    assert hand == pytest.approx(0.0255, abs=0.0005)
    assert got == pytest.approx(hand, rel=0.03)  # ours reads only what the step touches, in whole blocks


def test_prefill_1024_is_about_85_ms_ideal_and_130_measured_class():
    # hand computation: 2 x 1024 tokens x 13.0 B parameters at 312 TFLOP/s (attention adds ~2%)
    hand = 2 * 1024 * 13.0e9 / 312e12
    work = step_work(prefill(1024), 16)
    assert hand == pytest.approx(0.0853, abs=0.0005)
    assert IDEAL.step_time(work) == pytest.approx(hand, rel=0.03)
    assert DEFAULT.step_time(work) == pytest.approx(0.130, rel=0.05)  # papers.md: about 130 ms measured-class
    assert IDEAL.flops(work) / (A100.peak_flops) > IDEAL.bytes_moved(work) / A100.bandwidth  # compute-bound


def test_default_efficiencies_are_the_published_ranges():
    assert 0.5 <= FLOP_EFFICIENCY <= 0.75 and 0.6 <= BANDWIDTH_EFFICIENCY <= 0.75 and 0 < STEP_OVERHEAD_S < 0.005
    work = step_work(decode(16, 1024), 16)
    assert DEFAULT.step_time(work) == pytest.approx(IDEAL.step_time(work) / BANDWIDTH_EFFICIENCY + STEP_OVERHEAD_S)
    described = DEFAULT.describe()
    assert described["tier"] == "uncalibrated" and described["device"]["name"] == "a100-40gb"
    assert set(described["sources"]) == {"flop_efficiency", "bandwidth_efficiency", "step_overhead_s"}


def test_padding_and_attention_cost_time():
    # a padded rectangle of 8 rows x 512 costs more than the same 8 prompts of 64..512 packed
    lengths = [64 * (i + 1) for i in range(8)]
    packed = StepPlan("packed", [SeqChunk(f"r{i}", [5] * n, 0, list(range(n // 16))) for i, n in enumerate(lengths)])
    padded = StepPlan("padded", [SeqChunk(f"r{i}", [5] * 512, 0, list(range(32)), True, 512 - n)
                                 for i, n in enumerate(lengths)])
    assert DEFAULT.step_time(step_work(padded, 16)) > 1.5 * DEFAULT.step_time(step_work(packed, 16))
    # a longer context makes a decode step slower; a faster device makes it faster
    assert DEFAULT.step_time(step_work(decode(16, 2048), 16)) > DEFAULT.step_time(step_work(decode(16, 1024), 16))
    h100 = RooflineCostModel(L13B, gpu_preset("h100-sxm"))
    assert h100.step_time(step_work(decode(16, 1024), 16)) < DEFAULT.step_time(step_work(decode(16, 1024), 16))
