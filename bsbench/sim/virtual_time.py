"""The real runner on a virtual clock: real tokens, time from the cost model.

`VirtualTimeRunner` executes every plan on the real runner (real tokens), then
advances the virtual clock by the cost model's prediction for that plan's work,
never by the measured time, so scheduling decisions (and hence padding, batch
sizes and OOM events) do not depend on the host. The measured times travel beside
the prediction in the step output (`measured_forward_s`, `measured_step_s`).

With `activation_room` (bytes left for activations after weights and KV) the
activation-OOM decision is also made by the estimate (`memory.step_activation_bytes`),
before the step runs, so it is deterministic too; a real out-of-memory error of the
device still ends the step as ActivationOOM.
"""

from __future__ import annotations

import time
from typing import Any

from bsbench.engine.clock import VirtualClock
from bsbench.engine.plan import ActivationOOM, StepOutput, StepPlan
from bsbench.engine.plan_check import validate_plan
from bsbench.model.shape import ModelShape
from bsbench.sim.cost_model import CostModel
from bsbench.sim.memory import step_activation_bytes
from bsbench.sim.work import step_work
from bsbench.units import format_bytes


class VirtualTimeRunner:
    def __init__(self, runner: Any, shape: ModelShape, cost_model: CostModel, clock: VirtualClock,
                 activation_room: int | None = None) -> None:
        """`runner`: a real ModelRunner with its KV cache allocated."""
        self.runner = runner
        self.shape = shape
        self.cost_model = cost_model
        self.clock = clock
        self.activation_room = activation_room

    def execute(self, plan: StepPlan) -> StepOutput:
        cache = self.runner.cache
        validate_plan(plan, cache.block_size, cache.num_blocks, self.shape.info.max_model_len)  # before pricing it
        work = step_work(plan, cache.block_size)
        if self.activation_room is not None:
            need = step_activation_bytes(work, self.shape)
            if need > self.activation_room:
                raise ActivationOOM(f"estimated out of memory: the step needs {format_bytes(need)} of activations, "
                                    f"{format_bytes(self.activation_room)} are free")
        start = time.perf_counter()
        out = self.runner.execute(plan)  # synchronises the device before it returns
        measured = time.perf_counter() - start
        seconds = self.cost_model.step_time(work)
        self.clock.advance(seconds)
        return StepOutput(next_tokens=out.next_tokens, forward_s=seconds, measured_forward_s=out.forward_s,
                          measured_step_s=measured)
