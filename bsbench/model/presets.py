"""Model presets written in code: transformers configs, no download needed.

`tiny` is the default: a small Llama-family model (hidden 256, 4 layers, GQA
4 query / 2 KV heads, head_dim 64, 32,000-token vocabulary; 19.3 M parameters)
whose decode step takes tens of milliseconds on 2 CPU cores, so tests are fast and
batching effects (a real vocabulary-sized LM head, real attention over a real
KV cache) still show. The others carry the public config values of the named
checkpoints, so `--weights dummy` gives a model of the true shape and cost.

A preset is a plain `config.json` dict (with `model_type`), exactly what a local
checkpoint folder holds: reading one needs neither torch nor transformers (the
simulated backend and the CLI read sizes from it); `preset_config` builds the
transformers config object from it when a model is really built.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PretrainedConfig


def _llama(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv_heads: int, max_pos: int,
           theta: float, bos: int, eos: int) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": max_pos,
        "rms_norm_eps": 1e-5,
        "rope_theta": theta,
        "tie_word_embeddings": False,
        "bos_token_id": bos,
        "eos_token_id": eos,
    }


def _tiny() -> dict[str, Any]:
    return {**_llama(32000, 256, 688, 4, 4, 2, 4096, 10000.0, 1, 2), "pad_token_id": 0}


def _qwen25_7b() -> dict[str, Any]:
    # Qwen/Qwen2.5-7B config.json (QKV bias, no sliding window in use)
    return {
        "model_type": "qwen2",
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "use_sliding_window": False,
        "sliding_window": None,
        "max_window_layers": 28,
        "tie_word_embeddings": False,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
    }


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": _tiny(),
    # meta-llama/Llama-2-7b-hf, Llama-2-13b-hf, Llama-2-70b-hf, Meta-Llama-3-8B, Meta-Llama-3-70B config.json values
    "llama2-7b": _llama(32000, 4096, 11008, 32, 32, 32, 4096, 10000.0, 1, 2),
    "llama2-13b": _llama(32000, 5120, 13824, 40, 40, 40, 4096, 10000.0, 1, 2),
    "llama2-70b": _llama(32000, 8192, 28672, 80, 64, 8, 4096, 10000.0, 1, 2),
    "llama3-8b": _llama(128256, 4096, 14336, 32, 32, 8, 8192, 500000.0, 128000, 128001),
    "llama3-70b": _llama(128256, 8192, 28672, 80, 64, 8, 8192, 500000.0, 128000, 128001),
    "qwen2.5-7b": _qwen25_7b(),
}

DEFAULT_MODEL = "tiny"


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_dict(name: str) -> dict[str, Any]:
    """A fresh copy of preset `name`'s config.json dict (KeyError if unknown)."""
    return copy.deepcopy(PRESETS[name])


def preset_config(name: str, **overrides: Any) -> PretrainedConfig:
    """A fresh transformers config object for preset `name` (KeyError if unknown)."""
    # lazy: transformers is heavy
    from transformers import AutoConfig

    values = preset_dict(name)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config
