"""Calibration from engine runs of SYNTHETIC workloads: the steps real schedulers make, timed on this device.

The grid (`calib_grid.py`) covers every kind of step but not in the proportions, nor
in the back-to-back sequence, of a real run. With `--with-runs`, calibration also
runs the four schedulers on the workloads below (the real runner, wall clock) and
adds every step they made, its work and its measured time, to the fit.

These workloads are synthetic (random token ids, lengths drawn by the synthetic
source) with seeds from `SEED_BASE` up, so they are never a validation workload:
validation replays dataset workloads (sharegpt-vllm, mixed-longtail, ...). The calibration
file lists the fingerprint of every workload it ran, and `check_held_out` refuses to
validate against any of them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from bsbench.backends.run import run_benchmark
from bsbench.errors import BsbenchError
from bsbench.sim.calibrate import RunStep
from bsbench.sim.shadow import TimedRunner
from bsbench.workloads.build import load_workload

SEED_BASE = 1000
SCHEDULERS = ("static", "continuous", "uellm", "bucket")
# (name, overrides of the synthetic source): short and long prompts, short and longer outputs, saturated and
# partly idle; 24 requests each, so the whole set runs in well under a minute on the tiny model on a CPU
WORKLOADS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("calib-short", {"input_len": 64, "output_len": 12, "length_dist": "uniform", "range_ratio": 0.9,
                     "rate": math.inf, "seed": SEED_BASE + 1}),
    ("calib-long", {"input_len": 192, "output_len": 16, "length_dist": "uniform", "range_ratio": 0.9,
                    "rate": 16.0, "seed": SEED_BASE + 2}),
    ("calib-zipf", {"input_len": 128, "output_len": 24, "length_dist": "zipf", "rate": 8.0, "seed": SEED_BASE + 3}),
)
NUM_REQUESTS = 24


def calibration_workloads() -> list[Any]:
    """The synthetic workloads of `WORKLOADS`, built (deterministic: fixed seeds)."""

    out = []
    for name, overrides in WORKLOADS:
        workload = load_workload("synthetic", {"num_requests": NUM_REQUESTS, **overrides})
        out.append(dataclasses.replace(workload, name=name))
    return out


class CalibrationRuns:
    """Every scheduler on every calibration workload (`jobs`), run one at a time with `run(i)` on the session's real
    runner, so that a caller can spread them over a long measurement. `steps` and `ran` grow in job order.
    `workloads`: `calibration_workloads()`, when the caller built them already."""

    def __init__(self, config: Any, session: Any, workloads: list[Any] | None = None) -> None:
        self.config = config
        self.timed = TimedRunner(session.runner, session.block_size)
        self.watched = dataclasses.replace(session, runner=self.timed)
        built = calibration_workloads() if workloads is None else workloads
        self.jobs = [(workload, scheduler) for workload in built for scheduler in SCHEDULERS]
        self.steps: list[RunStep] = []
        self.ran: list[dict[str, Any]] = []

    def run(self, index: int, progress: Any) -> None:
        """Run job `index` (records are not saved) and keep its steps."""

        workload, scheduler = self.jobs[index]
        first = len(self.timed.steps)
        run_benchmark(workload, dataclasses.replace(self.config, scheduler=scheduler), progress=progress,
                      session=self.watched, save=False)
        source = f"{workload.name}/{scheduler}"
        self.steps.extend(RunStep(source, work, measured) for work, measured in self.timed.steps[first:])
        self.ran.append({"workload": workload.name, "fingerprint": workload.fingerprint(), "scheduler": scheduler,
                         "steps": len(self.timed.steps) - first})


def run_steps(config: Any, session: Any, progress: Any) -> tuple[list[RunStep], list[dict[str, Any]]]:
    """Run every scheduler on every calibration workload with `session`'s real runner, in a row; (steps, what ran).

    `config` is the session's RunConfig; records are not saved.
    """
    runs = CalibrationRuns(config, session)
    for i in range(len(runs.jobs)):
        runs.run(i, progress)
    return runs.steps, runs.ran


def check_held_out(calibration_runs: Iterable[dict[str, Any]], workloads: Iterable[Any]) -> None:
    """BsbenchError when a workload to validate on was one the calibration ran (same fingerprint)."""
    seen = {run["fingerprint"]: run["workload"] for run in calibration_runs}
    for workload in workloads:
        if workload.fingerprint() in seen:
            raise BsbenchError(f"workload {workload.name!r} is the calibration run {seen[workload.fingerprint()]!r}: "
                               "validate on workloads the calibration never ran")
