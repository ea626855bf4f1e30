"""Executors: how the runs of a sweep are spread (serial | process | ray); the contract is in `base`."""

from __future__ import annotations

import os

from bsbench.errors import BsbenchError
from bsbench.experiments.executors.base import MAX_ATTEMPTS, Executor, RunOne, RunTask, TaskOutcome, Watch, execute
from bsbench.experiments.executors.process import ProcessExecutor
from bsbench.experiments.executors.ray import RayExecutor
from bsbench.experiments.executors.serial import SerialExecutor

__all__ = ["EXECUTORS", "MAX_ATTEMPTS", "Executor", "RunOne", "RunTask", "TaskOutcome", "Watch", "default_workers",
           "execute", "make_executor"]

EXECUTORS = ("serial", "process", "ray")


def default_workers() -> int:
    return os.cpu_count() or 1


def make_executor(name: str, workers: int | None = None, ray_address: str | None = None,
                  gpu_tasks: bool = False) -> Executor:
    """The executor `name` with `workers` slots (None: the cores here; Ray: the cluster's); a bad choice is a
    BsbenchError. `gpu_tasks`: Ray tasks each ask for one GPU (real runs on CUDA) instead of one CPU."""
    if workers is not None and workers < 1:
        raise BsbenchError(f"--workers must be >= 1; got {workers}")
    if ray_address is not None and name != "ray":
        raise BsbenchError(f"--ray-address applies to --executor ray, not {name}")
    if name == "serial":
        if workers not in (None, 1):
            raise BsbenchError(f"--workers {workers} needs --executor process or ray (serial runs one at a time)")

        return SerialExecutor()
    if name == "process":

        return ProcessExecutor(workers or default_workers())
    if name == "ray":

        return RayExecutor.connect(ray_address, workers, gpu_tasks)
    raise BsbenchError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
