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


def test_a_request_the_chosen_policy_would_reject_is_refused_by_its_own_bound(bsbench, tmp_path):
    # 1 MiB of tiny-model KV = 16 blocks of 16 tokens; bucket keeps 0.9 of it: 14 blocks. The request needs
    # 220 + 8 - 1 slots = 15 blocks: the whole cache holds it, bucket's safe share does not.
    workload = ["--workload", "synthetic", "--input-len", "220", "--output-len", "8", "-n", "2", "--kv-memory", "1MiB",
                "--quiet"]
    result = bsbench("run", "--scheduler", "bucket", *workload, "--out", tmp_path / "out")
    _assert_refused(result, tmp_path, "(and 1 more) needs 15 KV blocks", "bucket lets one request hold at most 14",
                    "--bucket-safety 0.9 of 16 blocks")
    result = bsbench("run", "--scheduler", "continuous", *workload, "--out", tmp_path / "ok")
    assert result.code == 0, result.err
    (path,) = (tmp_path / "ok").glob("*.json")
    assert json.loads(path.read_text())["summary"]["completed"] == 2
