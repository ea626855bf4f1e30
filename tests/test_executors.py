"""Executors (issue 12): serial and process give the same records; a dead worker is retried once and counted; a
run that fails twice is recorded as failed and the sweep goes on; Ctrl-C keeps finished records and resumes."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bsbench.errors import BsbenchError
from bsbench.experiments.executors import RunTask, execute, make_executor
from bsbench.experiments.executors.process import ProcessExecutor
from bsbench.experiments.executors.serial import SerialExecutor
from bsbench.experiments.sweep import SweepPlan, load_summary, run_sweep
from bsbench.record.arrow_rows import request_rows
from bsbench.record.io import encode_record

try:
    from executor_fakes import FakeRun, config_of, make_workload
except ImportError:
    from tests.executor_fakes import FakeRun, config_of, make_workload

PLAN = SweepPlan(["static", "continuous"], [1.0, 4.0], [0])


def _tries(tmp_path: Path) -> Path:
    path = tmp_path / "tries"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sweep(tmp_path, run_one, executor, plan=PLAN, watch=None):
    return run_sweep(plan, make_workload, run_one, tmp_path / "out", config_of=config_of, executor=executor,
                     watch=watch)


def test_process_pool_runs_every_task_and_the_driver_writes_the_records(tmp_path):
    result = _sweep(tmp_path, FakeRun(str(_tries(tmp_path))), ProcessExecutor(2))
    assert result.executed == 4 and result.retries == 0 and not result.failures
    assert [(r.scheduler, r.rate) for r in result.runs] == [("static", 1.0), ("continuous", 1.0),
                                                            ("static", 4.0), ("continuous", 4.0)]  # grid order
    assert all(Path(r.path).parent == tmp_path / "out" / "runs" and Path(r.path).exists() for r in result.runs)
    again = _sweep(tmp_path, FakeRun(str(_tries(tmp_path))), ProcessExecutor(2))
    assert (again.resumed, again.executed) == (4, 0)


def test_a_worker_that_dies_is_retried_once_and_the_summary_counts_it(tmp_path):
    # one worker: the crash ends only the run it was running (with more, the runs beside it end and retry too)
    run_one = FakeRun(str(_tries(tmp_path)), die={"continuous": 1})
    result = _sweep(tmp_path, run_one, ProcessExecutor(1))
    assert result.executed == 4 and not result.failures
    assert result.retries == 2  # the two continuous runs, each died once
    summary = load_summary(tmp_path / "out")
    assert summary["retries"] == 2 and summary["failed_runs"] == [] and summary["finished_runs"] == 4
    assert sorted(run_one.tries(r.key) for r in result.runs) == [1, 1, 2, 2]


def test_a_run_that_dies_twice_is_recorded_failed_and_the_sweep_goes_on(tmp_path):
    result = _sweep(tmp_path, FakeRun(str(_tries(tmp_path)), die={"static": 2}), ProcessExecutor(1))
    assert [r.scheduler for r in result.runs] == ["continuous", "continuous"]
    assert [(f.scheduler, f.rate, f.attempts) for f in result.failures] == [("static", 1.0, 2), ("static", 4.0, 2)]
    assert all(f.reason == "the worker process died mid-run" for f in result.failures)
    assert result.retries == 2
    summary = load_summary(tmp_path / "out")
    assert [f["reason"] for f in summary["failed_runs"]] == ["the worker process died mid-run"] * 2
    assert summary["finished_runs"] == 2
    # a rerun tries only the failed runs again
    rerun = _sweep(tmp_path, FakeRun(str(_tries(tmp_path / "rerun"))), ProcessExecutor(1))
    assert (rerun.resumed, rerun.executed, rerun.failures) == (2, 2, [])


def test_serial_retries_a_run_that_raised_and_records_a_second_failure(tmp_path):
    run_one = FakeRun(str(_tries(tmp_path)), raise_on={"static": 1, "continuous": 2})
    result = _sweep(tmp_path, run_one, SerialExecutor())
    assert [r.scheduler for r in result.runs] == ["static", "static"] and result.retries == 4
    assert [(f.scheduler, f.reason) for f in result.failures] == [("continuous", "RuntimeError: try 1 went wrong")] * 2


@pytest.mark.parametrize("executor", [SerialExecutor(), ProcessExecutor(1)], ids=["serial", "process"])
def test_a_user_error_in_a_run_ends_the_sweep_untried(tmp_path, executor):
    run_one = FakeRun(str(_tries(tmp_path)), user_error=("static",))
    with pytest.raises(BsbenchError, match="does not fit"):
        _sweep(tmp_path, run_one, executor, plan=SweepPlan(["static"], [1.0], [0]))
    assert len(list(_tries(tmp_path).iterdir())) == 1


def test_a_workload_altered_on_the_way_is_refused_where_it_lands(tmp_path):
    workload = make_workload(1.0, 0)
    task = RunTask(0, "k", "static", 1.0, 0, workload, workload.fingerprint())
    changed = dataclasses.replace(task, workload=make_workload(1.0, 1))
    with pytest.raises(BsbenchError, match="arrived with fingerprint"):
        execute(FakeRun(str(_tries(tmp_path))), changed)
    finished = execute(FakeRun(str(_tries(tmp_path))), task)
    assert finished.record.workload.fingerprint == task.fingerprint
    encoded = finished.encoded  # the whole record; the record object comes back without its rows
    rows = request_rows(pq.read_table(io.BytesIO(encoded.files["requests"])))
    assert len(rows) == encoded.counts["requests"] > 0 and not finished.record.requests
    assert len(rows) == len(task.workload.requests)
    assert encoded.header == encode_record(finished.record).header


class InterruptAtThird:
    """A Watch that plays Ctrl-C when the third run starts (where a real one lands: the driver's wait)."""

    def __init__(self) -> None:
        self.started_runs = 0

    def planned(self, resumed):
        pass

    def started(self, task, worker):
        self.started_runs += 1
        if self.started_runs == 3:
            raise KeyboardInterrupt

    def retrying(self, task, reason):
        pass

    def ended(self, key, failed=False):
        pass


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_keeps_finished_records_and_a_rerun_resumes(tmp_path, workers):
    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path, FakeRun(str(_tries(tmp_path))), ProcessExecutor(workers), watch=InterruptAtThird())
    summary = load_summary(tmp_path / "out")
    kept = summary["finished_runs"]
    assert summary["interrupted"] and kept == len(list((tmp_path / "out" / "runs").glob("*.json"))) <= 2
    rerun = _sweep(tmp_path, FakeRun(str(_tries(tmp_path))), ProcessExecutor(workers))
    assert (rerun.resumed, rerun.executed) == (kept, 4 - kept)


def test_bad_executor_choices_are_user_errors():
    with pytest.raises(BsbenchError, match="--workers must be >= 1"):
        make_executor("process", 0)
    with pytest.raises(BsbenchError, match="needs --executor process or ray"):
        make_executor("serial", 4)
    with pytest.raises(BsbenchError, match="--ray-address applies to --executor ray"):
        make_executor("process", 2, "auto")
    assert make_executor("process").workers >= 1


SIM = ("--backend", "sim", "--model", "llama2-13b", "--gpu", "a100-40gb", "-w", "synthetic", "-n", "24",
       "--schedulers", "static,continuous", "--rates", "2,8", "--repeats", "2", "--no-html", "--quiet")


def _records(folder: Path) -> dict[tuple, dict]:
    """The records of a sweep folder by (scheduler, rate, seed), without what differs run to run by design."""
    out = {}
    for path in (folder / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        for volatile in ("created", "environment", "rows"):  # the rows folder's name holds the creation time
            record.pop(volatile)
        rows = path.with_suffix(".rows")
        record["files"] = {p.name: p.read_bytes() for p in sorted(rows.iterdir())}  # the rows, bit for bit
        config = record["config"]
        out[(config["scheduler"], config["rate"], config["seed"])] = record
    return out


needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray not installed (.[ray])")


@pytest.mark.parametrize("executor", ["process", pytest.param("ray", marks=needs_ray)])
def test_sim_sweep_records_are_bit_identical_serial_and_pooled(bsbench, tmp_path, executor):
    serial = bsbench("sweep", *SIM, "--out", tmp_path / "serial")
    pooled = bsbench("sweep", *SIM, "--out", tmp_path / executor, "--executor", executor, "--workers", "2")
    assert serial.code == 0 and pooled.code == 0, pooled.err[-2000:]
    one, two = _records(tmp_path / "serial"), _records(tmp_path / executor)
    assert len(one) == 8 and one.keys() == two.keys()
    for key in one:
        assert one[key] == two[key], key
    runs = [{k: v for k, v in r.items() if k != "path"} for r in load_summary(tmp_path / executor)["runs"]]
    assert runs == [{k: v for k, v in r.items() if k != "path"} for r in load_summary(tmp_path / "serial")["runs"]]


@needs_ray
def test_ray_gpu_tasks_on_a_cluster_without_gpus_stop_at_once():
    import ray

    from bsbench.experiments.executors.ray import RayExecutor

    if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= 1:
        pytest.skip("this Ray cluster has a GPU")
    with pytest.raises(BsbenchError, match="has no GPU; these runs need one GPU per task"):
        RayExecutor.connect(None, None, gpu_tasks=True)
    assert RayExecutor.connect(None, None, gpu_tasks=False).resources == {"num_cpus": 1}


def _searches(folder: Path) -> dict:
    """capacity_summary.json's searches without the record paths (names carry creation times)."""
    schedulers = json.loads((folder / "capacity_summary.json").read_text())["schedulers"]
    for entry in schedulers.values():
        for search in entry["repeats"]:
            confirmed = search.get("confirmed") or {}  # the confirmation at twice the window, when it ran
            for probe in [*search["probes"], *confirmed.get("probes", [])]:
                assert Path(probe.pop("path")).parent == folder  # written by the driver, into OUT
    return schedulers


def test_capacity_in_parallel_keeps_each_search_and_its_result(bsbench, tmp_path):
    args = ("capacity", "--backend", "sim", "--model", "llama2-13b", "--gpu", "a100-40gb", "-w", "synthetic",
            "-n", "24", "--schedulers", "static,continuous", "--repeats", "2", "--ttft-slo", "2000",
            "--start-rate", "2", "--max-rate", "16", "--duration", "10s", "--no-html", "--quiet")
    serial = bsbench(*args, "--out", tmp_path / "serial")
    pooled = bsbench(*args, "--out", tmp_path / "process", "--executor", "process", "--workers", "2")
    assert serial.code == 0 and pooled.code == 0, pooled.err[-2000:]
    one, two = _searches(tmp_path / "serial"), _searches(tmp_path / "process")
    assert one == two
    assert sum(len(s["probes"]) for entry in one.values() for s in entry["repeats"]) >= 8  # the searches ran


def test_stopping_a_pool_whose_worker_died_mid_result_lets_the_driver_exit(tmp_path):
    """A worker ended while it sent a result (Ctrl-C during a large record) left the pool's manager thread
    waiting for the rest of the message, and the driver hung at exit (the interpreter joins that thread)."""
    import subprocess
    import sys

    marker = tmp_path / "sending"
    driver = f"""
import time
from pathlib import Path
from bsbench.experiments.executors import RunTask
from bsbench.experiments.executors.process import FuturesPool
from tests.executor_fakes import DiesMidResult, make_workload

workload = make_workload(1.0, 0)
pool = FuturesPool(1, "spawn")
pool.submit(DiesMidResult({str(marker)!r}), RunTask(0, "k", "static", 1.0, 0, workload, workload.fingerprint()))
while not Path({str(marker)!r}).exists():
    time.sleep(0.05)
pool.stop()
print("stopped")
"""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", driver], cwd=root, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the driver did not exit after stopping its pool") from None
    assert proc.returncode == 0 and out.strip() == "stopped", err[-2000:]
