"""Model presets written in code: transformers configs, no download needed.

`tiny` is the default: a small Llama-family model (hidden 256, 4 layers, GQA
4 query / 2 KV heads, head_dim 64, 32,000-token vocabulary; 19.3 M parameters)
whose decode step takes milliseconds on 2 CPU cores, so tests are fast and
batching effects (a real vocabulary-sized LM head, real attention over a real
KV cache) still show. The others carry the public config values of the named
checkpoints, so `--weights dummy` gives a model of the true shape and cost.
"""

from __future__ import annotations

from typing import Any, Callable

from transformers import LlamaConfig, PretrainedConfig, Qwen2Config


def _tiny() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=32000,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def _llama2(hidden: int, inter: int, layers: int, heads: int) -> LlamaConfig:
    # meta-llama/Llama-2-{7,13}b-hf config.json
    return LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )


def _llama3_8b() -> LlamaConfig:
    # meta-llama/Meta-Llama-3-8B config.json
    return LlamaConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        tie_word_embeddings=False,
        bos_token_id=128000,
        eos_token_id=128001,
    )


def _qwen25_7b() -> Qwen2Config:
    # Qwen/Qwen2.5-7B config.json (QKV bias, no sliding window in use)
    return Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=131072,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        use_sliding_window=False,
        sliding_window=None,
        max_window_layers=28,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151643,
    )


PRESETS: dict[str, Callable[[], PretrainedConfig]] = {
    "tiny": _tiny,
    "llama2-7b": lambda: _llama2(4096, 11008, 32, 32),
    "llama2-13b": lambda: _llama2(5120, 13824, 40, 40),
    "llama3-8b": _llama3_8b,
    "qwen2.5-7b": _qwen25_7b,
}

DEFAULT_MODEL = "tiny"


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_config(name: str, **overrides: Any) -> PretrainedConfig:
    """A fresh config object for preset `name` (KeyError if unknown)."""
    config = PRESETS[name]()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config
