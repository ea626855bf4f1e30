"""Real runners watched step by step: what calibration from runs and sim validation measure.

`TimedRunner.execute` runs the plan on the real runner and times the whole call (what
a calibration measures and what a wall-clock engine charges the step), and keeps the
plan's work (`work.step_work`) with the measured seconds, for a cost model to price
later. Nothing is changed: the clock, the tokens and the scheduling are the real run's.
"""

from __future__ import annotations

import time
from typing import Any

from bsbench.engine.plan import StepOutput, StepPlan
from bsbench.sim.work import StepWork, step_work


class TimedRunner:
    """`steps`: (work, measured_s) of every plan executed, in order."""

    def __init__(self, runner: Any, block_size: int) -> None:
        self.runner = runner
        self.block_size = block_size
        self.steps: list[tuple[StepWork, float]] = []

    def execute(self, plan: StepPlan) -> StepOutput:
        start = time.perf_counter()
        out: StepOutput = self.runner.execute(plan)
        measured = time.perf_counter() - start
        self.steps.append((step_work(plan, self.block_size), measured))
        return out
