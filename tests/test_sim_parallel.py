"""Tensor parallelism and vLLM's memory rule in the simulated backend."""

from __future__ import annotations

import pytest

from bsbench.errors import BsbenchError
from bsbench.model.shape import model_shape
from bsbench.sim.backend import open_sim
from bsbench.sim.cost_model import RooflineCostModel
from bsbench.sim.engine_overhead import engine_overhead
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.parallel import ALL_REDUCE_BUS_EFFICIENCY, ALL_REDUCE_HOP_S, gpu_shape, ring_all_reduce_s
from bsbench.sim.settings import SimSettings
from bsbench.sim.vllm_memory import NON_TORCH_BYTES, vllm_memory


def test_one_gpu_holds_its_share_of_weights_heads_and_kv():
    l70 = model_shape("llama2-70b", "bfloat16")
    four = gpu_shape(l70, 4)
    assert (four.num_heads, four.info.num_kv_heads, four.intermediate_size) == (16, 2, 7168)
    assert four.weight_bytes == pytest.approx(l70.weight_bytes / 4, rel=1e-3)
    assert four.info.kv_bytes_per_token * 4 == l70.info.kv_bytes_per_token
    sixteen = gpu_shape(l70, 16)  # 8 KV heads over 16 GPUs: each keeps one (vLLM replicates them)
    assert sixteen.info.num_kv_heads == 1
    assert gpu_shape(l70, 1) is l70
    with pytest.raises(BsbenchError, match="does not split"):
        gpu_shape(model_shape("llama2-13b"), 3)


def test_ring_all_reduce_over_the_link():
    h100 = gpu_preset("h100-sxm")
    nbytes = 64 * 2**20
    expected = 2 * 7 / 8 * nbytes / (450e9 * ALL_REDUCE_BUS_EFFICIENCY) + 14 * ALL_REDUCE_HOP_S
    assert ring_all_reduce_s(nbytes, 8, h100) == pytest.approx(expected, rel=0.01)
    assert ring_all_reduce_s(nbytes, 1, h100) == 0.0


def test_tensor_parallel_makes_a_step_faster_and_adds_all_reduces():
    l70 = model_shape("llama2-70b", "bfloat16")
    a100 = gpu_preset("a100-80gb")
    one = RooflineCostModel(l70, a100, 1, engine_overhead("none"))
    four = RooflineCostModel(l70, a100, 4, engine_overhead("none"))
    assert four.linear_s(1) == pytest.approx(one.linear_s(1) / 4, rel=0.01)
    assert four.all_reduce_s(1) > 0 == one.all_reduce_s(1)
    assert four.describe()["tensor_parallel"] == 4


def test_seventy_b_needs_tensor_parallelism_and_then_fits():
    with pytest.raises(BsbenchError, match="do not fit"):
        open_sim("llama2-70b", "a100-80gb")
    with pytest.raises(BsbenchError, match="does not fit"):  # 35 GB of weights per GPU leave nothing at 0.5
        open_sim("llama2-70b", "a100-80gb", settings=SimSettings(tensor_parallel=2, gpu_memory_utilization=0.5))
    sim = open_sim("llama3-70b", "h100-sxm", settings=SimSettings(tensor_parallel=4))
    assert sim.tensor_parallel == 4 and sim.memory["non_torch"] > NON_TORCH_BYTES  # + NCCL buffers
    assert sim.describe()["cost_model"]["tensor_parallel"] == 4


def test_vllm_rule_states_each_part_and_follows_the_utilisation():
    l13b = model_shape("llama2-13b", "bfloat16")
    a100 = gpu_preset("a100-40gb")
    at9 = vllm_memory(l13b, a100, 0.9, 1, 4096)
    at8 = vllm_memory(l13b, a100, 0.8, 1, 4096)
    assert at9.kv_cache - at8.kv_cache == int(a100.memory_bytes * 0.9) - int(a100.memory_bytes * 0.8)
    assert at9.kv_cache == int(a100.memory_bytes * 0.9) - at9.weights - at9.peak_activations - at9.non_torch
    with pytest.raises(BsbenchError, match="utilization"):
        vllm_memory(l13b, a100, 1.5, 1, 4096)
    sim = open_sim("llama2-13b", "a100-40gb", settings=SimSettings(gpu_memory_utilization=0.8))
    assert sim.kv_budget_bytes == vllm_memory(l13b, a100, 0.8, 1, 4096).kv_cache
