"""Open the simulated backend: model shape, device preset, cost model, KV budget, virtual clock and runner.

`open_sim` is what `--backend sim` needs to replace `bench.open_session`: a cost model chosen by
`SimSettings` (roofline, profiled or a calibration file), one GPU's share of the model under
tensor parallelism (`parallel.gpu_shape`), the KV budget of vLLM's memory rule
(`vllm_memory.py`, or the user's `kv_memory`), a `SimRunner` on a fresh `VirtualClock` (hand the
same clock to the Engine), and `describe()` for the record (backend, clock, GPU preset with its
sources, cost-model tier, parameters and sources, the memory split). No torch, no weights.
Memory figures (`kv_memory`, the KV blocks) are per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bsbench.engine.clock import VirtualClock
from bsbench.engine.kv_budget import DEFAULT_BLOCK_SIZE, cpu_default_budget, num_blocks_for_budget
from bsbench.errors import BsbenchError
from bsbench.model.shape import ModelShape, canonical_dtype, model_shape
from bsbench.sim.calibration import CalibratedCostModel, Calibration, load_calibration
from bsbench.sim.cost_model import CostModel, RooflineCostModel
from bsbench.sim.engine_overhead import engine_overhead
from bsbench.sim.gpus import DevicePreset, gpu_preset
from bsbench.sim.parallel import gpu_shape
from bsbench.sim.profiled import ProfiledCostModel
from bsbench.sim.settings import SimSettings
from bsbench.sim.sim_runner import SimRunner
from bsbench.sim.vllm_memory import profiled_batched_tokens, vllm_memory

SIM_DEFAULT_DTYPE = "bfloat16"  # every preset GPU runs bf16; what `--dtype auto` means for the simulated backend


@dataclass(slots=True)
class SimBackend:
    shape: ModelShape  # one GPU's share of the model
    device: DevicePreset
    dtype: str
    cost_model: CostModel
    clock: VirtualClock
    runner: SimRunner
    num_blocks: int
    block_size: int
    kv_budget_bytes: int
    tensor_parallel: int = 1
    memory: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What a run record says about the backend."""
        return {"backend": "sim", "clock": "virtual", "gpu": self.device.describe(), "dtype": self.dtype,
                "tensor_parallel": self.tensor_parallel, "cost_model": self.cost_model.describe(),
                "kv_memory_bytes": self.kv_budget_bytes, "num_kv_blocks": self.num_blocks,
                "block_size": self.block_size, "memory": self.memory}


def measured_device(calibration: Calibration, memory_bytes: int) -> DevicePreset:
    """The device a calibration was measured on, as a preset with `memory_bytes` of memory and no peaks.

    For simulating the calibrated device itself (sim validation on a CPU, say); only a
    calibrated cost model may run on it, since the roofline needs peaks.
    """
    name = str(calibration.device.get("name") or calibration.device.get("device") or "measured device")
    return DevicePreset(name, memory_bytes, 0.0, 0.0, f"measured: calibration {calibration.to_dict()['content_hash']}")


def load_cost_model(shape: ModelShape, device: DevicePreset | None, dtype: str, block_size: int,
                    settings: SimSettings | None = None) -> tuple[CostModel, DevicePreset]:
    """The cost model of a run and the device it simulates: calibrated from `settings.calibration` (on `device`, or
    else on the device the calibration was measured on), or the roofline or profiled tier of `device`; user errors
    are BsbenchError."""
    settings = settings or SimSettings()
    overhead = engine_overhead(settings.engine_overhead)
    if settings.calibration is not None:
        if settings.tensor_parallel != 1:
            raise BsbenchError("a calibration file describes one device: --tensor-parallel needs --cost-model "
                               "roofline or profiled")
        loaded = load_calibration(Path(settings.calibration))
        loaded.check_applies(shape, dtype, block_size)
        if device is None:
            memory = int(loaded.device.get("memory_bytes") or 0) or shape.weight_bytes * 4
            device = measured_device(loaded, memory)
        return CalibratedCostModel(loaded, str(settings.calibration)), device
    if device is None:
        raise BsbenchError("the cost model needs --gpu NAME (a device preset) or --cost-model FILE")
    if device.peak_flops <= 0 or device.bandwidth <= 0:
        raise BsbenchError(f"device {device.name!r} has no peak figures: the simulated backend needs a calibration")
    if settings.cost_model == "profiled":
        return ProfiledCostModel(shape, device, settings.tensor_parallel, overhead), device
    return RooflineCostModel(shape, device, settings.tensor_parallel, overhead), device


def open_sim(model: str, gpu: str | DevicePreset | None, *, dtype: str = "auto", kv_memory: int | None = None,
             block_size: int = DEFAULT_BLOCK_SIZE, settings: SimSettings | None = None) -> SimBackend:
    """The simulated backend for `model` (preset or local config) on GPU preset `gpu` (None: the device a
    calibration was measured on, with a CPU's default KV budget when that was a CPU); user errors are
    BsbenchError."""
    settings = settings or SimSettings()
    calibration = settings.calibration
    if str(dtype).lower() != "auto":
        dtype_name = canonical_dtype(dtype)
    elif calibration is not None:
        dtype_name = load_calibration(Path(calibration)).dtype  # `--dtype auto`: the calibrated one
    else:
        dtype_name = SIM_DEFAULT_DTYPE
    shape = model_shape(model, dtype_name)
    preset = gpu_preset(gpu) if isinstance(gpu, str) else gpu
    cost, device = load_cost_model(shape, preset, dtype_name, block_size, settings)
    tp = settings.tensor_parallel
    gpu_part = gpu_shape(shape, tp)
    clock = VirtualClock()
    runner = SimRunner(gpu_part, device, cost, clock)
    memory: dict[str, Any] = {}
    if kv_memory is not None:
        budget = kv_memory
        memory = {"rule": "--kv-memory", "kv_cache": budget}
    elif isinstance(cost, CalibratedCostModel) and preset is None \
            and str(cost.calibration.device.get("device", "")).startswith("cpu"):
        budget = cpu_default_budget(shape.info)  # what the real runner takes on the CPU it was calibrated on
        memory = {"rule": "cpu default", "kv_cache": budget}
    else:
        split = vllm_memory(gpu_part, device, settings.gpu_memory_utilization, tp, profiled_batched_tokens(shape))
        budget = split.kv_cache
        memory = split.describe()
    num_blocks = num_blocks_for_budget(budget, gpu_part.info, block_size)
    runner.allocate_kv(num_blocks, block_size)
    return SimBackend(gpu_part, device, dtype_name, cost, clock, runner, num_blocks, block_size, budget, tp, memory)
