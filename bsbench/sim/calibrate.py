"""Tier (b): measure the real runner on this device over the calibration grid and fit the linear cost model.

First the operator tables (`op_tables.py`: the decoder's linears and the LM head at
fixed row counts) are measured. Then, for every grid plan (`calib_grid.py`), the
real runner's whole `execute` call is timed, which is what a wall-clock engine
records as the step's duration (host preparation included); on CUDA the device is
synchronised before the clock starts and after it stops. Passes over the grid are
interleaved (every plan once per pass) so that a slow spell of a shared machine
spreads over all plans, and every pass draws fresh scattered block tables (the same
work, another memory layout, as in a real run); the first `warmups` passes are
dropped and the median of the remaining `repeats` is kept. A plan that runs out of
device memory is skipped and listed. Steps of engine runs on synthetic workloads
(`calib_runs.py`), when given, join the grid points in the fit (one measurement
each). The fit and its residuals go into a `Calibration`; every point says its
`source` (grid or run).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bsbench.engine.model_shape import ModelShape
from bsbench.engine.plan import ActivationOOM, StepPlan
from bsbench.environment import capture_environment, package_versions
from bsbench.sim.accuracy import error_stats
from bsbench.sim.calib_grid import GridPoint, default_grid, synthetic_plan
from bsbench.sim.calib_runs import RunStep
from bsbench.sim.calibration import Calibration
from bsbench.sim.linear_fit import FEATURES, features, fit_nonnegative, predict
from bsbench.sim.op_tables import measure_tables
from bsbench.sim.work import step_work

ProgressFn = Callable[[int, int], None]  # (plans timed so far, total)


def _synchroniser(device: Any) -> Callable[[], None]:
    if getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _device_memory(device: Any) -> int | None:
    """Total memory of the calibrated device (GPU memory, or the host's RAM for a CPU), for simulating it."""
    import os

    if getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def calibrate(runner: Any, shape: ModelShape, dtype: str, *, grid: Sequence[GridPoint] | None = None,
              warmups: int = 1, repeats: int = 5, on_progress: ProgressFn | None = None,
              run_steps: Sequence[RunStep] = (), runs: Sequence[dict[str, Any]] = ()) -> Calibration:
    """Time `runner` (a real ModelRunner with its KV cache allocated) on the grid and fit the cost model.

    `run_steps`: measured steps of calibration runs to fit as well; `runs`: what ran (kept in the settings).
    """
    import torch

    if warmups < 0 or repeats < 1:
        raise ValueError("warmups must be >= 0 and repeats >= 1")
    grid = list(grid) if grid is not None else default_grid()
    cache = runner.cache

    def plans_of_pass(seed: int) -> list[StepPlan]:
        return [synthetic_plan(p, cache.block_size, cache.num_blocks, shape.vocab_size, seed) for p in grid]

    plans = plans_of_pass(0)
    sync = _synchroniser(runner.device)
    tables = measure_tables(runner, warmups + max(repeats, 5), sync)
    samples: list[list[float]] = [[] for _ in plans]
    skipped: dict[int, str] = {}
    passes = warmups + repeats
    for r in range(passes):
        for i, plan in enumerate(plans if r == 0 else plans_of_pass(r)):
            if i in skipped:
                continue
            sync()
            start = time.perf_counter()
            try:
                runner.execute(plan)
            except ActivationOOM as exc:
                skipped[i] = str(exc).splitlines()[0][:200]
                continue
            sync()
            if r >= warmups:
                samples[i].append(time.perf_counter() - start)
            if on_progress is not None:
                on_progress(r * len(plans) + i + 1, passes * len(plans))
    kept = [i for i in range(len(plans)) if i not in skipped]
    if len(kept) < len(FEATURES):
        raise RuntimeError(f"only {len(kept)} grid plans ran; the fit needs at least {len(FEATURES)}")
    named = [(grid[i].name, "grid", step_work(plans[i], cache.block_size), samples[i]) for i in kept]
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
        model=shape.describe(),
        dtype=dtype,
        block_size=cache.block_size,
        coefficients=dict(zip(FEATURES, coefficients)),
        residuals=error_stats(measured, predicted),
        points=points,
        settings={"warmups": warmups, "repeats": repeats, "torch": torch.__version__,
                  "bsbench": package_versions(("bsbench",))["bsbench"],
                  "skipped": {grid[i].name: why for i, why in skipped.items()},
                  "malloc_tuning": getattr(runner, "malloc_tuning", {}), "runs": list(runs)},
        tables={name: table.to_dict() for name, table in tables.items()},
    )
