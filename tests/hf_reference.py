"""The correctness oracle for end-to-end tests: transformers' own greedy `generate` on each prompt alone."""

from __future__ import annotations

from functools import lru_cache

import torch

from bsbench.engine.model_loader import load_model
from bsbench.record import Outcome, RunRecord


@lru_cache(maxsize=2)
def _reference_model(preset: str, seed: int) -> torch.nn.Module:
    model, _ = load_model(preset, "dummy", "cpu", "float32", seed)
    model.set_attn_implementation("sdpa")  # transformers' attention, not bsbench's paged hook
    return model


def hf_greedy(prompt: list[int], num_tokens: int, preset: str = "tiny", seed: int = 0) -> list[int]:
    """The first `num_tokens` greedy tokens after `prompt` (EOS ignored), as model.generate gives them."""
    model = _reference_model(preset, seed)
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=num_tokens, min_new_tokens=num_tokens, do_sample=False,
        )
    return out[0, len(prompt):].tolist()


def assert_record_matches_generate(record: RunRecord, prompts: dict[str, list[int]]) -> int:
    """Every completed request's recorded output equals hf_greedy; returns how many were checked."""
    checked = 0
    for row in record.requests:
        if row.status is not Outcome.COMPLETED:
            continue
        expected = hf_greedy(prompts[row.id], row.output_len)
        assert row.output_ids == expected, f"{record.config.scheduler}: request {row.id} differs"
        checked += 1
    return checked
