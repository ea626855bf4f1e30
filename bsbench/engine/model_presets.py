"""Model presets written in code: transformers configs, no download needed.

`tiny` is the default: a small Llama-family model (hidden 256, 4 layers, GQA
4 query / 2 KV heads, head_dim 64, 32,000-token vocabulary; 19.3 M parameters)
whose decode step takes tens of milliseconds on 2 CPU cores, so tests are fast and
batching effects (a real vocabulary-sized LM head, real attention over a real
KV cache) still show. The others carry the public config values of the named
checkpoints, so `--weights dummy` gives a model of the true shape and cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # transformers is imported when a config is built, so that knowing the preset names is cheap
    from transformers import LlamaConfig, PretrainedConfig, Qwen2Config


def _llama(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv_heads: int, max_pos: int,
           theta: float, bos: int, eos: int) -> LlamaConfig:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_pos,
        rms_norm_eps=1e-5,
        rope_theta=theta,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
    )


def _tiny() -> LlamaConfig:
    config = _llama(32000, 256, 688, 4, 4, 2, 4096, 10000.0, 1, 2)
    config.pad_token_id = 0
    return config


def _qwen25_7b() -> Qwen2Config:
    # Qwen/Qwen2.5-7B config.json (QKV bias, no sliding window in use)
    from transformers import Qwen2Config

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
    # meta-llama/Llama-2-7b-hf, Llama-2-13b-hf, Meta-Llama-3-8B config.json values
    "llama2-7b": lambda: _llama(32000, 4096, 11008, 32, 32, 32, 4096, 10000.0, 1, 2),
    "llama2-13b": lambda: _llama(32000, 5120, 13824, 40, 40, 40, 4096, 10000.0, 1, 2),
    "llama3-8b": lambda: _llama(128256, 4096, 14336, 32, 32, 8, 8192, 500000.0, 128000, 128001),
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
