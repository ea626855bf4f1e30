"""A loaded model, its runner and its KV cache: what a backend opens, reusable across runs with the same key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsbench.engine.model_info import ModelInfo
from bsbench.record.backend_part import BackendPart


@dataclass(slots=True)
class ModelSession:
    """What a run drives. `part` is the backend's own section of every record made in this session."""

    key: tuple[Any, ...]
    runner: Any  # engine.loop.Runner: the model runner, or a simulated or virtual-time one
    info: ModelInfo
    device: str
    dtype: str
    num_blocks: int
    block_size: int
    kv_budget_bytes: int
    part: BackendPart
    banner: str  # one line: what runs the steps and what the times are (Backend.describe)
    clock: Any = None  # the engine's clock: None = a fresh WallClock per run; the cost model's VirtualClock otherwise
    cost_model: Any = None  # sim.cost_model.CostModel when the times come from one
    threads: int | None = None  # torch intra-op threads of a runner on the CPU

    def backend_id(self) -> str:
        """The id its records will carry (BackendPart.backend_id)."""
        return self.part.backend_id()

    def timing_label(self) -> str:
        """What its records' times are ('' when measured; BackendPart.timing_label)."""
        return self.part.timing_label()

    def describe(self) -> str:
        return self.banner
