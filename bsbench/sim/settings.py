"""The simulated backend's cost-model settings, as the flags give them (a light module: no cost model loads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bsbench.sim.engine_overhead import DEFAULT_ENGINE_OVERHEAD
from bsbench.sim.vllm_memory import DEFAULT_GPU_MEMORY_UTILIZATION

TIERS = ("roofline", "profiled")  # `--cost-model` words; anything else names a calibration file


@dataclass(slots=True, frozen=True)
class SimSettings:
    """The cost-model flags: `cost_model` roofline | profiled (a calibration file is `calibration`),
    `engine_overhead` a preset or seconds, `tensor_parallel` GPUs per instance, `gpu_memory_utilization`
    vLLM's share of memory."""

    cost_model: str = "roofline"
    calibration: Path | None = None
    engine_overhead: str = DEFAULT_ENGINE_OVERHEAD
    tensor_parallel: int = 1
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION

    def __post_init__(self) -> None:
        if self.calibration is None and self.cost_model not in TIERS:
            object.__setattr__(self, "calibration", Path(self.cost_model))
        if self.calibration is not None:
            object.__setattr__(self, "cost_model", "calibrated")
