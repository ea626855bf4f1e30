"""Calibration from synthetic engine runs: never a validation workload, and its steps join the fit."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.errors import BsbenchError
from bsbench.experiments.calib_runs import SEED_BASE, WORKLOADS, RunStep, calibration_workloads, check_held_out
from bsbench.model.shape import model_shape
from bsbench.sim.calib_grid import fixed_points
from bsbench.sim.calibrate import calibrate
from bsbench.sim.calibration import load_calibration, save_calibration
from bsbench.sim.linear_fit import predict
from bsbench.sim.work import step_work
from bsbench.workloads.build import load_workload
from tests.fakes import RecordingRunner

BS = 16
# what validate-sim and benchmarks/sim_accuracy.py replay by default
VALIDATION = [(name, rate) for name in ("smoke", "sharegpt-vllm") for rate in (4.0, math.inf)]


def test_calibration_workloads_are_synthetic_seeded_apart_and_never_a_validation_workload():
    assert all(overrides["seed"] >= SEED_BASE for _, overrides in WORKLOADS)
    built = calibration_workloads()
    assert [w.name for w in built] == [name for name, _ in WORKLOADS]
    assert all(w.spec["source"] == "synthetic" for w in built)
    assert [w.fingerprint() for w in built] == [w.fingerprint() for w in calibration_workloads()]  # deterministic
    validation = [load_workload(name, {"num_requests": 24, "max_output_len": 16, "seed": 0, "rate": rate,
                                       "max_prompt_len": 256}) for name, rate in VALIDATION]
    assert not {w.fingerprint() for w in built} & {w.fingerprint() for w in validation}
    runs = [{"workload": w.name, "fingerprint": w.fingerprint()} for w in built]
    check_held_out(runs, validation)  # passes
    with pytest.raises(BsbenchError, match="is the calibration run 'calib-long'"):
        check_held_out(runs, [validation[0], dataclasses.replace(built[1], name="mine")])


def test_run_steps_join_the_fit_and_are_listed(tmp_path):
    def decode(n: int, context: int) -> StepPlan:
        return StepPlan("packed", [SeqChunk(f"r{i}", [5], context, list(range(-(-(context + 1) // BS))))
                                   for i in range(n)])

    steps = [RunStep("calib-short/continuous", step_work(decode(n, 40 + n), BS), 0.004 + 0.001 * n)
             for n in range(1, 9)]
    runs = [{"workload": "calib-short", "fingerprint": "f" * 64, "scheduler": "continuous", "steps": 8}]
    calibration = calibrate(RecordingRunner(BS, 1024), model_shape("tiny", "float32"), "float32", grid=fixed_points(),
                            warmups=0, repeats=1, run_steps=steps, runs=runs)
    run_points = [p for p in calibration.points if p["source"] == "run"]
    assert len(calibration.points) == len(fixed_points()) + len(steps)
    assert [p["measured_s"] for p in run_points] == [s.measured_s for s in steps]
    coefficients = [calibration.coefficients[name] for name in calibration.coefficients]
    assert [p["predicted_s"] for p in run_points] == pytest.approx([predict(coefficients, s.work, {}) for s in steps])
    assert calibration.settings["runs"] == runs
    path = tmp_path / "cal.json"
    save_calibration(calibration, path)
    assert load_calibration(path).settings["runs"] == runs
