"""A calibration measured between validate-sim's real runs (see `CalibrationBetweenRuns`).

A shared machine's speed drifts by tens of percent within a minute. A calibration taken
before minutes of real runs is then compared with runs made in another spell; spread
over the same minutes, its timings see the same mix of slow and fast spells as the runs.
It is spread plan by plan, a few before every real run, rather than pass by pass: the
machine switches between a slow and a fast spell every few seconds, about the length of
a pass, so whole passes put every plan of a pass in one spell and left the fit's level
to a dozen draws (on 2026-11-22, 4 of 12 passes timed a one-row decode in the fast spell
and 3 more near it, against about one real run in six, and the simulator came out
7-20% fast on the real runs' small decodes);
plan by plan, each plan's timings and different plans fall in different spells.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bsbench.experiments.calib_runs import CalibrationRuns
from bsbench.model.loader import loaded_model_shape
from bsbench.sim.calibrate import CalibrationTimer
from bsbench.sim.calibration import CalibratedCostModel, Calibration, save_calibration


class CalibrationBetweenRuns:
    """A calibration measured between validate-sim's real runs: a warm-up pass now, then `passes` grid passes (and,
    with runs, the synthetic calibration runs) spread evenly over the `runs` real runs, plan by plan, so that the
    machine's slow and fast spells weigh on the calibration as on the runs it is compared with."""

    def __init__(self, config: Any, session: Any, passes: int, run_workloads: list[Any] | None, runs: int,
                 progress: Any) -> None:
        """`run_workloads`: the calibration workloads (`calib_runs.calibration_workloads()`) whose engine runs are
        fitted too, or None for the grid alone."""
        self.progress, self.passes, self.real_runs = progress, passes, runs
        self.timer = CalibrationTimer(session.runner, loaded_model_shape(session.runner.model, session.info),
                                      session.dtype)
        self.runs = CalibrationRuns(config, session, run_workloads) if run_workloads is not None else None
        with self.progress.task("calibration: warm-up pass over the grid", unit="plans") as task:
            self.timer.run_pass(False, lambda done, total: task.update(done, total=total))

    def before_run(self, run: int) -> None:
        """The grid timings (pass after pass, plan after plan) and calibration runs due before real run `run` (of
        `runs`)."""
        per_pass = len(self.timer.plans)
        due = due_before(run, self.passes * per_pass, self.real_runs)
        if due:
            with self.progress.task(f"calibration: {len(due)} grid plans", unit="plans") as task:
                for done, unit in enumerate(due, 1):
                    plan = unit % per_pass
                    if plan == 0:
                        self.timer.begin_pass()
                    self.timer.time_plan(plan, keep=True)
                    task.update(done, total=len(due))
        if self.runs is not None:
            for j in due_before(run, len(self.runs.jobs), self.real_runs):
                self.runs.run(j, self.progress)

    def grid_only_model(self) -> CalibratedCostModel | None:
        """The cost model fitted to the grid alone when calibration runs were fitted too (else None)."""
        return CalibratedCostModel(self.timer.fit()) if self.runs is not None else None

    def finish(self, path: Path) -> tuple[Calibration, Path]:
        """Fit and save the calibration; (calibration, path)."""
        runs = self.runs
        fitted = self.timer.fit(runs.steps if runs else (), runs.ran if runs else (),
                                {"warmups": 1, "repeats": self.passes, "between_real_runs": self.real_runs})
        save_calibration(fitted, path)
        return fitted, path


def due_before(slot: int, count: int, slots: int) -> list[int]:
    """Which of `count` jobs, spread evenly over `slots` slots (job i before slot i * slots // count), are due
    before slot `slot`: every job exactly once, the first before slot 0, in order."""
    first = -(-slot * count // slots)
    return list(range(first, min(count, -(-(slot + 1) * count // slots))))
