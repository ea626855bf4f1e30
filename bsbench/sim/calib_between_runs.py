"""A calibration measured between validate-sim's real runs (see `CalibrationBetweenRuns`).

A shared machine's speed drifts by tens of percent within a minute. A calibration taken
before minutes of real runs is then compared with runs made in another spell; spread
over the same minutes, its passes see the same mix of slow and fast spells as the runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bsbench.engine.model_loader import loaded_model_shape
from bsbench.sim.calib_runs import CalibrationRuns
from bsbench.sim.calibrate import CalibrationTimer
from bsbench.sim.calibration import CalibratedCostModel, Calibration, save_calibration


class CalibrationBetweenRuns:
    """A calibration measured between validate-sim's real runs: a warm-up pass now, then `passes` grid passes (and,
    with runs, the synthetic calibration runs) spread evenly over the `blocks` of real runs, so that the machine's
    slow and fast spells weigh on the calibration as on the runs it is compared with."""

    def __init__(self, config: Any, session: Any, passes: int, with_runs: bool, blocks: int, progress: Any) -> None:
        self.progress, self.passes, self.blocks = progress, passes, blocks
        self.timer = CalibrationTimer(session.runner, loaded_model_shape(session.runner.model, session.info),
                                      session.dtype)
        self.runs = CalibrationRuns(config, session) if with_runs else None
        self._time_pass(False, "calibration: warm-up pass over the grid")

    def _time_pass(self, keep: bool, label: str) -> None:
        with self.progress.task(label, unit="plans") as task:
            self.timer.run_pass(keep, lambda done, total: task.update(done, total=total))

    def before_block(self, block: int) -> None:
        """The grid passes and calibration runs that fall before real block `block` (of `blocks`)."""
        for i in due_before(block, self.passes, self.blocks):
            self._time_pass(True, f"calibration: grid pass {i + 1}/{self.passes}")
        if self.runs is not None:
            for j in due_before(block, len(self.runs.jobs), self.blocks):
                self.runs.run(j, self.progress)

    def grid_only_model(self) -> CalibratedCostModel | None:
        """The cost model fitted to the grid alone when calibration runs were fitted too (else None)."""
        return CalibratedCostModel(self.timer.fit()) if self.runs is not None else None

    def finish(self, path: Path) -> tuple[Calibration, Path]:
        """Fit and save the calibration; (calibration, path)."""
        runs = self.runs
        fitted = self.timer.fit(runs.steps if runs else (), runs.ran if runs else (),
                                {"warmups": 1, "repeats": self.passes, "between_real_runs": self.blocks})
        save_calibration(fitted, path)
        return fitted, path


def due_before(block: int, count: int, blocks: int) -> list[int]:
    """Which of `count` jobs, spread evenly over `blocks` blocks (job i before block i * blocks // count), are due
    before block `block`: every job exactly once, the first before block 0, in order."""
    return [i for i in range(count) if i * blocks // count == block]
