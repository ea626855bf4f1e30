"""Speed-up of the executors (issue 12): a simulated sweep of 4 schedulers x 6 rates x 3 repeats, run serially,
then with the process executor (and Ray, when installed) on 2 workers. Target: >= 1.7x on this 2-core machine.

    python benchmarks/executor_speed.py                  # ShareGPT, 400 requests per run, PASS/MISS vs 1.7x
    python benchmarks/executor_speed.py -n 100 --workers 2

Each executor sweeps into its own fresh folder through bsbench.experiments.sweep.run_sweep with the CLI's RunOne
(EngineTask), the workloads built on the driver; the time covers the whole sweep (pool start included, plots
and report not). Ray is timed twice: starting its local instance inside the sweep (what `--executor ray` alone
does), and joining an instance already running (what `ray start --head` then `--ray-address` does on a
cluster; the instance is started before the clock starts). The records of every executor are checked equal
to the serial ones (bar creation time and environment), so a speed-up never hides a different result.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

from bsbench.backends.config import RunConfig
from bsbench.backends.record_build import planned_record_config
from bsbench.backends.run import session_for
from bsbench.experiments.executors import make_executor
from bsbench.experiments.executors.engine_task import EngineTask
from bsbench.experiments.sweep import SweepPlan, run_sweep
from bsbench.workloads.build import load_workload

SCHEDULERS = ["static", "continuous", "uellm", "bucket"]
RATES = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
TARGET = 1.7


def records(folder: Path) -> dict[tuple, dict]:
    out = {}
    for path in (folder / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        record.pop("created"), record.pop("environment")
        config = record["config"]
        out[(config["scheduler"], config["rate"], config["seed"])] = record
    return out


def sweep(executor: str, workers: int | None, args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this driver process) of one sweep."""
    config = RunConfig(backend="sim", clock="virtual", model=args.model, gpu=args.gpu)
    session = session_for(config)
    base_seed = 0
    plan = SweepPlan(SCHEDULERS, RATES, [base_seed + i for i in range(args.repeats)], session.backend_id())
    task = EngineTask(config, {name: {} for name in SCHEDULERS}, base_seed)

    def make_workload(rate: float, seed: int):
        return load_workload(args.workload, {"num_requests": args.num_requests, "rate": rate, "seed": seed})

    def config_of(scheduler: str, workload, rate: float, seed: int):
        return planned_record_config(workload, task.config_for(scheduler, seed), session)

    start, cpu = time.perf_counter(), time.process_time()
    result = run_sweep(plan, make_workload, task, out, config_of=config_of,
                       executor=make_executor(executor, workers))
    elapsed = time.perf_counter() - start
    assert result.executed == plan.size and not result.failures, (result.executed, result.failures)
    return elapsed, time.process_time() - cpu


def executor_modes(executors: list[str]) -> list[tuple[str, str]]:
    """(executor, label) pairs in timing order; Ray's cold start comes first, while no instance runs."""
    modes = [("process", "process")]
    if "ray" in executors:
        modes += [("ray", "ray, starting its local instance"), ("ray", "ray, joining a running instance")]
    return modes


def start_ray(workers: int) -> None:
    """Start (or keep) a local Ray instance outside the timing, as a running cluster would be."""
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    ray.get([ray.remote(lambda: None).options(num_cpus=1).remote() for _ in range(workers)])  # workers up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--num-requests", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workload", default="sharegpt-vllm")
    parser.add_argument("--model", default="llama2-13b")
    parser.add_argument("--gpu", default="a100-40gb")
    args = parser.parse_args()
    executors = ["process"] + (["ray"] if importlib.util.find_spec("ray") else [])
    size = len(SCHEDULERS) * len(RATES) * args.repeats
    print(f"sim sweep: {len(SCHEDULERS)} schedulers x {len(RATES)} rates x {args.repeats} repeats = {size} runs, "
          f"{args.num_requests} {args.workload} requests each, {args.model} on {args.gpu}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        serial_s, _ = sweep("serial", None, args, root / "serial")
        print(f"serial: {serial_s:.1f} s")
        reference = records(root / "serial")
        for name, label in executor_modes(executors):
            if label == "ray, joining a running instance":
                start_ray(args.workers)
            took, driver_cpu = sweep(name, args.workers, args, root / label)
            same = records(root / label) == reference
            speedup = serial_s / took
            verdict = "PASS" if speedup >= TARGET and same else "MISS"
            print(f"{label} ({args.workers} workers): {took:.1f} s (driver CPU {driver_cpu:.1f} s, load average "
                  f"{os.getloadavg()[0]:.2f}), "
                  f"speed-up {speedup:.2f}x "
                  f"(target >= {TARGET}x): {verdict}; records {'identical' if same else 'DIFFER'} to serial")
        if "ray" not in executors:
            print("ray: not installed (pip install -e '.[ray]'), not measured")


if __name__ == "__main__":
    main()
