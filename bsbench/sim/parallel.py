"""Tensor parallelism in the simulated backend: one GPU's share of a model, and the all-reduces it adds.

Megatron-style tensor parallelism over N GPUs of one preset, as vLLM runs it:

- the QKV, gate and up projections split by output columns, the output and down projections by
  input rows, the LM head and the embedding by vocabulary rows: every GPU holds 1/N of the matmul
  weights and computes 1/N of their FLOPs; the norms are replicated (a few KB);
- the query heads split N ways; the KV heads split N ways too, or, when N exceeds them, each GPU
  keeps one KV head (vLLM replicates them), so a GPU's KV bytes per token are
  2 x layers x max(kv_heads / N, 1) x head_dim x dtype bytes;
- two all-reduces of the hidden state per layer (after the output projection and after the down
  projection), each of tokens x hidden x dtype bytes.

`gpu_shape` is the shape one GPU sees (the vocabulary stays whole: token ids are the model's). An
all-reduce is priced from Vidur's measured NCCL tables where they cover the preset, the GPU count
and the message size (`profiles.py`), else by a ring over the preset's link:
2 (N - 1) / N x bytes / (link x ALL_REDUCE_BUS_EFFICIENCY) + 2 (N - 1) x ALL_REDUCE_HOP_S.
"""

from __future__ import annotations

import dataclasses

from bsbench.errors import BsbenchError
from bsbench.model.shape import ModelShape
from bsbench.sim.gpus import DevicePreset

# Vidur's all-reduce tables at 64 MiB over 8 GPUs reach a bus bandwidth of 0.58 of the link on the A100 DGX and
# 0.81 on the H100 DGX; we take the middle for links without a table.
ALL_REDUCE_BUS_EFFICIENCY = 0.7
# Latency of one ring step: Vidur's smallest all-reduces take 7-60 us over 2-8 GPUs (2 (N-1) steps).
ALL_REDUCE_HOP_S = 4e-6
ALL_REDUCES_PER_LAYER = 2


def gpu_shape(shape: ModelShape, tensor_parallel: int) -> ModelShape:
    """The share of `shape` one of `tensor_parallel` GPUs holds (see the module docstring); BsbenchError when
    the heads or the MLP do not split evenly."""
    n = tensor_parallel
    if n < 1:
        raise BsbenchError(f"--tensor-parallel must be at least 1, got {n}")
    if n == 1:
        return shape
    info = shape.info
    kv = info.num_kv_heads
    problems = []
    if shape.num_heads % n:
        problems.append(f"{shape.num_heads} attention heads")
    if kv % n and n % kv:
        problems.append(f"{kv} KV heads")
    if shape.intermediate_size % n:
        problems.append(f"an MLP of {shape.intermediate_size}")
    if problems:
        raise BsbenchError(f"--tensor-parallel {n} does not split {info.name} ({', '.join(problems)}) evenly")
    replicated = info.num_layers * 2 * shape.hidden_size + shape.hidden_size  # the norms
    return dataclasses.replace(
        shape,
        info=dataclasses.replace(info, num_kv_heads=max(kv // n, 1)),
        intermediate_size=shape.intermediate_size // n,
        num_heads=shape.num_heads // n,
        matmul_params=-(-shape.matmul_params // n),
        num_params=-(-(shape.num_params - replicated) // n) + replicated,
    )


def ring_all_reduce_s(nbytes: float, gpus: int, device: DevicePreset) -> float:
    """Seconds of a ring all-reduce of `nbytes` over `gpus` GPUs joined by the preset's link."""
    if gpus <= 1 or nbytes <= 0:
        return 0.0
    if device.link_gbps <= 0:
        raise BsbenchError(f"the {device.name} preset has no GPU-to-GPU link figure: --tensor-parallel needs one")
    steps = 2 * (gpus - 1)
    return steps / gpus * nbytes / (device.link_gbps * 1e9 * ALL_REDUCE_BUS_EFFICIENCY) + steps * ALL_REDUCE_HOP_S
