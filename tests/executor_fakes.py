"""Picklable fakes for the executor tests: they run in spawned worker processes, so they live in a module."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from bsbench.errors import BsbenchError
from bsbench.record import RunRecord
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload

try:
    from record_factory import make_record
except ImportError:
    from tests.record_factory import make_record


def make_workload(rate: float, seed: int) -> Workload:
    reqs = [RequestSpec(id=f"q{i}", prompt_ids=(seed, i, 7), output_len=4,
                        arrival_s=0.0 if math.isinf(rate) else i / rate) for i in range(4)]
    return Workload(name="fake", requests=reqs, tokenizer="t", spec={"rate": rate, "seed": seed})


def config_of(scheduler, workload, rate, seed):
    return make_record(scheduler, rate, seed=seed).config


@dataclass(frozen=True)
class FakeRun:
    """A run_one whose tries are counted in `tries_dir` (one file per try, so it works across processes).
    A scheduler in `die` kills its worker (os._exit) on its first `die[scheduler]` tries of each run; one in
    `raise_on` raises RuntimeError on that many first tries; one in `user_error` raises BsbenchError."""

    tries_dir: str
    die: dict[str, int] = field(default_factory=dict)
    raise_on: dict[str, int] = field(default_factory=dict)
    user_error: tuple[str, ...] = ()

    def tries(self, key: str) -> int:
        return sum(1 for p in Path(self.tries_dir).iterdir() if p.name.startswith(_safe(key) + "#"))

    def __call__(self, task) -> RunRecord:
        done = self.tries(task.key)
        (Path(self.tries_dir) / f"{_safe(task.key)}#{done}").touch()
        if task.scheduler in self.user_error:
            raise BsbenchError("the workload does not fit the model")
        if done < self.die.get(task.scheduler, 0):
            os._exit(3)
        if done < self.raise_on.get(task.scheduler, 0):
            raise RuntimeError(f"try {done} went wrong")
        return make_record(task.scheduler, task.rate, seed=task.seed, fingerprint=task.workload.fingerprint())


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key)


@dataclass(frozen=True)
class DiesMidResult:
    """A run_one that starts sending its result and never finishes, as a worker killed in the middle of sending a
    large record does: it writes a length header and a few bytes of a 1 MB message into the pool's result pipe,
    touches `marker`, and hangs. The pipe is found on the worker loop's frame (concurrent.futures' `result_queue`)."""

    marker: str

    def __call__(self, task) -> RunRecord:
        import struct
        import sys
        import time

        frame = sys._getframe()
        while frame is not None and "result_queue" not in frame.f_locals:
            frame = frame.f_back
        assert frame is not None, "not running in a concurrent.futures worker"
        frame.f_locals["result_queue"]._writer._send(struct.pack("!i", 1 << 20) + b"half a message")
        Path(self.marker).touch()
        time.sleep(3600)
        raise AssertionError("unreachable")
