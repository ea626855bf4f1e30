"""What the engine and the policies may know about a model: sizes, never weights."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class ModelInfo:
    """The model's shape as the KV cache and the policies see it."""

    name: str
    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype_bytes: int
    max_model_len: int
    pad_token_id: int
    vocab_size: int  # token ids the embedding accepts: 0 .. vocab_size - 1

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of K and V for one token across all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype_bytes
