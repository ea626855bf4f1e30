"""Tier (b): measure the real runner on this device over the calibration grid and fit the linear cost model.

First the operator tables (`op_tables.py`: the decoder's linears and the LM head at
fixed row counts) are measured. Then, for every grid plan (`calib_grid.py`), the
real runner's whole `execute` call is timed, which is what a wall-clock engine
records as the step's duration (host preparation included); on CUDA the device is
synchronised before the clock starts and after it stops. Passes over the grid are
interleaved (every plan once per pass) so that a slow spell of a shared machine
spreads over all plans, and every pass draws its block tables from another start (the same
work, laid out as the block manager of a run lays it out); the first `warmups` passes are
dropped and the median of the remaining `repeats` is kept. A plan that runs out of
device memory is skipped and listed. Steps of engine runs on synthetic workloads
(`calib_runs.py`), when given, join the grid points in the fit (one measurement
each). The fit and its residuals go into a `Calibration`; every point says its
`source` (grid or run).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bsbench.engine.plan import ActivationOOM, StepPlan
from bsbench.environment import capture_environment, package_versions
from bsbench.model.shape import ModelShape
from bsbench.sim.accuracy import error_stats
from bsbench.sim.calib_grid import GridPoint, default_grid, synthetic_plan
from bsbench.sim.calibration import Calibration
from bsbench.sim.linear_fit import FEATURES, features, fit_nonnegative, predict
from bsbench.sim.op_tables import TableTimer
from bsbench.sim.work import StepWork, step_work

ProgressFn = Callable[[int, int], None]  # (plans timed so far, total)


def _synchroniser(device: Any) -> Callable[[], None]:
    if getattr(device, "type", str(device)).startswith("cuda"):
        # lazy: torch is heavy
        import torch

        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _device_memory(device: Any) -> int | None:
    """Total memory of the calibrated device (GPU memory, or the host's RAM for a CPU), for simulating it."""

    if getattr(device, "type", str(device)).startswith("cuda"):
        # lazy: torch is heavy
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(slots=True, frozen=True)
class RunStep:
    """One step of a calibration run: where it came from, its work, its measured seconds."""

    source: str  # "workload/scheduler"
    work: StepWork
    measured_s: float


class CalibrationTimer:
    """The measurements of one calibration, taken pass by pass: `run_pass` times the operator tables and every
    grid plan once (a pass with `keep=False` is a warm-up). A caller can also take a pass plan by plan
    (`begin_pass`, then `time_plan`) and spread it over a long session: validate-sim times a few plans before
    each of its real runs, so that the machine's slow and fast spells weigh on the calibration as much as on
    the runs it is compared with. `fit` makes the Calibration."""

    def __init__(self, runner: Any, shape: ModelShape, dtype: str, grid: Sequence[GridPoint] | None = None) -> None:
        self.runner, self.shape, self.dtype = runner, shape, dtype
        self.grid = list(grid) if grid is not None else default_grid()
        self.sync = _synchroniser(runner.device)
        self.table_timer = TableTimer(runner, self.sync)
        self.plans = self._plans(0)
        self.samples: list[list[float]] = [[] for _ in self.plans]
        self.skipped: dict[int, str] = {}
        self.passes = 0
        self._pass_plans = self.plans

    def _plans(self, seed: int) -> list[StepPlan]:
        cache = self.runner.cache
        return [synthetic_plan(p, cache.block_size, cache.num_blocks, self.shape.vocab_size, seed) for p in self.grid]

    def run_pass(self, keep: bool, on_progress: ProgressFn | None = None) -> None:
        """Time the tables once and every grid plan once (fresh block tables each pass); keep the times if `keep`."""
        self.begin_pass()
        for i in range(len(self.plans)):
            self.time_plan(i, keep)
            if on_progress is not None:
                on_progress(i + 1, len(self.plans))

    def begin_pass(self) -> None:
        """Start a pass: time the operator tables once and draw the pass's block tables (the first pass keeps the
        plans drawn at construction). `time_plan` then times its plans, in any order and at any moments."""
        self.table_timer.run_pass()
        self._pass_plans = self.plans if self.passes == 0 else self._plans(self.passes)
        self.passes += 1

    def time_plan(self, i: int, keep: bool) -> None:
        """Time grid plan `i` of the current pass once (a plan that ran out of activation memory is skipped for
        good); keep the time if `keep`."""
        if i in self.skipped:
            return
        plan = self._pass_plans[i]
        self.sync()
        start = time.perf_counter()
        try:
            self.runner.execute(plan)
        except ActivationOOM as exc:
            self.skipped[i] = str(exc).splitlines()[0][:200]
            return
        self.sync()
        if keep:
            self.samples[i].append(time.perf_counter() - start)

    def fit(self, run_steps: Sequence[RunStep] = (), runs: Sequence[dict[str, Any]] = (),
            settings: dict[str, Any] | None = None) -> Calibration:
        """Fit the cost model to the kept grid timings (median per plan) and `run_steps` (one timing each)."""
        # lazy: torch is heavy
        import torch

        runner, cache = self.runner, self.runner.cache
        kept = [i for i in range(len(self.plans)) if i not in self.skipped and self.samples[i]]
        if len(kept) < len(FEATURES):
            raise RuntimeError(f"only {len(kept)} grid plans ran; the fit needs at least {len(FEATURES)}")
        tables = self.table_timer.tables()
        named = [(self.grid[i].name, "grid", step_work(self.plans[i], cache.block_size), self.samples[i])
                 for i in kept]
        named += [(step.source, "run", step.work, [step.measured_s]) for step in run_steps]
        works = [w for _, _, w, _ in named]
        measured = [statistics.median(times) for _, _, _, times in named]
        rows = [features(w, tables) for w in works]
        coefficients = fit_nonnegative(rows, measured)
        predicted = [predict(coefficients, w, tables) for w in works]
        points = [{"name": name, "source": source, "layout": w.layout, "features": dict(zip(FEATURES, row)),
                   "measured_s": m, "predicted_s": p, "samples_s": times}
                  for (name, source, w, times), row, m, p in zip(named, rows, measured, predicted)]
        env = capture_environment(str(runner.device))
        return Calibration(
            device={"name": env.get("device_name"), "device": str(runner.device), "threads": torch.get_num_threads(),
                    "memory_bytes": _device_memory(runner.device)},
            model=self.shape.describe(),
            dtype=self.dtype,
            block_size=cache.block_size,
            coefficients=dict(zip(FEATURES, coefficients)),
            residuals=error_stats(measured, predicted),
            points=points,
            settings={**(settings or {}), "torch": torch.__version__,
                      "bsbench": package_versions(("bsbench",))["bsbench"],
                      "skipped": {self.grid[i].name: why for i, why in self.skipped.items()},
                      "malloc_tuning": getattr(runner, "malloc_tuning", {}), "runs": list(runs)},
            tables={name: table.to_dict() for name, table in tables.items()},
        )


def calibrate(runner: Any, shape: ModelShape, dtype: str, *, grid: Sequence[GridPoint] | None = None,
              warmups: int = 1, repeats: int = 5, on_progress: ProgressFn | None = None,
              run_steps: Sequence[RunStep] = (), runs: Sequence[dict[str, Any]] = ()) -> Calibration:
    """Time `runner` (a real ModelRunner with its KV cache allocated) on the grid, `warmups` + `repeats` passes in a
    row, and fit the cost model. `run_steps`: measured steps of calibration runs to fit as well; `runs`: what ran
    (kept in the settings)."""
    if warmups < 0 or repeats < 1:
        raise ValueError("warmups must be >= 0 and repeats >= 1")
    timer = CalibrationTimer(runner, shape, dtype, grid)
    passes = warmups + repeats
    for r in range(passes):
        progress = None if on_progress is None else (
            lambda done, total, r=r: on_progress(r * total + done, passes * total))
        timer.run_pass(r >= warmups, progress)
    return timer.fit(run_steps, runs, {"warmups": warmups, "repeats": repeats})
