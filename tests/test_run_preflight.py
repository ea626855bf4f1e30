"""What `bsbench run` refuses before anything runs: one line on stderr, exit 2, no traceback, no record."""

from __future__ import annotations

import json

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def _assert_refused(result, tmp_path, *fragments: str) -> None:
    assert result.code == 2, result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err, result.err
    assert not list(tmp_path.glob("out/*.json"))


def test_a_model_with_a_smaller_vocabulary_than_the_tokenizer_is_refused(bsbench, tmp_path):
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "small-vocab")
    result = bsbench("run", "--model", tmp_path / "small-vocab", "--workload", "smoke", "-n", "4",
                     "--quiet", "--out", tmp_path / "out")
    _assert_refused(result, tmp_path, "vocabulary of 128", "bsbench-bpe-32k", "--tokenizer")


def test_a_replay_with_token_ids_beyond_the_vocabulary_is_refused(bsbench, tmp_path):
    rows = [{"id": "ok", "prompt_ids": [5, 6, 7], "output_len": 2, "arrival_s": 0.0},
            {"id": "too-big", "prompt_ids": [5, 32000, 7], "output_len": 2, "arrival_s": 0.0}]
    path = tmp_path / "replay.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = bsbench("run", "--workload", path, "--quiet", "--out", tmp_path / "out")
    _assert_refused(result, tmp_path, "request too-big has token id 32000", "vocabulary of 32000")
