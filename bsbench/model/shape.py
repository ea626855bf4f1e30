"""A model's shape from its config.json dict, without torch: ModelInfo, parameter counts, weight bytes.

One reading of a config serves every path: the model loader (from the transformers
config of the model it built, `config.to_dict()`), and the simulated backend, which
needs sizes but never weights (`read_model_config`: a preset's dict, or a local
`config.json` file or folder, read as JSON without importing transformers or torch).

Parameter counts follow the supported families' modules (transformers' modeling_llama,
_mistral, _qwen2, _qwen3): per layer q/k/v/o projections (biases where the family or
`attention_bias` has them; Qwen2 biases q/k/v only), gate/up/down (biases with
`mlp_bias`), two RMSNorms (Qwen3 adds q/k norms of head_dim); a final norm, the
embedding, and an LM head unless `tie_word_embeddings`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsbench.engine.model_info import ModelInfo
from bsbench.errors import BsbenchError
from bsbench.model.presets import PRESETS, preset_dict
from bsbench.safe_json import loads, read_text

# Families whose attention layers call ALL_ATTENTION_FUNCTIONS with module.layer_idx and use full causal attention.
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
DTYPE_ALIASES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
                 "bfloat16": "bfloat16", "bf16": "bfloat16"}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
             "max_position_embeddings")


def canonical_dtype(name: str) -> str:
    """`float32` / `float16` / `bfloat16` for any accepted spelling; BsbenchError otherwise."""
    canonical = DTYPE_ALIASES.get(str(name).lower())
    if canonical is None:
        raise BsbenchError(f"unknown dtype {name!r} (choose auto, float32, float16 or bfloat16)")
    return canonical


def model_display_name(model: str) -> str:
    """The name a run record shows: the preset name, or the folder's base name for a path."""
    if model in PRESETS:
        return model
    path = os.path.normpath(model)
    if os.path.basename(path) == "config.json":
        path = os.path.dirname(path)
    return os.path.basename(path) or model


def read_model_config(model: str) -> dict[str, Any]:
    """The config.json dict of a preset, or of a local folder / config.json file (no torch, no download)."""
    if model in PRESETS:
        return preset_dict(model)
    path = Path(model)
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise BsbenchError(
            f"model {model!r} is neither a preset ({', '.join(PRESETS)}) nor a local config.json file or folder"
        )
    try:  # the one safe reader: a byte-order mark is accepted, a nesting bomb is malformed JSON
        values = loads(read_text(file, "model config"))
    except json.JSONDecodeError as exc:
        raise BsbenchError(f"cannot read {file}: {exc}") from None
    if not isinstance(values, dict):
        raise BsbenchError(f"{file} is not a JSON object")
    return values


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a config (a multimodal config nests it under `text_config`)."""
    nested = config.get("text_config")
    return nested if isinstance(nested, dict) else config


def check_supported(config: dict[str, Any], name: str) -> None:
    """BsbenchError unless the paged attention hook supports this architecture."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise BsbenchError(
            f"model {name!r} has type {model_type!r}; "
            f"the paged attention hook supports {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    window: Any = config.get("sliding_window")
    max_pos = config.get("max_position_embeddings")
    uses_window = (bool(config.get("use_sliding_window")) or model_type == "mistral") and bool(window) and (
        max_pos is None or int(window) < int(max_pos)
    )
    if uses_window or any(t != "full_attention" for t in config.get("layer_types") or []):
        raise BsbenchError(
            f"model {name!r} uses sliding-window attention, which the paged attention hook does not support")


def _int(config: dict[str, Any], key: str, name: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BsbenchError(f"config of model {name!r}: {key} must be a positive integer, got {value!r}")
    return value


@dataclass(slots=True, frozen=True)
class ModelShape:
    """What a cost model needs to know about a model: sizes and parameter counts, never weights."""

    info: ModelInfo
    model_type: str
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    num_heads: int
    matmul_params: int  # weights of the per-token matrix multiplies of all layers (not embedding, not LM head)
    num_params: int  # every parameter once (a tied LM head shares the embedding)

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def weight_bytes(self) -> int:
        return self.num_params * self.info.dtype_bytes

    def describe(self) -> dict[str, Any]:
        return {"name": self.info.name, "model_type": self.model_type, "num_layers": self.info.num_layers,
                "hidden_size": self.hidden_size, "intermediate_size": self.intermediate_size,
                "vocab_size": self.vocab_size, "num_heads": self.num_heads, "num_kv_heads": self.info.num_kv_heads,
                "head_dim": self.info.head_dim, "num_params": self.num_params, "dtype_bytes": self.info.dtype_bytes}


def model_shape_from_config(config: dict[str, Any], dtype_bytes: int, name: str) -> ModelShape:
    """The shape of a supported model from its config.json dict (see the module docstring)."""
    cfg = text_config(config)
    for key in _REQUIRED:
        _int(cfg, key, name)
    h, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, vocab = cfg["num_attention_heads"], cfg["vocab_size"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or h // heads
    model_type = str(cfg.get("model_type", ""))
    pad = cfg.get("pad_token_id")
    if isinstance(pad, (list, tuple)):
        pad = pad[0] if pad else None
    info = ModelInfo(name=name, num_layers=layers, num_kv_heads=int(kv_heads), head_dim=int(head_dim),
                     dtype_bytes=dtype_bytes, max_model_len=cfg["max_position_embeddings"],
                     pad_token_id=int(pad) if pad is not None else 0, vocab_size=int(vocab))
    q, kv = heads * head_dim, kv_heads * head_dim
    attn_bias = bool(cfg.get("attention_bias"))
    qkv_bias = attn_bias or model_type == "qwen2"
    matmul = h * (q + 2 * kv) + q * h + 3 * h * inter
    per_layer = matmul + 2 * h
    per_layer += (q + 2 * kv) if qkv_bias else 0
    per_layer += h if attn_bias else 0
    per_layer += (2 * inter + h) if cfg.get("mlp_bias") else 0
    per_layer += 2 * head_dim if model_type == "qwen3" else 0
    embedding = vocab * h
    lm_head = 0 if cfg.get("tie_word_embeddings", False) else vocab * h
    return ModelShape(info=info, model_type=model_type, hidden_size=h, intermediate_size=inter, vocab_size=vocab,
                      num_heads=heads, matmul_params=layers * matmul,
                      num_params=layers * per_layer + h + embedding + lm_head)


def model_shape(model: str, dtype: str = "bfloat16") -> ModelShape:
    """Shape of a preset or local config for a supported model, in `dtype` (never loads weights)."""
    name = model_display_name(model)
    config = read_model_config(model)
    check_supported(config, name)
    return model_shape_from_config(config, DTYPE_BYTES[canonical_dtype(dtype)], name)
