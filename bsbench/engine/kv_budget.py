"""KV memory budget in bytes -> number of KV blocks.

The block manager's capacity comes from here, and the runner allocates real
K/V tensors for exactly that many blocks, so the budget is real memory.

Default budget:

- on CUDA: `GPU_SAFETY_FRACTION` (0.9) of the free memory after the weights
  are loaded (`torch.cuda.mem_get_info`), minus an activation reserve (the
  forward's transient tensors for a step of `max_batched_tokens` tokens, the
  logits, and the per-layer K/V gather of the attention function); the
  arithmetic is `gpu_kv_budget`, which the simulated backend calls with a
  device preset's memory minus the weights;
- on CPU: a budget that gives THIS model the token capacity a Llama-2-13B has
  on a 40 GB A100, so memory pressure looks like a real server's:

      Llama-2-13B KV per token = 2 (K,V) x 40 layers x 40 heads x 128 dims
                                 x 2 bytes (fp16)        = 819,200 B = 800 KiB
      40 GiB x 0.9 = 38.65 GB; minus 26.0 GB fp16 weights (13.0 B params)
                                                         = 12.65 GB for KV
      12.65 GB / 800 KiB                                 = 15.4 k tokens
      (40 GB decimal: 10.0 GB / 800 KiB = 12.2 k tokens)

  We take `CPU_DEFAULT_TOKENS` = 16,384 tokens (1,024 blocks of 16) and
  convert it to bytes with this model's KV bytes per token (tiny, fp32:
  4 KiB per token -> 64 MiB).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used, so the CLI starts without it
    import torch

from bsbench.engine.model_info import ModelInfo
from bsbench.errors import BsbenchError
from bsbench.units import format_bytes

DEFAULT_BLOCK_SIZE = 16
GPU_SAFETY_FRACTION = 0.9
CPU_DEFAULT_TOKENS = 16_384
DEFAULT_MAX_BATCHED_TOKENS = 8192
LOGIT_BYTES = 4  # per vocabulary entry of a sampled row (fp32 logits, generous for half-precision models)
ALLOCATOR_SLACK_BYTES = 256 << 20


def kv_bytes_per_block(info: ModelInfo, block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """Bytes of K and V for one block (all layers)."""
    return info.kv_bytes_per_token * block_size


def num_blocks_for_budget(
    budget_bytes: int,
    info: ModelInfo,
    block_size: int = DEFAULT_BLOCK_SIZE,
    min_tokens: int = 0,
) -> int:
    """How many whole blocks fit in `budget_bytes`.

    Raises BsbenchError when the budget holds less than one block, or fewer
    tokens than `min_tokens` (e.g. the longest single request of a workload).
    """
    if block_size <= 0:
        raise BsbenchError(f"block size must be positive, got {block_size}")
    per_block = kv_bytes_per_block(info, block_size)
    num_blocks = budget_bytes // per_block
    if num_blocks < 1:
        raise BsbenchError(
            f"KV budget {format_bytes(budget_bytes)} is smaller than one KV block of {block_size} tokens "
            f"({format_bytes(per_block)} for {info.name}); raise --kv-memory"
        )
    capacity = num_blocks * block_size
    if capacity < min_tokens:
        need = math.ceil(min_tokens / block_size) * per_block
        raise BsbenchError(
            f"KV budget {format_bytes(budget_bytes)} holds {capacity} tokens, but one request needs {min_tokens} "
            f"(at least {format_bytes(need)} for {info.name}); raise --kv-memory"
        )
    return int(num_blocks)


def kv_cache_too_large(info: ModelInfo, num_blocks: int, block_size: int, where: str) -> BsbenchError:
    """The user error of a KV budget the device cannot hold (the real and the simulated runner raise it)."""
    need = num_blocks * block_size * info.kv_bytes_per_token
    return BsbenchError(f"cannot allocate the KV cache ({format_bytes(need)}, {num_blocks} blocks) on {where}; "
                        "lower --kv-memory")


def cpu_default_budget(info: ModelInfo, tokens: int = CPU_DEFAULT_TOKENS) -> int:
    """The CPU default: the token capacity of a Llama-2-13B on a 40 GB A100, in bytes for this model."""
    return tokens * info.kv_bytes_per_token


def activation_reserve_bytes(
    info: ModelInfo,
    hidden_size: int,
    intermediate_size: int,
    vocab_size: int,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
    max_seqs: int = 256,
) -> int:
    """A generous estimate of one step's transient memory (not counting the KV gather)."""
    per_token = activation_bytes_per_token(hidden_size, intermediate_size, info.dtype_bytes)
    logits = max_seqs * vocab_size * LOGIT_BYTES
    return max_batched_tokens * per_token + logits + ALLOCATOR_SLACK_BYTES


def activation_bytes_per_token(hidden_size: int, intermediate_size: int, dtype_bytes: int) -> int:
    """Transient bytes one token holds inside a layer: residual, norm, qkv/o, gate/up/act."""
    return (4 * hidden_size + 3 * intermediate_size) * dtype_bytes


def gpu_kv_budget(free_bytes: int, reserve_bytes: int, info: ModelInfo, fraction: float = GPU_SAFETY_FRACTION) -> int:
    """The KV budget on a GPU with `free_bytes` free after the weights: `fraction` of it, minus the activation reserve.

    The attention function gathers one layer's K/V for the running sequences
    at a time; with block-table padding that transient is at most about
    2 / num_layers of the cache, so the cache gets (free*f - reserve) / (1 + 2/L).
    The real runner calls this with CUDA's free memory, the simulated one with a
    device preset's memory minus the weight bytes.
    """
    available = free_bytes * fraction - reserve_bytes
    budget = int(available / (1.0 + 2.0 / max(info.num_layers, 1)))
    if budget < kv_bytes_per_block(info):
        raise BsbenchError(
            f"no GPU memory left for the KV cache: {format_bytes(max(free_bytes, 0))} free after loading {info.name}, "
            f"{format_bytes(reserve_bytes)} reserved for activations; use a smaller model or --kv-memory"
        )
    return budget


def cuda_default_budget(
    info: ModelInfo,
    device: torch.device | str,
    hidden_size: int,
    intermediate_size: int,
    vocab_size: int,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
    fraction: float = GPU_SAFETY_FRACTION,
) -> int:
    """`gpu_kv_budget` with the free memory CUDA reports now (call after the weights are loaded)."""
    # lazy: torch is heavy
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    reserve = activation_reserve_bytes(info, hidden_size, intermediate_size, vocab_size, max_batched_tokens)
    return gpu_kv_budget(free, reserve, info, fraction)


def default_kv_budget(
    info: ModelInfo,
    device: torch.device | str,
    hidden_size: int = 0,
    intermediate_size: int = 0,
    vocab_size: int = 0,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
) -> int:
    """The default KV budget in bytes for `device` (call after the weights are loaded)."""
    if str(device).startswith("cuda"):
        return cuda_default_budget(info, device, hidden_size, intermediate_size, vocab_size, max_batched_tokens)
    return cpu_default_budget(info)


def default_kv_budget_for_model(model: torch.nn.Module, info: ModelInfo, device: torch.device | str,
                                max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS) -> int:
    """`default_kv_budget` with the activation sizes read from a transformers model's config."""
    config = model.config
    return default_kv_budget(
        info,
        device,
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
        intermediate_size=int(getattr(config, "intermediate_size", 0) or 0),
        vocab_size=int(getattr(config, "vocab_size", 0) or 0),
        max_batched_tokens=max_batched_tokens,
    )
