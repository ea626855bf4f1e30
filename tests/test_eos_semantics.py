"""Greedy decoding emits the argmax even when it is EOS, and runs to the workload's output length.

A tiny Llama checkpoint is built whose LM-head row for EOS is scaled up, so
that EOS is the argmax at many steps (the shipped tiny model never makes it
the argmax). bsbench's outputs must equal the plain argmax oracle; the old
oracle, `model.generate(min_new_tokens=n)`, masks EOS and disagrees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from bsbench.record import Outcome, read_record
from bsbench.workloads.build import load_workload
from tests.hf_reference import assert_record_matches_oracle, greedy_argmax, reference_model

EOS = 2
N_REQUESTS, OUTPUT_LEN = 8, 16


@pytest.fixture(scope="module")
def eos_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer Llama with the shipped tokenizer's 32k vocabulary whose EOS logit is often the largest."""
    config = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=1, eos_token_id=EOS, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[EOS] *= 5.0  # about a third of greedy steps pick EOS on the smoke prompts
    folder = tmp_path_factory.mktemp("eos-llama")
    model.save_pretrained(folder)
    return str(folder)


def _prompts() -> dict[str, list[int]]:
    workload = load_workload("smoke", {"num_requests": N_REQUESTS, "max_output_len": OUTPUT_LEN})
    return {r.id: list(r.prompt_ids) for r in workload.requests}


def _generate_min_new_tokens(model: torch.nn.Module, prompt: list[int], n: int) -> list[int]:
    """The oracle the tests used before: transformers' generate with EOS masked until n tokens exist."""
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize("scheduler", ["continuous", "static"])  # packed and padded layouts
def test_eos_is_emitted_when_it_is_the_argmax_and_generation_goes_on(bsbench, tmp_path, eos_checkpoint, scheduler):
    result = bsbench("run", "--model", eos_checkpoint, "--scheduler", scheduler, "--workload", "smoke",
                     "-n", N_REQUESTS, "--max-output-len", OUTPUT_LEN, "--record-tokens", "--quiet", "--out", tmp_path)
    assert result.code == 0, result.err
    (path,) = sorted(Path(tmp_path).glob("*.json"))
    record = read_record(path)
    rows = record.requests
    assert all(r.status is Outcome.COMPLETED and r.num_output == r.output_len for r in rows)
    # EOS came out before the last token of some requests, and they kept generating after it
    assert any(EOS in r.output_ids[:-1] for r in rows)
    checked = assert_record_matches_oracle(record, _prompts(), model=eos_checkpoint, weights="checkpoint")
    assert checked == N_REQUESTS


def test_generate_with_min_new_tokens_is_not_the_oracle(eos_checkpoint):
    """Where the two differ, the oracle's token at the first difference is EOS: generate masked it."""
    model = reference_model(eos_checkpoint, "checkpoint")
    differ = 0
    for prompt in _prompts().values():
        oracle = greedy_argmax(model, prompt, OUTPUT_LEN)
        old = _generate_min_new_tokens(model, prompt, OUTPUT_LEN)
        assert EOS not in old
        if oracle != old:
            differ += 1
            first = next(i for i, (a, b) in enumerate(zip(oracle, old)) if a != b)
            assert oracle[first] == EOS and oracle[:first] == old[:first]
    assert differ >= N_REQUESTS // 2
