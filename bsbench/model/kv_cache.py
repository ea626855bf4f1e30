"""The real K/V tensors: exactly `num_blocks` blocks, allocated once.

Per layer, K and V are `[num_kv_heads, num_blocks * block_size, head_dim]`
tensors addressed by slot (slot = block * block_size + offset) on dim 1, so a
block id handed out by the block manager is real memory here. Head-major: a
block of one head is one contiguous run of block_size * head_dim values, and a
sequence's gathered context is contiguous per head, which is what attention
kernels read fastest.
"""

from __future__ import annotations

import torch

from bsbench.engine.model_info import ModelInfo


class KVCache:
    def __init__(
        self,
        info: ModelInfo,
        num_blocks: int,
        block_size: int,
        device: torch.device | str,
        dtype: torch.dtype,
    ) -> None:
        if num_blocks <= 0 or block_size <= 0:
            raise ValueError("num_blocks and block_size must be positive")
        if torch.empty((), dtype=dtype).element_size() != info.dtype_bytes:
            raise ValueError(f"KV dtype {dtype} does not match ModelInfo.dtype_bytes={info.dtype_bytes}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.num_slots = num_blocks * block_size
        self.num_layers = info.num_layers
        self.num_kv_heads = info.num_kv_heads
        self.head_dim = info.head_dim
        shape = (info.num_kv_heads, self.num_slots, info.head_dim)
        # zeros, not empty: gathered-but-masked slots must never hold NaN/Inf (0 * NaN = NaN)
        self.k: list[torch.Tensor] = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(info.num_layers)]
        self.v: list[torch.Tensor] = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(info.num_layers)]

    @property
    def nbytes(self) -> int:
        """Bytes held by the K and V tensors of all layers."""
        return sum(t.numel() * t.element_size() for t in self.k) + sum(t.numel() * t.element_size() for t in self.v)
