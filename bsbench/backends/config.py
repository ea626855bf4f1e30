"""RunConfig: everything but the workload that defines a run, as the user gave it (names not yet resolved)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bsbench.engine.kv_budget import DEFAULT_BLOCK_SIZE
from bsbench.sim.settings import SimSettings


@dataclass(slots=True)
class RunConfig:
    """Everything but the workload that defines a run. `backend` and `clock` are the user's words; the
    backend kind they name is resolved once, by `backends.factory.backend_for`."""

    scheduler: str = "continuous"
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    model: str = "tiny"
    weights: str = "dummy"
    weights_seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    kv_memory: int | None = None  # bytes; None = the device's default budget
    block_size: int = DEFAULT_BLOCK_SIZE
    threads: int | None = None  # torch intra-op threads; None = model.threads.cpu_threads' default (CPU: cores // 2)
    seed: int = 0
    out_dir: Path = Path("results")
    record_tokens: bool = False
    percentiles: tuple[float, ...] = (50, 90, 99)
    backend: str = "real"  # real | sim (openai runs go through backends/openai.py)
    clock: str = "wall"  # wall | virtual; the sim backend is always virtual
    gpu: str | None = None  # device preset of the cost model (sim, or the real runner on a virtual clock)
    calibration: Path | None = None  # --cost-model FILE (alias --calibration): the calibrated cost model
    cost_model: str = "roofline"  # roofline | profiled (ignored when `calibration` is set)
    engine_overhead: str = "eager"  # per-step engine overhead of the cost model: a preset or seconds
    tensor_parallel: int = 1  # sim: GPUs of the preset per instance
    gpu_memory_utilization: float = 0.9  # sim: vLLM's share of each GPU's memory (its KV rule)
    repeat: int = 0  # repeat index of --repeats (the workload's seed is base_seed + repeat)
    base_seed: int | None = None  # the workload seed of repeat 0; None: the workload's own seed (one run)
    instances: str | None = None  # disaggregated topology "prefill=N,decode=M" (sim only); None: one instance
    link: str | None = None  # KV-transfer link preset of a disaggregated run; None: nvlink
    decode_gpu: str | None = None  # GPU preset of the decode instances of a disaggregated run; None: `gpu`

    def session_key(self) -> tuple[Any, ...]:
        return (self.model, self.weights, self.weights_seed, self.device, self.dtype, self.kv_memory, self.block_size,
                self.backend, self.clock, self.gpu, str(self.calibration) if self.calibration else None,
                self.cost_model, self.engine_overhead, self.tensor_parallel, self.gpu_memory_utilization)

    def sim_settings(self) -> SimSettings:
        """The cost-model flags as the simulated backend takes them."""
        return SimSettings(self.cost_model, self.calibration, self.engine_overhead, self.tensor_parallel,
                           self.gpu_memory_utilization)
