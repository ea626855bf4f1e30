"""--backend / --clock / --gpu / --calibration through the real CLI: the records they write, what reports
do with them, and the user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bsbench.experiments.sweep import record_key, run_key
from bsbench.model.shape import model_shape
from bsbench.record import RecordConfig, RunRecord, read_record
from bsbench.record.backend_part import RealPart, SimPart, VirtualTimePart
from bsbench.report import comparison as report
from bsbench.sim.calibration import Calibration, save_calibration
from bsbench.sim.linear_fit import FEATURES
from tests.record_factory import make_record

SIM = ("--backend", "sim", "--gpu", "a100-40gb", "--model", "llama2-13b", "--workload", "smoke", "-n", "12",
       "--quiet")


def _only(folder: Path) -> RunRecord:
    (path,) = folder.glob("*.json")
    return read_record(path)


def _without_run_identity(path: Path) -> dict:
    data = json.loads(path.read_text())
    data.pop("created")
    data.pop("environment")
    return data


@pytest.mark.parametrize("scheduler", ["static", "bucket"])
def test_two_sim_runs_write_equal_records(bsbench, tmp_path, scheduler):
    for name in ("a", "b"):
        assert bsbench("run", *SIM, "--scheduler", scheduler, "--out", tmp_path / name).code == 0
    first, second = (next((tmp_path / n).glob("*.json")) for n in ("a", "b"))
    assert _without_run_identity(first) == _without_run_identity(second)
    record = read_record(first)
    assert record.summary["completed"] == 12 and record.steps


def test_sim_record_says_what_produced_its_times(bsbench, tmp_path):
    result = bsbench("run", *SIM, "--out", tmp_path)
    assert result.code == 0 and "simulated a100-40gb" in result.out and "simulated (sim, a100-40gb" in result.out
    record = _only(tmp_path)
    config = record.config
    assert config.backend == SimPart("a100-40gb", "roofline", None)
    assert config.backend.model_weights() is None and config.threads is None
    assert record.environment["device_name"] == "simulated a100-40gb"
    assert record.environment["cost_model"]["kind"] == "roofline"
    # the virtual timeline is the cost model's: each step lasts exactly its predicted time
    assert all(s.duration_s == pytest.approx(s.forward_s) and s.measured_step_s is None for s in record.steps)


def test_a_sim_run_never_imports_torch(tmp_path):
    code = ("import sys; from bsbench.cli import main\n"
            "try:\n"
            f"    main(['run', *{list(SIM)!r}, '--out', {str(tmp_path)!r}])\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]
    assert isinstance(_only(tmp_path).config.backend, SimPart)


def test_real_runner_on_a_virtual_clock_is_deterministic_and_keeps_what_it_measured(bsbench, tmp_path):
    args = ("run", "--clock", "virtual", "--gpu", "a100-40gb", "--device", "cpu", "--threads", "1", "--workload",
            "smoke", "-n", "6", "--max-output-len", "6", "--scheduler", "static", "--record-tokens", "--quiet")
    records = []
    for name in ("a", "b"):
        assert bsbench(*args, "--out", tmp_path / name).code == 0
        records.append(_only(tmp_path / name))
    first, second = records
    assert isinstance(first.config.backend, VirtualTimePart) and first.config.backend.gpu == "a100-40gb"
    assert "virtual clock" in first.environment["device_name"]
    assert [s.to_json() | {"measured_forward_s": 0, "measured_step_s": 0} for s in first.steps] == \
           [s.to_json() | {"measured_forward_s": 0, "measured_step_s": 0} for s in second.steps]
    assert [r.token_times for r in first.requests] == [r.token_times for r in second.requests]
    assert [r.output_ids for r in first.requests] == [r.output_ids for r in second.requests]
    for step in first.steps:  # time from the cost model; the measurement is kept beside it
        assert step.duration_s == pytest.approx(step.forward_s)
        assert step.measured_step_s is not None and step.measured_forward_s is not None
        assert step.measured_step_s >= step.measured_forward_s > 0


def _calibration(model: str, tmp_path: Path) -> tuple[Path, str]:
    """A calibration file for `model` in bfloat16 (coefficients made up: 1 ms a step, 10 us a token)."""
    coefficients = {name: 0.0 for name in FEATURES} | {"step": 1e-3, "tokens": 1e-5}
    calibration = Calibration(device={"name": "Test CPU", "device": "cpu", "threads": 1, "memory_bytes": 2**34},
                              model=model_shape(model, "bfloat16").describe(), dtype="bfloat16", block_size=16,
                              coefficients=coefficients, residuals={}, points=[], settings={})
    path = tmp_path / f"{model}.json"
    return path, save_calibration(calibration, path)


def test_calibrated_sim_records_the_calibration_hash(bsbench, tmp_path):
    path, digest = _calibration("tiny", tmp_path)
    result = bsbench("run", "--backend", "sim", "--calibration", path, "--model", "tiny", "--workload", "smoke",
                     "-n", "4", "--quiet", "--out", tmp_path / "runs")
    assert result.code == 0, result.err
    record = _only(tmp_path / "runs")
    assert record.config.backend == SimPart("Test CPU", "calibrated", digest)
    assert record.environment["device_name"] == "simulated Test CPU"
    tokens = sum(s.num_tokens for s in record.steps)
    assert sum(s.duration_s for s in record.steps) == pytest.approx(1e-3 * len(record.steps) + 1e-5 * tokens)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "sim", "--gpu", "b200"], "unknown GPU preset 'b200'"),
        (["--backend", "sim"], "--backend sim needs a cost model"),
        (["--clock", "virtual"], "--clock virtual needs a cost model"),
        (["--backend", "sim", "--gpu", "l4", "--clock", "wall"], "drop --clock wall"),
        (["--backend", "sim", "--gpu", "l4", "--device", "cpu"], "--device does not apply to --backend sim"),
        (["--gpu", "l4"], "--gpu applies to --backend sim or --clock virtual"),
        (["--backend", "sim", "--calibration", "nowhere.json"], "calibration file nowhere.json does not exist"),
        (["--backend", "sim", "--calibration", "{other}"], "calibrate for it first"),
        (["--backend", "sim", "--gpu", "l4", "--model", "llama2-13b"], "do not fit the l4"),
    ],
)
def test_bad_backend_flags_are_one_line_and_exit_2(bsbench, tmp_path, args, message):
    other, _ = _calibration("llama2-7b", tmp_path)
    args = [str(other) if a == "{other}" else a for a in args]
    result = bsbench("run", "--workload", "smoke", "-n", "2", "--quiet", "--out", tmp_path / "runs", *args)
    assert result.code == 2, result.out
    assert message in result.err and len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_records_written_before_the_backend_fields_read_as_real_wall_clock():
    data = make_record().to_json()
    data["config"].pop("backend")  # a record from before the simulated backend: no backend fields at all
    for step in data["steps"]:
        step.pop("measured_forward_s")
        step.pop("measured_step_s")
    record = RunRecord.from_json(data)
    assert record.config.backend == RealPart() and not record.config.simulated
    assert record.config.backend_id() == "real" and record.steps[0].measured_step_s is None


def test_compare_never_puts_simulated_and_measured_runs_in_one_table():
    real = make_record("continuous")
    sim = make_record("static", backend="sim", clock="virtual", gpu="a100-40gb", cost_model="uncalibrated")
    virtual = make_record("bucket", clock="virtual", gpu="a100-40gb", cost_model="uncalibrated")
    groups, notes = report.group_records([real, sim, virtual])
    assert [[r.scheduler for r in g.runs] for g in groups] == [["continuous"], ["static"], ["bucket"]]
    assert "different backend, clock or cost model (measured (real runner, wall clock) vs simulated (sim, " \
           "a100-40gb, uncalibrated cost model))" in notes[0]
    assert groups[1].title().startswith("simulated (sim, a100-40gb, uncalibrated cost model) · ")
    assert groups[2].title().startswith("virtual time (real runner, tokens computed, a100-40gb")
    assert not groups[0].timing_label and groups[0].title().startswith("test-workload")
    frames = [report.comparison_frame(g.runs) for g in groups]
    as_json = report.groups_to_json(groups, frames, notes)["groups"]
    assert [g["simulated"] for g in as_json] == [False, True, True]
    assert "simulated (sim, a100-40gb" in report.groups_to_csv(groups, frames)


def test_sweep_keys_differ_by_backend():
    sim = make_record(backend="sim", clock="virtual", gpu="a100-40gb", cost_model="uncalibrated")
    real = make_record()
    assert record_key(real) == run_key(real.config, "fp-abc")
    assert record_key(real).startswith("continuous|4|seed 0|real|")
    assert record_key(sim).startswith("continuous|4|seed 0|sim/virtual/a100-40gb/roofline|")
    assert record_key(sim) != record_key(real)
    assert RecordConfig.from_json(sim.config.to_json()) == sim.config
