"""Model presets, dummy weights, a local checkpoint folder, and the errors a user sees."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, LlamaConfig, LlamaForCausalLM

from bsbench.errors import BsbenchError
from bsbench.model.attention import ATTN_NAME
from bsbench.model.loader import load_model, model_info, resolve_dtype
from bsbench.model.presets import preset_config, preset_names
from tests.hf_reference import greedy_argmax


def _small_config() -> LlamaConfig:
    return LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)


def test_presets_carry_public_shapes():
    assert set(preset_names()) >= {"tiny", "llama2-7b", "llama2-13b", "llama3-8b", "qwen2.5-7b"}
    info = model_info(preset_config("llama2-13b"), torch.float16, "llama2-13b")
    assert (info.num_layers, info.num_kv_heads, info.head_dim, info.max_model_len, info.vocab_size) == (
        40, 40, 128, 4096, 32000)
    assert info.kv_bytes_per_token == 819_200
    info = model_info(preset_config("llama3-8b"), torch.bfloat16, "llama3-8b")
    assert (info.num_layers, info.num_kv_heads, info.head_dim) == (32, 8, 128)
    info = model_info(preset_config("qwen2.5-7b"), torch.bfloat16, "qwen2.5-7b")
    assert (info.num_layers, info.num_kv_heads, info.head_dim) == (28, 4, 128)
    tiny = preset_config("tiny")
    assert (tiny.vocab_size, tiny.hidden_size, tiny.num_hidden_layers) == (32000, 256, 4)


def test_dummy_weights_are_seeded():
    a, info = load_model("tiny", "dummy", "cpu", "auto", seed=0)
    b, _ = load_model("tiny", "dummy", "cpu", "float32", seed=0)
    assert info.dtype_bytes == 4 and info.name == "tiny"
    assert a.config._attn_implementation == ATTN_NAME
    wa, wb = a.model.layers[0].self_attn.q_proj.weight, b.model.layers[0].self_attn.q_proj.weight
    assert torch.equal(wa, wb)
    half, half_info = load_model("tiny", "dummy", "cpu", "bfloat16", seed=0)
    assert half_info.dtype_bytes == 2 and half.lm_head.weight.dtype == torch.bfloat16
    assert half.model.rotary_emb.inv_freq.dtype == torch.float32  # RoPE frequencies are not rounded to bf16
    c, _ = load_model("tiny", "dummy", "cpu", "float32", seed=1)
    assert not torch.equal(wa, c.model.layers[0].self_attn.q_proj.weight)


def test_local_checkpoint_folder_loads(tmp_path):
    torch.manual_seed(3)
    saved = LlamaForCausalLM(_small_config())
    saved.save_pretrained(tmp_path)
    model, info = load_model(str(tmp_path), "checkpoint", "cpu", "float32")
    assert info.num_layers == 2 and info.num_kv_heads == 2 and info.head_dim == 8 and info.max_model_len == 256
    assert torch.equal(model.lm_head.weight, saved.lm_head.weight)
    assert model.config._attn_implementation == ATTN_NAME
    dummy, _ = load_model(str(tmp_path), "dummy", "cpu", "float32", seed=0)  # shape from the folder, random weights
    assert dummy.lm_head.weight.shape == saved.lm_head.weight.shape


def test_user_errors(tmp_path):
    with pytest.raises(BsbenchError, match="no such model folder"):
        load_model(str(tmp_path / "missing"), "checkpoint", "cpu")
    GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64).save_pretrained(tmp_path)
    with pytest.raises(BsbenchError, match="supports"):
        load_model(str(tmp_path), "dummy", "cpu")
    with pytest.raises(BsbenchError, match="no checkpoint"):
        load_model("tiny", "checkpoint", "cpu")
    with pytest.raises(BsbenchError, match="weights"):
        load_model("tiny", "random", "cpu")
    with pytest.raises(BsbenchError, match="dtype"):
        resolve_dtype("float8", torch.device("cpu"))
    with pytest.raises(BsbenchError, match="device"):
        load_model("tiny", "dummy", "tpu")


@pytest.mark.parametrize("kind", ["qwen2-gqa4", "llama-mha"])
def test_other_families_and_head_layouts_match_the_oracle(tmp_path, kind):
    """The hook on a Qwen2 (QKV bias, 4 query heads per KV head) and a Llama without GQA, via checkpoint folders."""
    import copy

    from transformers import AutoModelForCausalLM, Qwen2Config

    from bsbench.engine.block_manager import BlockManager
    from bsbench.engine.plan import SeqChunk, StepPlan
    from bsbench.model.runner import ModelRunner

    if kind == "qwen2-gqa4":
        config = Qwen2Config(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                             num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256,
                             initializer_range=0.2)
    else:
        config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                             initializer_range=0.2)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    model, info = load_model(str(tmp_path), "checkpoint", "cpu", "float32")
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("eager")
    prompts = [[(7 * i + j * 13) % 120 + 3 for j in range(n)] for i, n in enumerate((9, 21))]
    n = 6
    expected = [greedy_argmax(reference, p, n) for p in prompts]
    runner = ModelRunner(model, info, "cpu", torch.float32)
    runner.allocate_kv(16, 8)
    bm = BlockManager(16, 8)
    length = max(map(len, prompts))
    rows = []
    for i, p in enumerate(prompts):  # padded prefill, then packed decode with pad_len
        bm.ensure(str(i), length + n)
        rows.append(SeqChunk(str(i), [0] * (length - len(p)) + p, 0, bm.block_table(str(i)), True, length - len(p)))
    out = runner.execute(StepPlan("padded", rows))
    gen = {rid: [tok] for rid, tok in out.next_tokens.items()}
    for s in range(n - 1):
        out = runner.execute(StepPlan("packed", [SeqChunk(r.req_id, [gen[r.req_id][-1]], length + s, r.block_table,
                                                          True, r.pad_len) for r in rows]))
        for rid, tok in out.next_tokens.items():
            gen[rid].append(tok)
    assert [gen["0"], gen["1"]] == expected
