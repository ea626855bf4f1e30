"""Model shape without weights: the same ModelInfo as the loader, exact parameter counts, no torch import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

from bsbench.errors import BsbenchError
from bsbench.model.loader import model_info
from bsbench.model.presets import preset_config, preset_names
from bsbench.model.shape import model_shape


def _meta_params(config) -> int:
    """Parameters of the transformers model built on the meta device (no memory, exact shapes)."""
    with torch.device("meta"):
        net = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", preset_names())
def test_presets_match_the_loader_and_the_built_model(name):
    shape = model_shape(name, "float16")
    assert shape.info == model_info(preset_config(name), torch.float16, name)
    assert shape.num_params == _meta_params(preset_config(name))
    assert shape.weight_bytes == 2 * shape.num_params


def test_llama2_13b_weights_are_26_gb():
    shape = model_shape("llama2-13b", "fp16")
    assert abs(shape.weight_bytes / 1e9 - 26.0) < 0.1  # papers.md: LLaMA-2-13B fp16 weights 26.0 GB
    assert shape.info.kv_bytes_per_token == 819_200
    # every weight but the embedding, the LM head and the norms is in the per-token matmuls
    assert shape.num_params - shape.matmul_params - 2 * 32000 * 5120 == 5120 * (2 * 40 + 1)


SMALL = {"vocab_size": 96, "hidden_size": 64, "intermediate_size": 80, "num_hidden_layers": 2,
         "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 128}


@pytest.mark.parametrize("config", [
    LlamaConfig(**SMALL, attention_bias=True, mlp_bias=True, tie_word_embeddings=True),
    Qwen2Config(**SMALL),
    Qwen3Config(**SMALL, head_dim=16),
    MistralConfig(**SMALL, sliding_window=None),
], ids=["llama-bias-tied", "qwen2", "qwen3-head-dim", "mistral"])
def test_local_config_folders(tmp_path, config):
    config.save_pretrained(tmp_path)
    shape = model_shape(str(tmp_path), "float32")
    assert shape.info.name == tmp_path.name
    assert shape.num_params == _meta_params(config)
    assert shape.info == model_info(config, torch.float32, tmp_path.name)
    assert model_shape(str(tmp_path / "config.json"), "fp32") == shape


def test_reading_a_shape_imports_no_torch(tmp_path):
    code = ("import sys; from bsbench.model.shape import model_shape; import bsbench.sim.backend; "
            "s = model_shape('llama2-13b'); assert s.info.dtype_bytes == 2; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_user_errors(tmp_path):
    with pytest.raises(BsbenchError, match="neither a preset"):
        model_shape(str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BsbenchError, match="cannot read"):
        model_shape(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    with pytest.raises(BsbenchError, match="supports"):
        model_shape(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    with pytest.raises(BsbenchError, match="intermediate_size"):
        model_shape(str(tmp_path))
    with pytest.raises(BsbenchError, match="dtype"):
        model_shape("tiny", "float8")
