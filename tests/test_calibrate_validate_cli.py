"""`bsbench calibrate` and `bsbench validate-sim` end to end on the tiny model (small sizes)."""

from __future__ import annotations

import json

import pytest

from bsbench.record import read_record
from bsbench.sim.calibration import load_calibration


@pytest.fixture(scope="module", autouse=True)
def _a_third_of_the_grid():
    """Every calibration here times a third of the default grid (every kind of step, 41 plans): these tests check
    the commands' plumbing, not the fit (tests/test_sim_calibration.py), and a full pass is most of their time."""
    import bsbench.sim.calibrate as calibrate_module
    from bsbench.sim.calib_grid import default_grid

    grid = default_grid()[::3]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calibrate_module, "default_grid", lambda: list(grid))
        yield


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory):
    from bsbench.cli import main

    path = tmp_path_factory.mktemp("calibration") / "tiny.json"
    with pytest.raises(SystemExit) as done:
        main(["calibrate", "--device", "cpu", "--threads", "1", "--warmups", "0", "--repeats", "1", "--out",
              str(path), "--quiet"])
    assert done.value.code in (0, None)
    return path


def test_calibrate_writes_a_file_the_sim_backend_takes(bsbench, calibration_file, tmp_path):
    calibration = load_calibration(calibration_file)
    assert calibration.dtype == "float32" and calibration.device["device"] == "cpu"
    assert calibration.device["memory_bytes"] > 0 and len(calibration.points) >= 30
    result = bsbench("run", "--backend", "sim", "--calibration", calibration_file, "--workload", "smoke", "-n", "4",
                     "--quiet", "--out", tmp_path)
    assert result.code == 0, result.err
    record = read_record(next(tmp_path.glob("*.json")))
    assert record.config.backend.calibration_hash == calibration.to_dict()["content_hash"]
    assert record.config.dtype == "float32" and record.config.backend.cost_model == "calibrated"


def test_validate_sim_reports_step_end_to_end_and_ranking_errors(bsbench, calibration_file, tmp_path):
    result = bsbench("validate-sim", "--device", "cpu", "--threads", "1", "--calibration", calibration_file,
                     "--workloads", "smoke", "--rates", "inf", "--schedulers", "static,continuous", "-n", "4",
                     "--max-output-len", "4", "--real-repeats", "2", "--quiet", "--out", tmp_path)
    assert result.code == 0, result.err
    assert "per-step error" in result.out and "ranking of the schedulers" in result.out
    assert "median of 2 real run(s)" in " ".join(result.out.split())
    assert "PASS" not in result.out and "MISS" not in result.out  # no CPU accuracy targets (issue 29)
    report = json.loads((tmp_path / "validation.json").read_text())
    assert report["per_step"]["all"]["n"] > 0 and report["per_step"]["all"]["mape"] is not None
    assert report["real_repeats"] == 2
    assert report["step_repeat_noise"]["n"] == 0  # calibrated with one pass: no repeats to measure noise on
    (cell,) = report["cells"]
    assert set(cell["runs"]) == {"static", "continuous"}
    # each scheduler's real steps, priced alone: together they are every real step
    per_run = [r["step_error"] for r in cell["runs"].values()]
    assert sum(e["n"] for e in per_run) == report["per_step"]["all"]["n"]
    assert sum(e["n"] * e["bias"] for e in per_run) / report["per_step"]["all"]["n"] == pytest.approx(
        report["per_step"]["all"]["bias"])
    assert "step bias: the cost model's mean error on their steps" in " ".join(result.out.split())
    assert all(0 <= n <= 2 for n in cell["real_repeats_agreeing"].values())
    for key, pairs in cell["decisive_pairs"].items():  # one pair of schedulers: decided when both runs agree
        both = [[r["real_repeats"][i][key] for r in cell["runs"].values()] for i in range(2)]
        agree = (both[0][0] > both[0][1]) == (both[1][0] > both[1][1]) and all(a != b for a, b in both)
        assert pairs["decided"] == int(agree) and 0 <= pairs["kept"] <= pairs["decided"]
    for run in cell["runs"].values():
        first, second, sim = (read_record(p) for p in run["records"])
        assert first.workload.fingerprint == second.workload.fingerprint == sim.workload.fingerprint
        assert [r.config.backend.kind for r in (first, second, sim)] == ["real", "real", "sim"]
        assert first.config.num_kv_blocks == sim.config.num_kv_blocks
        assert set(run["errors"]) >= {"median_ttft_ms", "p99_e2el_ms", "output_throughput", "slo_attainment"}
        # the simulated run is compared with the median of the real runs
        throughputs = [r.summary["output_throughput"] for r in (first, second)]
        assert run["real"]["output_throughput"] == pytest.approx(sum(throughputs) / 2)
        assert run["errors"]["output_throughput"] == pytest.approx(
            sim.summary["output_throughput"] / run["real"]["output_throughput"] - 1)
        assert run["real_spread"]["output_throughput"] == pytest.approx(
            abs(throughputs[0] - throughputs[1]) / run["real"]["output_throughput"])


def test_validate_sim_refuses_a_calibration_of_another_model(bsbench, tmp_path, calibration_file):
    result = bsbench("validate-sim", "--model", "llama2-7b", "--device", "cpu", "--calibration", calibration_file,
                     "--out", tmp_path, "--quiet")
    assert result.code == 2 and "calibrate for it first" in result.err and len(result.err.strip().splitlines()) == 1


def test_validate_sim_refuses_a_workload_the_calibration_ran(bsbench, calibration_file, tmp_path):
    import dataclasses

    from bsbench.sim.calibration import save_calibration
    from bsbench.workloads.build import load_workload

    smoke = load_workload("smoke", {"num_requests": 4, "max_output_len": 4, "seed": 0, "rate": float("inf"),
                                    "max_prompt_len": 256})
    calibration = load_calibration(calibration_file)
    ran = [{"workload": "leaked", "fingerprint": smoke.fingerprint(), "scheduler": "static", "steps": 1}]
    leaked = tmp_path / "leaked.json"
    save_calibration(dataclasses.replace(calibration, settings={**calibration.settings, "runs": ran}), leaked)
    result = bsbench("validate-sim", "--device", "cpu", "--threads", "1", "--calibration", leaked, "--workloads",
                     "smoke", "--rates", "inf", "--schedulers", "static", "-n", "4", "--max-output-len", "4",
                     "--quiet", "--out", tmp_path / "out")
    assert result.code == 2 and "is the calibration run 'leaked'" in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(("count", "blocks"), [(12, 12), (3, 12), (12, 4), (5, 3), (1, 7), (7, 1)])
def test_calibration_passes_are_spread_evenly_over_the_real_runs(count, blocks):
    from bsbench.experiments.calib_between_runs import due_before

    schedule = [due_before(block, count, blocks) for block in range(blocks)]
    assert schedule == [[i for i in range(count) if i * blocks // count == block] for block in range(blocks)]
    assert [i for due in schedule for i in due] == list(range(count))  # every pass once, in order
    assert schedule[0] and schedule[0][0] == 0  # measuring starts before the first real run
    sizes = [len(due) for due in schedule]
    assert max(sizes) - min(sizes) <= 1 if count >= blocks else max(sizes) == 1
    if count < blocks:  # gaps between passes differ by at most one block
        starts = [b for b, due in enumerate(schedule) if due]
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert not gaps or max(gaps) - min(gaps) <= 1


def test_validate_sim_calibrates_between_its_real_runs(bsbench, tmp_path):
    result = bsbench("validate-sim", "--device", "cpu", "--threads", "1", "--calibration-repeats", "2",
                     "--workloads", "smoke", "--rates", "inf", "--schedulers", "static", "-n", "4",
                     "--max-output-len", "4", "--real-repeats", "2", "--quiet", "--out", tmp_path)
    assert result.code == 0, result.err
    assert "calibrating between the real runs" in result.out and "taken between the real runs" in result.out
    report = json.loads((tmp_path / "validation.json").read_text())
    assert report["calibration_between_real_runs"] is True
    calibration = load_calibration(report["calibration"])
    assert calibration.settings["repeats"] == 2 and calibration.settings["between_real_runs"] == 2
    assert report["per_step_grid_only"] is None  # no calibration runs: nothing to compare the grid fit with
    # one kept timing per measured pass for every grid plan (the warm-up pass is dropped)
    assert all(len(p["samples_s"]) == 2 for p in calibration.points)
    assert report["step_repeat_noise"]["n"] == 2 * len(calibration.points)
    (cell,) = report["cells"]
    sim = read_record(cell["runs"]["static"]["records"][-1])
    assert sim.config.backend.calibration_hash == calibration.to_dict()["content_hash"]


def test_validate_sim_with_calibration_runs_also_prices_the_steps_with_the_grid_alone(bsbench, tmp_path, monkeypatch):
    import bsbench.experiments.calib_runs as calib_runs

    short = ("calib-short", {**dict(calib_runs.WORKLOADS)["calib-short"], "input_len": 16, "output_len": 3})
    monkeypatch.setattr(calib_runs, "WORKLOADS", (short,))  # 4 tiny calibration runs instead of 12 of 24 requests
    monkeypatch.setattr(calib_runs, "NUM_REQUESTS", 3)
    result = bsbench("validate-sim", "--device", "cpu", "--threads", "1", "--calibration-repeats", "1",
                     "--calibrate-with-runs", "--workloads", "smoke", "--rates", "inf", "--schedulers", "static",
                     "-n", "4", "--max-output-len", "4", "--real-repeats", "2", "--quiet", "--out", tmp_path)
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "validation.json").read_text())
    calibration = load_calibration(report["calibration"])
    assert [run["scheduler"] for run in calibration.settings["runs"]] == list(calib_runs.SCHEDULERS)
    assert any(p["source"] == "run" for p in calibration.points)
    grid_only, fitted = report["per_step_grid_only"]["all"], report["per_step"]["all"]
    assert grid_only["n"] == fitted["n"] > 0 and grid_only["mape"] is not None
    assert "fitted to the grid alone" in " ".join(result.out.split())


def test_validate_sim_refuses_two_workloads_that_are_the_same_requests(bsbench, tmp_path):
    # with these flags the smoke spec draws exactly sharegpt-vllm's requests: one workload counted twice
    result = bsbench("validate-sim", "--device", "cpu", "--workloads", "smoke,sharegpt-vllm", "--rates", "4", "-n",
                     "24", "--max-output-len", "16", "--calibration-repeats", "1", "--quiet", "--out", tmp_path)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "'smoke' and 'sharegpt-vllm' give the same requests" in result.err
    assert not (tmp_path / "validation.json").exists()
