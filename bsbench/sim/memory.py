"""Device memory in the simulated backend: the same rules as on a real GPU.

- Weights must fit the device (else a user error, as loading them would fail); under tensor
  parallelism the shape is one GPU's share (`parallel.gpu_shape`) and so is every figure here.
- The default KV budget is vLLM's rule (`vllm_memory.py`).
- What is left after weights and KV is the room for one step's activations. A step
  whose estimated activations do not fit raises `ActivationOOM`, as a CUDA
  out-of-memory error inside the real runner's forward does.

The per-step estimate follows what the real runner allocates at its peak: every token's
transient layer activations (`kv_budget.activation_bytes_per_token`, the same per-token
figure as the CUDA activation reserve), the logits of the sampled rows, and the
largest attention call's transients for one layer (its gathered K and V copies, its
boolean mask, and the K/V heads a fresh causal call repeats for grouped-query attention).
"""

from __future__ import annotations

from bsbench.engine.kv_budget import LOGIT_BYTES, activation_bytes_per_token
from bsbench.engine.step_layout import FRESH_CAUSAL
from bsbench.errors import BsbenchError
from bsbench.model.shape import ModelShape
from bsbench.sim.gpus import DevicePreset
from bsbench.sim.work import StepWork
from bsbench.units import format_bytes


def free_after_weights(shape: ModelShape, device: DevicePreset) -> int:
    """Device memory left once the weights are loaded; BsbenchError when they do not fit."""
    free = device.memory_bytes - shape.weight_bytes
    if free <= 0:
        raise BsbenchError(
            f"the weights of {shape.info.name} ({format_bytes(shape.weight_bytes)} at {shape.info.dtype_bytes} bytes "
            f"per parameter on each GPU) do not fit the {device.name} ({format_bytes(device.memory_bytes)}); "
            "raise --tensor-parallel"
        )
    return free


def step_activation_bytes(work: StepWork, shape: ModelShape) -> int:
    """Peak transient bytes of one step on the real runner (see the module docstring)."""
    info = shape.info
    b = info.dtype_bytes
    group = max(shape.num_heads // info.num_kv_heads, 1)
    per_layer_call = 0
    for call in work.calls:
        if call.kind == FRESH_CAUSAL:
            transient = 2 * call.rows * call.q_len * shape.num_heads * info.head_dim * b if group > 1 else 0
        else:
            folded = call.q_len * group if call.q_len > 1 else 1  # the mask is repeated per folded query head
            transient = call.rows * folded * call.kv_len  # bool mask
            if call.gathers:
                transient += 2 * call.rows * call.kv_len * info.num_kv_heads * info.head_dim * b
        per_layer_call = max(per_layer_call, transient)
    tokens = work.tokens * activation_bytes_per_token(shape.hidden_size, shape.intermediate_size, b)
    return tokens + work.sampled * shape.vocab_size * LOGIT_BYTES + per_layer_call
