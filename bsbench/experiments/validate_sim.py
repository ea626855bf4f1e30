"""validate-sim's experiment: how close the simulator calibrated on this device is to the real runner.

Every (workload, rate) cell runs on the same request list on the real runner (wall clock) `real_repeats` times,
in rounds (real_run_order.py), every real step timed and priced by the calibrated cost model; then once per
scheduler on the simulated backend with that calibration, the same KV budget and block size. Without a
calibration file, the device is calibrated between the real runs (calib_between_runs.py) and the simulator runs
after the last one. Simulated figures are compared with the median of the real runs (validation_cells.py).
User errors (a calibration of another model, a workload the calibration ran, two workloads that are the same
requests) are raised before the model loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsbench.backends.config import RunConfig
from bsbench.backends.run import open_session, run_benchmark
from bsbench.experiments.calib_between_runs import CalibrationBetweenRuns
from bsbench.experiments.calib_runs import calibration_workloads, check_held_out
from bsbench.experiments.real_run_order import real_run_order
from bsbench.experiments.validation_cells import check_distinct, compare_cell, compare_runs
from bsbench.jsonio import write_json_atomic
from bsbench.model.shape import model_shape
from bsbench.model.source import check_model_source
from bsbench.progress import Progress
from bsbench.report.validation_tables import RANK_KEYS
from bsbench.sim.accuracy import errors_by_layout, repeat_noise
from bsbench.sim.calibration import load_calibration
from bsbench.sim.shadow import TimedRunner
from bsbench.workloads.build import load_workload

Steps = list[tuple[Any, float]]  # (StepWork, measured s) of the real steps of one scheduler in one cell


@dataclass(slots=True, frozen=True)
class ValidationSetting:
    """What validate-sim runs. `config`: the real, wall-clock RunConfig (model, device, dtype, KV, block size,
    threads); `calibration`: a calibration file, or None to calibrate between the real runs
    (`calibration_repeats` grid passes, with the synthetic calibration runs too when `calibrate_with_runs`);
    Records go to OUT/real and OUT/sim."""

    config: RunConfig
    workloads: tuple[str, ...]
    rates: tuple[float, ...]
    schedulers: tuple[str, ...]
    out_dir: Path
    real_repeats: int = 3
    num_requests: int = 24
    max_output_len: int = 16
    max_prompt_len: int = 256
    e2e_slo: str | None = None
    seed: int = 0
    calibration: Path | None = None
    calibration_repeats: int = 12
    calibrate_with_runs: bool = False

    def workload_overrides(self, rate: float) -> dict[str, Any]:
        return {"num_requests": self.num_requests, "max_output_len": self.max_output_len, "seed": self.seed,
                "rate": rate, "max_prompt_len": self.max_prompt_len, "e2e_slo": self.e2e_slo}


@dataclass(slots=True)
class ValidationResult:
    """`cells`: one per (workload, rate) (validation_cells.compare_cell), each scheduler's run with its priced
    real steps; `step_stats`: the cost model's error on every real step, by layout; `noise`: the calibration
    timings' own spread; `grid_only_stats`: the step error of the cost model fitted to the grid alone (when
    calibration runs were fitted too, else None); `report`: what `path` (OUT/validation.json) holds."""

    cells: list[dict[str, Any]]
    step_stats: dict[str, Any]
    noise: dict[str, Any]
    grid_only_stats: dict[str, Any] | None
    simulated: str
    report: dict[str, Any]
    path: Path

    def decisive_pairs(self) -> tuple[int, int]:
        """(kept, decided): pairs of schedulers every real run orders alike, and how many the simulator keeps."""
        pairs = [c["decisive_pairs"][k] for c in self.cells for k in RANK_KEYS]
        return sum(p["kept"] for p in pairs), sum(p["decided"] for p in pairs)


def run_validation(setting: ValidationSetting, progress: Progress,
                   on_start: Callable[[str, bool], None] = lambda real, calibrating: None,
                   on_calibrated: Callable[[list[dict[str, Any]]], None] = lambda points: None) -> ValidationResult:
    """Run the validation and write OUT/validation.json. `on_start(real session, calibrating between the runs)`
    is called once the real model is loaded, `on_calibrated(fit points)` once a calibration taken between the
    real runs is fitted (before the simulator runs)."""
    config, out = setting.config, setting.out_dir
    check_model_source(config.model)
    calibration_file = setting.calibration
    calibration_runs: list[dict[str, Any]] = []
    calibration_points: list[dict[str, Any]] = []
    if calibration_file is not None:  # a bad file, or one of another model: exit 2 before the model loads
        given = load_calibration(calibration_file)
        given.check_applies(model_shape(config.model, given.dtype), given.dtype, config.block_size)
        calibration_runs = given.settings.get("runs") or []
        calibration_points = given.points
    run_workloads = calibration_workloads() if calibration_file is None and setting.calibrate_with_runs else None
    if run_workloads is not None:
        calibration_runs = [{"workload": w.name, "fingerprint": w.fingerprint()} for w in run_workloads]
    cells_in: list[tuple[str, float, Any]] = []
    for workload_name in setting.workloads:
        for rate in setting.rates:
            with progress.task("loading the workload"):
                cells_in.append((workload_name, rate, load_workload(workload_name, setting.workload_overrides(rate))))
    check_held_out(calibration_runs, [workload for _, _, workload in cells_in])
    check_distinct(cells_in)

    names = list(setting.schedulers)
    real = open_session(config, progress)
    interleaved = None if calibration_file is not None else CalibrationBetweenRuns(
        config, real, setting.calibration_repeats, run_workloads, len(cells_in) * setting.real_repeats * len(names),
        progress)
    on_start(real.describe(), interleaved is not None)
    real_runs, steps = _run_real(setting, cells_in, real, interleaved, progress)
    if interleaved is not None:
        fitted, calibration_file = interleaved.finish(out / "calibration.json")
        calibration_points = fitted.points
        on_calibrated(fitted.points)
    sim_config = dataclasses.replace(config, backend="sim", clock="virtual", calibration=calibration_file,
                                     dtype=real.dtype, kv_memory=real.kv_budget_bytes, device="auto")
    sim = open_session(sim_config, progress)
    cells = [_simulate_cell(workload_name, rate, workload, real_runs[c], steps[c], sim, sim_config, out, progress,
                            setting.real_repeats)
             for c, (workload_name, rate, workload) in enumerate(cells_in)]

    step_stats = errors_by_layout(row for cell in cells for run in cell["runs"].values() for row in run["steps"])
    noise = repeat_noise(p for p in calibration_points if p.get("source", "grid") == "grid")
    grid_only = interleaved.grid_only_model() if interleaved is not None else None
    grid_only_stats = None
    if grid_only is not None:  # the same real steps priced without the calibration runs: which fit generalises?
        grid_only_stats = errors_by_layout((work.layout, measured, grid_only.step_time(work)) for by_name in steps
                                           for rows in by_name.values() for work, measured in rows)
    report = {"kind": "bsbench-sim-validation", "version": 5, "calibration": str(calibration_file),
              "calibration_between_real_runs": interleaved is not None,
              "simulated": sim.describe(), "real": real.describe(), "real_repeats": setting.real_repeats,
              "per_step": step_stats, "per_step_grid_only": grid_only_stats, "step_repeat_noise": noise,
              "cells": [{**c, "runs": {n: {k: v for k, v in r.items() if k != "steps"} for n, r in c["runs"].items()}}
                        for c in cells]}
    path = write_json_atomic(report, out / "validation.json")
    return ValidationResult(cells, step_stats, noise, grid_only_stats, sim.describe(), report, path)


def _run_real(setting: ValidationSetting, cells_in: list[tuple[str, float, Any]], real: Any,
              interleaved: CalibrationBetweenRuns | None,
              progress: Progress) -> tuple[list[dict[str, list[Any]]], list[dict[str, Steps]]]:
    """Every real run, in rounds, the calibration's plans due before each; per cell: each scheduler's records and
    its real steps."""
    names = list(setting.schedulers)
    timed = TimedRunner(real.runner, real.block_size)
    watched = dataclasses.replace(real, runner=timed)
    real_runs: list[dict[str, list[Any]]] = [{name: [] for name in names} for _ in cells_in]
    steps: list[dict[str, Steps]] = [{name: [] for name in names} for _ in cells_in]
    for slot, run in enumerate(real_run_order(len(cells_in), setting.real_repeats, names)):
        if interleaved is not None:
            interleaved.before_run(slot)
        first_step = len(timed.steps)
        config = dataclasses.replace(setting.config, scheduler=run.scheduler, out_dir=setting.out_dir / "real")
        real_runs[run.cell][run.scheduler].append(
            run_benchmark(cells_in[run.cell][2], config, progress=progress, session=watched))
        steps[run.cell][run.scheduler].extend(timed.steps[first_step:])
    return real_runs, steps


def _simulate_cell(workload_name: str, rate: float, workload: Any, real_runs: dict[str, list[Any]],
                   steps: dict[str, Steps], sim: Any, sim_config: RunConfig, out: Path, progress: Progress,
                   real_repeats: int) -> dict[str, Any]:
    """One (workload, rate): the simulated run of every scheduler against the median of its real runs, the real
    steps priced by the simulator's cost model, and the rankings."""
    runs: dict[str, dict[str, Any]] = {}
    for name, real_list in real_runs.items():
        sim_record = run_benchmark(workload, dataclasses.replace(sim_config, scheduler=name, out_dir=out / "sim"),
                                   progress=progress, session=sim)
        priced = [(work.layout, measured, sim.cost_model.step_time(work)) for work, measured in steps[name]]
        runs[name] = compare_runs([r.summary for r in real_list], sim_record.summary, priced,
                                  [*(str(r.path) for r in real_list), str(sim_record.path)])
    return compare_cell(workload_name, rate, runs, real_repeats)
