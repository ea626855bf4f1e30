"""KV budget arithmetic: bytes per block, blocks for a budget, defaults, and the errors a user sees."""

from __future__ import annotations

import pytest
import torch

from bsbench.engine.block_manager import BlockManager, OutOfBlocks
from bsbench.engine.kv_budget import (
    CPU_DEFAULT_TOKENS,
    DEFAULT_BLOCK_SIZE,
    cpu_default_budget,
    default_kv_budget,
    kv_bytes_per_block,
    num_blocks_for_budget,
)
from bsbench.engine.model_info import ModelInfo
from bsbench.errors import BsbenchError
from bsbench.model.kv_cache import KVCache

TINY = ModelInfo("tiny", num_layers=4, num_kv_heads=2, head_dim=64, dtype_bytes=4, max_model_len=4096, pad_token_id=0,
                 vocab_size=32000)
L13B = ModelInfo("llama2-13b", num_layers=40, num_kv_heads=40, head_dim=128, dtype_bytes=2, max_model_len=4096,
                 pad_token_id=0, vocab_size=32000)


def test_bytes_per_block():
    assert TINY.kv_bytes_per_token == 4096
    assert kv_bytes_per_block(TINY, 16) == 65536
    assert L13B.kv_bytes_per_token == 800 * 1024  # 800 KiB per token for Llama-2-13B fp16


def test_num_blocks_floors_and_checks():
    assert num_blocks_for_budget(65536 * 10 + 5, TINY, 16) == 10
    with pytest.raises(BsbenchError, match="smaller than one KV block"):
        num_blocks_for_budget(65535, TINY, 16)
    with pytest.raises(BsbenchError, match="one request needs 200"):
        num_blocks_for_budget(65536 * 10, TINY, 16, min_tokens=200)
    assert num_blocks_for_budget(65536 * 10, TINY, 16, min_tokens=160) == 10


def test_cpu_default_matches_a_13b_on_a_40gb_a100():
    # (40 GiB * 0.9 - 26 GB fp16 weights) / 800 KiB per token ~ 15.4k tokens; default is 16k tokens
    a100_tokens = (40 * 2**30 * 0.9 - 26e9) / L13B.kv_bytes_per_token
    assert 12_000 < a100_tokens < 17_000
    assert abs(CPU_DEFAULT_TOKENS - a100_tokens) / a100_tokens < 0.1
    budget = default_kv_budget(TINY, "cpu")
    assert budget == cpu_default_budget(TINY) == CPU_DEFAULT_TOKENS * TINY.kv_bytes_per_token == 64 * 2**20
    blocks = num_blocks_for_budget(budget, TINY, DEFAULT_BLOCK_SIZE)
    assert blocks * DEFAULT_BLOCK_SIZE == CPU_DEFAULT_TOKENS


def test_usage_never_exceeds_budget():
    budget = 1_000_000
    blocks = num_blocks_for_budget(budget, TINY, 16)
    cache = KVCache(TINY, blocks, 16, "cpu", torch.float32)
    assert cache.nbytes == blocks * kv_bytes_per_block(TINY, 16) <= budget
    bm = BlockManager(blocks, 16)
    assert bm.ensure("a", blocks * 16)
    assert not bm.ensure("b", 1)
    with pytest.raises(OutOfBlocks):
        bm.allocate("b", 1)
    assert bm.num_used * kv_bytes_per_block(TINY, 16) <= budget


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_default_is_below_free_memory():
    free, _ = torch.cuda.mem_get_info()
    budget = default_kv_budget(L13B, "cuda", hidden_size=5120, intermediate_size=13824, vocab_size=32000)
    assert 0 < budget < 0.9 * free


def test_grown_table_returns_the_table_that_holds_the_tokens_or_none_without_a_change():
    bm = BlockManager(5, 4)
    assert bm.grown_table("a", 0) == () and bm.block_table("a") == ()
    first = bm.grown_table("a", 6)
    assert first == (0, 1) and bm.block_table("a") is first
    assert bm.grown_table("a", 8) is first  # still inside its last block: the same snapshot
    assert bm.grown_table("a", 9) == (0, 1, 2)
    assert bm.grown_table("b", 13) is None  # 4 blocks asked, 2 free
    assert bm.block_table("b") == () and bm.num_free == 2
    assert bm.grown_table("b", 8) == (3, 4) and bm.num_free == 0
