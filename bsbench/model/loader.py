"""Build or load the model the runner drives, and describe it as a `ModelInfo`.

`load_model(model, weights, device, dtype, seed)`:

- `model` is a preset name (model_presets.py: config built in code), a local
  folder (config.json + weights: `from_pretrained(folder)`), or a hub id (for
  users online; a name that can only be a path, `paths.looks_local`, never goes
  to the hub); a load failure becomes a one-line BsbenchError. A checkpoint's
  `model_type` is read from its raw config.json first, and nothing is ever
  loaded with trust_remote_code: code a checkpoint or tokenizer ships
  (`auto_map`) is never run, and the user is never asked on stdin.
- Before anything is allocated, weights + KV are estimated from the config
  and compared with the memory available (engine/memory_fit.py).
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
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
from transformers.utils import logging as hf_logging

from bsbench.engine.kv_budget import cpu_default_budget
from bsbench.engine.model_info import ModelInfo
from bsbench.errors import BsbenchError, first_line
from bsbench.hub import offline_error
from bsbench.model import attention
from bsbench.model.memory_fit import check_fits
from bsbench.model.presets import PRESETS, preset_config
from bsbench.model.shape import (
    DTYPE_ALIASES,
    ModelShape,
    canonical_dtype,
    check_supported,
    model_display_name,
    model_shape_from_config,
)
from bsbench.model.source import check_model_source, preset_hint
from bsbench.paths import looks_local
from bsbench.safe_json import load_file

if TYPE_CHECKING:
    from transformers import PreTrainedModel

WEIGHTS = ("dummy", "checkpoint")
DEVICES = ("auto", "cpu", "cuda")
DTYPES: dict[str, torch.dtype] = {alias: getattr(torch, canonical) for alias, canonical in DTYPE_ALIASES.items()}


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


def loaded_model_shape(model: PreTrainedModel, info: ModelInfo) -> ModelShape:
    """The cost-model shape of a model `load_model` built (for the real runner on a virtual clock)."""
    return model_shape_from_config(_config_dict(model.config), info.dtype_bytes, info.name)


def _config_dict(config: PretrainedConfig) -> dict[str, Any]:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return text.to_dict()


def _raw_config(model: str, offline: str | None) -> dict[str, Any]:
    """The config.json of a folder or hub id as plain JSON: nothing of the checkpoint's own is imported.
    `offline`: why the hub cannot be used (only the local cache is read), or None."""
    if looks_local(model):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise BsbenchError(f"no such model folder: {model} (presets: {', '.join(PRESETS)}){preset_hint(model)}")
        raw = load_file(folder / "config.json", "model config")
    else:
        try:
            raw, _ = PretrainedConfig.get_config_dict(model, local_files_only=offline is not None)
        except Exception as exc:  # any hub failure is a user error about this name
            if offline is not None:
                raise BsbenchError(offline_error("model", model, offline) + preset_hint(model)) from None
            raise BsbenchError(f"cannot load the config of {model!r} (presets: {', '.join(PRESETS)}): "
                               f"{first_line(exc)}{preset_hint(model)}") from None
    if not isinstance(raw, dict):
        raise BsbenchError(f"the config of {model!r} is not a JSON object")
    return raw


def _load_config(model: str, offline: str | None) -> PretrainedConfig:
    """A preset's config, or a checkpoint's: model_type is read from the raw JSON first, so an unsupported
    family (custom code behind `auto_map` included) is refused before transformers sees it, and remote code
    is never run nor asked about (trust_remote_code=False)."""
    if model in PRESETS:
        return preset_config(model)
    check_supported(_raw_config(model, offline), model)
    try:
        config: PretrainedConfig = AutoConfig.from_pretrained(model, trust_remote_code=False,
                                                              local_files_only=offline is not None)
    except Exception as exc:  # any loader failure is a user error about this name
        if offline is not None:
            raise BsbenchError(offline_error("model", model, offline)) from None
        raise BsbenchError(f"cannot load the config of {model!r}: {first_line(exc)}") from None
    if hasattr(config, "auto_map"):
        del config.auto_map  # the standard class for model_type is used, never the checkpoint's own code
    return config


def load_model(
    model: str = "tiny",
    weights: str = "dummy",
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    seed: int = 0,
    kv_bytes: int | None = None,
) -> tuple[PreTrainedModel, ModelInfo]:
    """(torch model in eval mode on `device`, its ModelInfo). See the module docstring.

    `kv_bytes`: the KV budget that will be allocated beside the weights (None: the device's default);
    a model whose weights and KV cannot fit in the memory available is refused before any allocation."""
    if weights not in WEIGHTS:
        raise BsbenchError(f"unknown --weights {weights!r} (choose dummy or checkpoint)")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    offline = check_model_source(model)  # why the hub cannot be used (None: it can, or no hub is needed)
    config = _load_config(model, offline)
    name = model_display_name(model)
    try:
        check_supported(config.to_dict(), model)
        shape = model_shape_from_config(_config_dict(config), torch.empty((), dtype=dt).element_size(), name)
    except (TypeError, ValueError, AttributeError) as exc:  # a size of the wrong type in config.json
        raise BsbenchError(f"model {model!r} has a malformed config: {first_line(exc)}") from None
    if kv_bytes is None:
        kv_bytes = 0 if dev.type == "cuda" else cpu_default_budget(shape.info)
    check_fits(name, shape.num_params, shape.info.dtype_bytes, dev, kv_bytes)
    attn_name = attention.register()

    if weights == "dummy":
        torch.manual_seed(seed)
        if dev.type == "cuda":
            torch.cuda.manual_seed_all(seed)
        with torch.device(dev):  # built in place on the device, in the target dtype (RoPE buffers stay fp32)
            net = AutoModelForCausalLM.from_config(config, dtype=dt, trust_remote_code=False)
    else:
        if model in PRESETS:
            raise BsbenchError(f"preset {model!r} has no checkpoint; use --weights dummy or --model PATH")
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            net = AutoModelForCausalLM.from_pretrained(model, dtype=dt, trust_remote_code=False,
                                                       local_files_only=offline is not None)
        except Exception as exc:
            if offline is not None:
                raise BsbenchError(offline_error("the weights of model", model, offline)) from None
            raise BsbenchError(f"cannot load the weights of {model!r}: {first_line(exc)}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    net = net.to(device=dev).eval()
    if not getattr(net, "_supports_attention_backend", False):
        raise BsbenchError(f"model {model!r} ({type(net).__name__}) does not support custom attention functions")
    net.set_attn_implementation(attn_name)
    net.requires_grad_(False)
    return net, model_info(net.config, dt, name)
