"""vLLM's KV-cache memory rule, the default KV budget of the simulated backend (`--gpu-memory-utilization`).

vLLM gives the KV cache what is left of `gpu_memory_utilization` x the GPU's total memory after
three things it measures at start-up (its worker's memory profiling):

- the weights (one GPU's share under tensor parallelism: `parallel.gpu_shape`);
- the peak activations of a profiling forward of `max_num_batched_tokens` tokens, which we
  estimate per token as the residual stream and norm (4 x hidden), the QKV output, and the MLP's
  gate/up output and activation (3 x MLP width), in the model's dtype, plus the fp32 logits and
  probabilities of `max_num_seqs` (256) sampled rows; vLLM's default `max_num_batched_tokens`
  without chunked prefill is max(max_model_len, 2,048);
- non-torch memory: the CUDA context, cuBLAS workspaces and, under tensor parallelism, NCCL
  buffers. `NON_TORCH_BYTES` (0.5 GiB) and `NCCL_BYTES` (0.25 GiB per GPU when N > 1) are our
  stated assumptions of their size, not measurements.

The real runner (`--backend real`) keeps its own rule (`engine/kv_budget.py`: 0.9 of the free
memory after loading, minus an activation reserve and its attention gather's transient), because
that is what its own forward needs; docs/simulation.md says how the two differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bsbench.engine.kv_budget import LOGIT_BYTES
from bsbench.errors import BsbenchError
from bsbench.model.shape import ModelShape
from bsbench.sim.gpus import DevicePreset
from bsbench.units import format_bytes

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
MAX_NUM_SEQS = 256
MIN_BATCHED_TOKENS = 2048
NON_TORCH_BYTES = 512 << 20
NCCL_BYTES = 256 << 20


@dataclass(slots=True, frozen=True)
class VllmMemory:
    """One GPU's memory under vLLM's rule, each part stated (bytes)."""

    total: int
    utilization: float
    weights: int
    peak_activations: int
    non_torch: int
    kv_cache: int

    def describe(self) -> dict[str, object]:
        return {"rule": "vllm", **asdict(self)}


def profiled_batched_tokens(shape: ModelShape) -> int:
    return max(shape.info.max_model_len, MIN_BATCHED_TOKENS)


def peak_activation_bytes(gpu: ModelShape, tokens: int) -> int:
    """The estimated peak of vLLM's profiling forward on one GPU (module docstring)."""
    d = gpu.info.head_dim
    qkv = (gpu.num_heads + 2 * gpu.info.num_kv_heads) * d
    per_token = (4 * gpu.hidden_size + qkv + 3 * gpu.intermediate_size) * gpu.info.dtype_bytes
    return tokens * per_token + 2 * MAX_NUM_SEQS * gpu.vocab_size * LOGIT_BYTES


def vllm_memory(gpu: ModelShape, device: DevicePreset, utilization: float, tensor_parallel: int,
                batched_tokens: int) -> VllmMemory:
    """vLLM's split of one GPU's memory for `gpu` (one GPU's share of the model); BsbenchError when nothing is left
    for the KV cache."""
    if not 0 < utilization <= 1:
        raise BsbenchError(f"--gpu-memory-utilization must lie in (0, 1], got {utilization}")
    usable = int(device.memory_bytes * utilization)
    weights = gpu.weight_bytes
    activations = peak_activation_bytes(gpu, batched_tokens)
    non_torch = NON_TORCH_BYTES + (NCCL_BYTES if tensor_parallel > 1 else 0)
    kv = usable - weights - activations - non_torch
    if kv < gpu.info.kv_bytes_per_token * 16:
        where = f"{tensor_parallel} x {device.name}" if tensor_parallel > 1 else f"the {device.name}"
        raise BsbenchError(
            f"{gpu.info.name} does not fit {where} at --gpu-memory-utilization {utilization:g}: "
            f"{format_bytes(usable)} usable per GPU, {format_bytes(weights)} of weights, {format_bytes(activations)} "
            f"of peak activations, {format_bytes(non_torch)} non-torch; raise --tensor-parallel or the utilisation")
    return VllmMemory(device.memory_bytes, utilization, weights, activations, non_torch, kv)
