"""The request spec: what a workload hands to every scheduler, unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Priority = Literal["online", "offline"]


@dataclass(slots=True, frozen=True)
class SLO:
    """Per-request service-level objectives in milliseconds; None means 'no objective'."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def is_empty(self) -> bool:
        return self.ttft_ms is None and self.tpot_ms is None and self.e2e_ms is None


@dataclass(slots=True, frozen=True)
class RequestSpec:
    """One request of a workload.

    Contract: `prompt_ids` are token ids of the run's tokenizer; `output_len` >= 1
    is exactly the number of tokens the engine generates (EOS is ignored);
    `arrival_s` is the scheduled arrival, seconds from the start of the run.
    The same list of specs goes to every scheduler, so comparisons are paired.
    """

    id: str
    prompt_ids: tuple[int, ...]
    output_len: int
    arrival_s: float
    slo: SLO = SLO()
    priority: Priority = "online"
    source: str = ""

    @property
    def prompt_len(self) -> int:
        return len(self.prompt_ids)
