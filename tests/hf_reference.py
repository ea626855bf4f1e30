"""The correctness oracle for every test that checks generated tokens against transformers.

`greedy_argmax` is a plain greedy loop over a transformers model with its stock
attention, one prompt alone: the argmax at every step, EOS included (never
masked, never a stop), exactly `num_tokens` tokens. That is what bsbench
promises (vLLM's `ignore_eos`). `model.generate(min_new_tokens=n)` is NOT this
oracle: it masks EOS until n tokens exist, so it differs wherever EOS is the
argmax (tests/test_eos_semantics.py shows a checkpoint where it does).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from bsbench.model.loader import load_model
from bsbench.record import Outcome, RunRecord


def greedy_argmax(model: torch.nn.Module, prompt: list[int], num_tokens: int) -> list[int]:
    """The first `num_tokens` argmax tokens after `prompt`, EOS included, through the model's KV cache."""
    out: list[int] = []
    ids = torch.tensor([prompt])
    past = None
    with torch.inference_mode():
        for _ in range(num_tokens):
            result = model(input_ids=ids, past_key_values=past, use_cache=True)
            past = result.past_key_values
            token = int(result.logits[0, -1].argmax())
            out.append(token)
            ids = torch.tensor([[token]])
    return out


@lru_cache(maxsize=2)
def reference_model(model: str = "tiny", weights: str = "dummy", seed: int = 0) -> torch.nn.Module:
    """The model bsbench loads for these arguments (CPU, fp32), with transformers' sdpa attention, not bsbench's
    hook."""
    net, _ = load_model(model, weights, "cpu", "float32", seed)
    net.set_attn_implementation("sdpa")
    return net


def hf_greedy(
    prompt: list[int], num_tokens: int, model: str = "tiny", weights: str = "dummy", seed: int = 0
) -> list[int]:
    """`greedy_argmax` on the reference copy of the model bsbench ran."""
    return greedy_argmax(reference_model(model, weights, seed), prompt, num_tokens)


def assert_record_matches_oracle(record: RunRecord, prompts: dict[str, list[int]], model: str = "tiny",
                                   weights: str = "dummy") -> int:
    """Every completed request's recorded output equals the oracle; returns how many were checked."""
    checked = 0
    for row in record.requests:
        if row.status is not Outcome.COMPLETED:
            continue
        expected = hf_greedy(prompts[row.id], row.output_len, model, weights)
        assert row.output_ids == expected, f"{record.config.scheduler}: request {row.id} differs"
        checked += 1
    return checked
