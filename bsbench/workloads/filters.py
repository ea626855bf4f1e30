"""Length filters (presets vllm / sglang / none, explicit overrides) and the prompt/output shaping rules.

Order applied to every text sample: tokenise -> middle-truncate prompts longer
than `max_prompt_len` -> cap outputs at `max_output_len` -> drop by filter.
Truncations and caps are counted in the load report, never silent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bsbench.errors import BsbenchError


@dataclass(slots=True, frozen=True)
class LengthFilter:
    """Drop rules over token counts; None means 'no bound'. Lengths below 1 are always dropped."""

    min_prompt: int = 1
    min_output: int = 1
    max_prompt: int | None = None
    max_output: int | None = None
    max_total: int | None = None

    def reason(self, prompt_len: int, output_len: int) -> str | None:
        """The rule that drops this sample, or None to keep it."""
        if prompt_len < max(1, self.min_prompt):
            return "prompt_too_short"
        if output_len < max(1, self.min_output):
            return "output_too_short"
        if self.max_prompt is not None and prompt_len > self.max_prompt:
            return "prompt_too_long"
        if self.max_output is not None and output_len > self.max_output:
            return "output_too_long"
        if self.max_total is not None and prompt_len + output_len > self.max_total:
            return "total_too_long"
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, LengthFilter] = {
    # vLLM benchmark_serving / sample_sharegpt_requests
    "vllm": LengthFilter(min_prompt=4, min_output=4, max_prompt=1024, max_total=2048),
    # SGLang bench_serving: >= 2 tokens each (its context-length cap is the max_total override)
    "sglang": LengthFilter(min_prompt=2, min_output=2),
    "none": LengthFilter(),
}

OVERRIDE_KEYS = {
    "filter_min_prompt": "min_prompt",
    "filter_min_output": "min_output",
    "filter_max_prompt": "max_prompt",
    "filter_max_output": "max_output",
    "filter_max_total": "max_total",
}


def make_filter(preset: str | None, overrides: dict[str, Any]) -> LengthFilter:
    """A preset (default vllm) with explicit `filter_*` overrides applied."""
    name = (preset or "vllm").lower()
    if name not in PRESETS:
        raise BsbenchError(f"unknown filter preset {preset!r} (choose from {', '.join(PRESETS)})")
    values = PRESETS[name].to_dict()
    for key, field_name in OVERRIDE_KEYS.items():
        value = overrides.get(key)
        if value is not None:
            if int(value) < 0:
                raise BsbenchError(f"{key.replace('_', '-')} must be >= 0, got {value}")
            values[field_name] = int(value)
    return LengthFilter(**values)


def middle_truncate(ids: list[int], max_len: int) -> list[int]:
    """LongBench's convention: keep the first and last halves, drop the middle."""
    if len(ids) <= max_len:
        return ids
    head = max_len // 2
    return ids[:head] + ids[len(ids) - (max_len - head):]
