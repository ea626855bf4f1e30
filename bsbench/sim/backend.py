"""Open the simulated backend: model shape, device preset, cost model, KV budget, virtual clock and runner.

`open_sim` is what `--backend sim` needs to replace `bench.open_session`: the same
KV-block arithmetic as a real GPU (`memory.default_sim_kv_budget`, or the user's
`kv_memory`), a `SimRunner` on a fresh `VirtualClock` (hand the same clock to the
Engine), and `describe()` for the record (backend, clock, GPU preset with its
sources, cost-model tier and parameters). No torch, no weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsbench.engine.clock import VirtualClock
from bsbench.engine.kv_budget import DEFAULT_BLOCK_SIZE, cpu_default_budget, num_blocks_for_budget
from bsbench.errors import BsbenchError
from bsbench.model.shape import ModelShape, canonical_dtype, model_shape
from bsbench.sim.calibration import CalibratedCostModel, Calibration, load_calibration
from bsbench.sim.cost_model import CostModel, RooflineCostModel
from bsbench.sim.gpus import DevicePreset, gpu_preset
from bsbench.sim.memory import default_sim_kv_budget
from bsbench.sim.sim_runner import SimRunner

SIM_DEFAULT_DTYPE = "bfloat16"  # every preset GPU runs bf16; what `--dtype auto` means for the simulated backend


@dataclass(slots=True)
class SimBackend:
    shape: ModelShape
    device: DevicePreset
    dtype: str
    cost_model: CostModel
    clock: VirtualClock
    runner: SimRunner
    num_blocks: int
    block_size: int
    kv_budget_bytes: int

    def describe(self) -> dict[str, Any]:
        """What a run record says about the backend."""
        return {"backend": "sim", "clock": "virtual", "gpu": self.device.describe(), "dtype": self.dtype,
                "cost_model": self.cost_model.describe(), "kv_memory_bytes": self.kv_budget_bytes,
                "num_kv_blocks": self.num_blocks, "block_size": self.block_size}


def measured_device(calibration: Calibration, memory_bytes: int) -> DevicePreset:
    """The device a calibration was measured on, as a preset with `memory_bytes` of memory and no peaks.

    For simulating the calibrated device itself (sim validation on a CPU, say); only a
    calibrated cost model may run on it, since the roofline needs peaks.
    """
    name = str(calibration.device.get("name") or calibration.device.get("device") or "measured device")
    return DevicePreset(name, memory_bytes, 0.0, 0.0, f"measured: calibration {calibration.to_dict()['content_hash']}")


def load_cost_model(shape: ModelShape, device: DevicePreset | None, dtype: str, block_size: int,
                    calibration: str | Path | None) -> tuple[CostModel, DevicePreset]:
    """The cost model of a run and the device it simulates: calibrated from `calibration` (on `device`, or else
    on the device the calibration was measured on), or the roofline of `device`; user errors are BsbenchError."""
    if calibration is not None:
        loaded = load_calibration(Path(calibration))
        loaded.check_applies(shape, dtype, block_size)
        if device is None:
            memory = int(loaded.device.get("memory_bytes") or 0) or shape.weight_bytes * 4
            device = measured_device(loaded, memory)
        return CalibratedCostModel(loaded, str(calibration)), device
    if device is None:
        raise BsbenchError("the cost model needs --gpu NAME (a device preset) or --calibration FILE")
    if device.peak_flops <= 0 or device.bandwidth <= 0:
        raise BsbenchError(f"device {device.name!r} has no peak figures: the simulated backend needs --calibration")
    return RooflineCostModel(shape, device), device


def open_sim(model: str, gpu: str | DevicePreset | None, *, dtype: str = "auto", kv_memory: int | None = None,
             block_size: int = DEFAULT_BLOCK_SIZE, calibration: str | Path | None = None) -> SimBackend:
    """The simulated backend for `model` (preset or local config) on GPU preset `gpu` (None: the device a
    `calibration` was measured on, with a CPU's default KV budget when that was a CPU); user errors are
    BsbenchError."""
    if str(dtype).lower() != "auto":
        dtype_name = canonical_dtype(dtype)
    elif calibration is not None:
        dtype_name = load_calibration(Path(calibration)).dtype  # `--dtype auto`: the calibrated one
    else:
        dtype_name = SIM_DEFAULT_DTYPE
    shape = model_shape(model, dtype_name)
    preset = gpu_preset(gpu) if isinstance(gpu, str) else gpu
    cost, device = load_cost_model(shape, preset, dtype_name, block_size, calibration)
    clock = VirtualClock()
    runner = SimRunner(shape, device, cost, clock)
    if kv_memory is not None:
        budget = kv_memory
    elif isinstance(cost, CalibratedCostModel) and preset is None \
            and str(cost.calibration.device.get("device", "")).startswith("cpu"):
        budget = cpu_default_budget(shape.info)  # what the real runner takes on the CPU it was calibrated on
    else:
        budget = default_sim_kv_budget(shape, device)
    num_blocks = num_blocks_for_budget(budget, shape.info, block_size)
    runner.allocate_kv(num_blocks, block_size)
    return SimBackend(shape, device, dtype_name, cost, clock, runner, num_blocks, block_size, budget)
