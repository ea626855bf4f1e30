"""A real runner watched by a cost model: what sim validation compares step by step.

`PredictingRunner.execute` runs the plan on the real runner and times the whole call
(what a calibration measures and what a wall-clock engine charges the step), then
prices the same plan's work with the cost model. Nothing is changed: the clock, the
tokens and the scheduling are the real run's. Rows: (layout, measured_s, predicted_s).
"""

from __future__ import annotations

import time
from typing import Any

from bsbench.engine.plan import StepOutput, StepPlan
from bsbench.sim.cost_model import CostModel
from bsbench.sim.work import step_work


class PredictingRunner:
    def __init__(self, runner: Any, cost_model: CostModel, block_size: int) -> None:
        self.runner = runner
        self.cost_model = cost_model
        self.block_size = block_size
        self.rows: list[tuple[str, float, float]] = []

    def execute(self, plan: StepPlan) -> StepOutput:
        start = time.perf_counter()
        out: StepOutput = self.runner.execute(plan)
        measured = time.perf_counter() - start
        self.rows.append((plan.layout, measured, self.cost_model.step_time(step_work(plan, self.block_size))))
        return out
