"""The `profiled` tier: Vidur's published CUDA operator timings where they cover a step, the roofline elsewhere.

For a model shape, GPU preset and tensor-parallel degree that Vidur profiled (`profiles.py`), the
linear layers and the elementwise ops of a step are the measured per-layer medians at its token
count (interpolated linearly between measured counts) times the layers, and each all-reduce is the
measured NCCL median at its message size. Attention, the LM head and the engine overhead are the
roofline's (Vidur's attention tables are not in its published snapshot). A step outside a table's
token range (more than 4,096 rows), and every step of a shape or device without a table, is priced
by the roofline: `describe()` says which groups are measured, over which range, and that the
roofline fills in the rest, so the record says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from bsbench.model.shape import ModelShape
from bsbench.sim.cost_model import RooflineCostModel
from bsbench.sim.engine_overhead import EngineOverhead
from bsbench.sim.gpus import DevicePreset
from bsbench.sim.profiles import LayerTable, RowTable, vidur_profiles
from bsbench.sim.work import StepWork


@dataclass(slots=True, frozen=True)
class ProfiledCostModel:
    shape: ModelShape
    device: DevicePreset
    tensor_parallel: int
    overhead: EngineOverhead
    tier: ClassVar[str] = "profiled"
    roofline: RooflineCostModel = field(init=False, repr=False, compare=False)
    table: LayerTable | None = field(init=False, repr=False, compare=False)
    all_reduce: RowTable | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        s = self.shape
        profiles = vidur_profiles()
        object.__setattr__(self, "roofline", RooflineCostModel(s, self.device, self.tensor_parallel, self.overhead))
        object.__setattr__(self, "table", profiles.layer_table(self.device.name, s.hidden_size, s.intermediate_size,
                                                               s.num_heads, s.info.num_kv_heads, self.tensor_parallel))
        object.__setattr__(self, "all_reduce", profiles.all_reduce.get((self.device.name, self.tensor_parallel)))

    def step_time(self, work: StepWork) -> float:
        return sum(self.group_times(work).values())

    def group_times(self, work: StepWork) -> dict[str, float]:
        times = self.roofline.group_times(work)
        if self.table is not None and work.tokens > 0:
            layers = self.shape.info.num_layers
            linear, elementwise = self.table.linear.at(work.tokens), self.table.elementwise.at(work.tokens)
            if linear is not None and elementwise is not None:
                times["linear"], times["elementwise"] = linear * layers, elementwise * layers
        if self.all_reduce is not None and times["all_reduce"] > 0:
            measured = self.all_reduce.at(work.tokens * self.shape.hidden_size * self.shape.info.dtype_bytes)
            if measured is not None:
                times["all_reduce"] = measured * 2 * self.shape.info.num_layers
        return times

    def describe(self) -> dict[str, Any]:
        profiles = vidur_profiles()
        measured: dict[str, Any] = {}
        if self.table is not None:
            xs = self.table.linear.xs
            measured["linear+elementwise"] = {"table": f"{self.table.gpu} {self.table.model} TP{self.tensor_parallel}",
                                              "tokens": [xs[0], xs[-1]]}
        if self.all_reduce is not None:
            measured["all_reduce"] = {"table": f"{self.device.name} {self.tensor_parallel} GPUs",
                                      "bytes": [self.all_reduce.xs[0], self.all_reduce.xs[-1]]}
        fallback = "the roofline prices attention, the LM head, the engine overhead" + (
            ", and every group outside the measured ranges" if measured else
            ", and every other group: no Vidur table covers this model shape, GPU and tensor-parallel degree")
        return {**self.roofline.describe(), "tier": self.tier, "kind": "profiled",
                "profiles": profiles.describe(), "measured": measured, "fallback": fallback}
