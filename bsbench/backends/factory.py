"""The one place that turns the user's `--backend` and `--clock` words into a backend kind (`words.py` says
what a word means before anything loads).

Every other module asks the chosen `Backend`, its session or its record part (`record/backend_part.py`); none
compares these strings. `check_backend_words` is the CLI's check of the flags that select a backend, made
before anything loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bsbench.backends.base import Backend
from bsbench.backends.cluster.backend import ClusterBackend
from bsbench.backends.cluster.setting import ClusterSetting, cluster_setting
from bsbench.backends.config import RunConfig
from bsbench.backends.real import RealBackend
from bsbench.backends.sim import SimulatedBackend
from bsbench.backends.virtual import VirtualTimeBackend
from bsbench.backends.words import IN_PROCESS, is_simulated
from bsbench.errors import BsbenchError
from bsbench.sim.calibration import load_calibration
from bsbench.sim.gpus import gpu_preset


def backend_for(config: RunConfig) -> Backend:
    """The backend kind of an in-process run configuration (user errors are BsbenchError)."""
    setting = cluster_setting_of(config)
    if config.backend == "sim":
        return ClusterBackend(config, setting) if setting is not None else SimulatedBackend(config)
    if config.backend == "real":
        return VirtualTimeBackend(config) if config.clock == "virtual" else RealBackend(config)
    raise BsbenchError(f"--backend {config.backend!r} runs no session in this process; choose one of "
                       f"{', '.join(IN_PROCESS)}")


def cluster_setting_of(config: RunConfig) -> ClusterSetting | None:
    """The disaggregated setting of `config`, or None for one instance. User errors (a bad topology, link or GPU
    name, a scheduler without a disaggregated form, --link alone, a backend other than sim) are BsbenchError."""
    return cluster_setting(config.scheduler, config.instances, config.link, is_simulated(config.backend),
                           config.scheduler_options, config.decode_gpu)


def check_backend_words(backend: str, clock: str | None, gpu: str | None, calibration: Path | None,
                        device: Any) -> tuple[str, str, str | None]:
    """Check the flags that choose a backend: (backend, clock, canonical GPU preset name).

    --backend sim is always on a virtual clock (--clock virtual is accepted, --clock wall refused); a virtual
    clock needs a cost model (--gpu or --calibration); --gpu and --calibration mean nothing on a wall clock."""
    if backend == "sim":
        if clock == "wall":
            raise BsbenchError("--backend sim runs on a virtual clock; drop --clock wall (or use --backend real)")
        clock = "virtual"
        if device not in (None, "auto"):
            raise BsbenchError("--device does not apply to --backend sim; choose the simulated device with --gpu")
    clock = clock or "wall"
    if clock == "wall" and (gpu is not None or calibration is not None):
        flag = "--gpu" if gpu is not None else "--calibration"
        raise BsbenchError(f"{flag} applies to --backend sim or --clock virtual (a wall clock measures time)")
    if clock == "virtual" and gpu is None and calibration is None:
        what = "--backend sim" if backend == "sim" else "--clock virtual"
        raise BsbenchError(f"{what} needs a cost model: --gpu NAME (a device preset) or --calibration FILE")
    if gpu is not None:

        gpu = gpu_preset(gpu).name
    if calibration is not None:

        load_calibration(calibration)  # a missing, damaged or foreign file: exit 2 before anything loads
    return backend, clock, gpu


def check_cost_model_flags(backend: str, clock: str, given: dict[str, Any]) -> None:
    """The cost-model flags (`given`: flag name with underscores -> value) apply to a virtual clock; tensor
    parallelism and vLLM's memory rule to --backend sim only."""
    for name in given:
        flag = "--" + name.replace("_", "-")
        if clock != "virtual":
            raise BsbenchError(f"{flag} applies to --backend sim or --clock virtual (a wall clock measures time)")
        if name in ("tensor_parallel", "gpu_memory_utilization") and backend != "sim":
            raise BsbenchError(f"{flag} applies to --backend sim (the real runner uses one device and its own "
                               "memory rule)")
