"""The profiled tier: Vidur's tables inside their range, the roofline outside, and what the record says."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.model.shape import model_shape
from bsbench.sim.cost_model import RooflineCostModel
from bsbench.sim.engine_overhead import engine_overhead
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.profiled import ProfiledCostModel
from bsbench.sim.profiles import RowTable, vidur_profiles
from bsbench.sim.work import step_work

L7B = model_shape("llama2-7b", "float16")
A100 = gpu_preset("a100-80gb")
NONE = engine_overhead("none")


def prefill(n: int) -> StepPlan:
    return StepPlan("packed", [SeqChunk("p", [5] * n, 0, list(range(-(-n // 16))))])


def test_the_shipped_extract_names_its_source_commit_and_licence_and_stays_small():
    file = resources.files("bsbench").joinpath("data", "profiles", "vidur.json")
    data = json.loads(file.read_text(encoding="utf-8"))
    assert "microsoft/vidur" in data["source"] and len(data["commit"]) == 40
    assert data["licence"].startswith("MIT License. Copyright (c) Microsoft Corporation.")
    assert len(file.read_bytes()) < 300_000


def test_row_table_interpolates_inside_and_answers_none_outside():
    table = RowTable((1, 3, 5), (1.0, 3.0, 4.0))
    assert table.at(2) == 2.0 and table.at(4) == 3.5 and table.at(5) == 4.0
    assert table.at(0.5) is None and table.at(6) is None
    assert table.every_other(1) == RowTable((3,), (3.0,))


def test_profiled_linear_and_elementwise_are_the_measured_medians_times_the_layers():
    table = vidur_profiles().layer_table("a100-80gb", 4096, 11008, 32, 32, 1)
    assert table is not None and table.model == "meta-llama/Llama-2-7b-hf"
    model = ProfiledCostModel(L7B, A100, 1, NONE)
    times = model.group_times(step_work(prefill(512), 16))
    assert times["linear"] == pytest.approx(table.linear.at(512) * 32)
    assert times["elementwise"] == pytest.approx(table.elementwise.at(512) * 32)
    roofline = RooflineCostModel(L7B, A100, 1, NONE).group_times(step_work(prefill(512), 16))
    assert times["attention"] == roofline["attention"] and times["lm_head"] == roofline["lm_head"]
    assert times["linear"] != roofline["linear"]


def test_outside_the_tables_the_roofline_prices_and_the_record_says_so():
    model = ProfiledCostModel(L7B, A100, 1, NONE)
    roofline = RooflineCostModel(L7B, A100, 1, NONE)
    beyond = step_work(prefill(4100), 16)  # the tables end at 4,096 tokens
    assert model.step_time(beyond) == roofline.step_time(beyond)
    described = model.describe()
    assert described["tier"] == "profiled" and described["measured"]["linear+elementwise"]["tokens"] == [1, 4096]
    assert "outside the measured ranges" in described["fallback"]
    l13b = ProfiledCostModel(model_shape("llama2-13b", "float16"), A100, 1, NONE)  # Vidur has no 13B table
    assert l13b.describe()["measured"] == {} and "no Vidur table" in l13b.describe()["fallback"]
    work = step_work(prefill(100), 16)
    assert l13b.step_time(work) == RooflineCostModel(l13b.shape, A100, 1, NONE).step_time(work)


def test_tensor_parallel_all_reduces_come_from_the_measured_table():
    l70 = model_shape("llama2-70b", "float16")
    h100 = gpu_preset("h100-sxm")
    model = ProfiledCostModel(l70, h100, 4, NONE)
    table = vidur_profiles().all_reduce[("h100-sxm", 4)]
    times = model.group_times(step_work(prefill(256), 16))
    assert times["all_reduce"] == pytest.approx(table.at(256 * 8192 * 2) * 2 * 80)
    assert RooflineCostModel(l70, h100, 4, NONE).group_times(step_work(prefill(256), 16))["all_reduce"] > 0
