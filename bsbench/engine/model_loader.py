"""Build or load the model the runner drives, and describe it as a `ModelInfo`.

`load_model(model, weights, device, dtype, seed)`:

- `model` is a preset name (model_presets.py: config built in code), a local
  folder (config.json + weights: `from_pretrained(folder)`), or anything else,
  passed through to `from_pretrained` (a hub id, for users online); a load
  failure becomes a one-line BsbenchError.
- `weights="dummy"` builds the model from its config with seeded random
  weights (`torch.manual_seed(seed)`), as vLLM's load-format dummy does; on
  CUDA it is built directly on the device in the target dtype, so a
  13B-shaped model fits with no download and no CPU copy.
  `weights="checkpoint"` loads real weights (presets have none).
- `device`: auto (cuda if available) | cpu | cuda[:N];
  `dtype`: auto (fp32 on CPU, bf16 on a GPU that supports it, else fp16) |
  float32 | float16 | bfloat16.

Only models whose attention goes through transformers' attention-function
hook with full (non-sliding) causal attention are supported: the families in
`model_shape.SUPPORTED_MODEL_TYPES`; others raise BsbenchError. Sizes are read
from the config by `model_shape.py`, the same reading the simulated backend uses.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
from transformers.utils import logging as hf_logging

from bsbench.engine import attention
from bsbench.engine.model_info import ModelInfo
from bsbench.engine.model_presets import PRESETS, preset_config
from bsbench.engine.model_shape import (
    DTYPE_ALIASES,
    ModelShape,
    canonical_dtype,
    check_supported,
    model_display_name,
    model_shape_from_config,
)
from bsbench.errors import BsbenchError

WEIGHTS = ("dummy", "checkpoint")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = {alias: getattr(torch, canonical) for alias, canonical in DTYPE_ALIASES.items()}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BsbenchError(f"--device {device}: no CUDA device is available (use --device cpu)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise BsbenchError(f"unknown device {device!r} (choose auto, cpu or cuda)")


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower()
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return DTYPES[canonical_dtype(name)]


def model_info(config: PretrainedConfig, dtype: torch.dtype, name: str) -> ModelInfo:
    """The sizes a policy may know, from a transformers config (the same reading as `model_shape`)."""
    return model_shape_from_config(_config_dict(config), torch.empty((), dtype=dtype).element_size(), name).info


def loaded_model_shape(model: torch.nn.Module, info: ModelInfo) -> ModelShape:
    """The cost-model shape of a model `load_model` built (for the real runner on a virtual clock)."""
    return model_shape_from_config(_config_dict(model.config), info.dtype_bytes, info.name)


def _config_dict(config: PretrainedConfig) -> dict:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return text.to_dict()


def _load_config(model: str) -> PretrainedConfig:
    if model in PRESETS:
        return preset_config(model)
    try:
        return AutoConfig.from_pretrained(model)
    except Exception as exc:  # any loader failure is a user error about this name
        where = "folder" if Path(model).is_dir() else "model name or path"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BsbenchError(
            f"cannot load the config of {where} {model!r} (presets: {', '.join(PRESETS)}): {first}"
        ) from None


def load_model(
    model: str = "tiny",
    weights: str = "dummy",
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    seed: int = 0,
) -> tuple[torch.nn.Module, ModelInfo]:
    """(torch model in eval mode on `device`, its ModelInfo). See the module docstring."""
    if weights not in WEIGHTS:
        raise BsbenchError(f"unknown --weights {weights!r} (choose dummy or checkpoint)")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    config = _load_config(model)
    check_supported(config.to_dict(), model)
    name = model_display_name(model)
    attn_name = attention.register()

    if weights == "dummy":
        torch.manual_seed(seed)
        if dev.type == "cuda":
            torch.cuda.manual_seed_all(seed)
        with torch.device(dev):  # built in place on the device, in the target dtype (RoPE buffers stay fp32)
            net = AutoModelForCausalLM.from_config(config, dtype=dt)
    else:
        if model in PRESETS:
            raise BsbenchError(f"preset {model!r} has no checkpoint; use --weights dummy or --model PATH")
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            net = AutoModelForCausalLM.from_pretrained(model, dtype=dt)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BsbenchError(f"cannot load the weights of {model!r}: {first}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    net = net.to(device=dev).eval()
    if not getattr(net, "_supports_attention_backend", False):
        raise BsbenchError(f"model {model!r} ({type(net).__name__}) does not support custom attention functions")
    net.set_attn_implementation(attn_name)
    net.requires_grad_(False)
    return net, model_info(net.config, dt, name)
