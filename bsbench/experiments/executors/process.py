"""The process executor: a local pool of `workers` processes (spawn context), one task per run key.

The pool lives until `close()`. At most `workers` tasks are in flight (slots.run_on_slots), so a task handed
to the pool is running on a worker.
When a worker dies (os._exit, a segfault, the OOM killer) concurrent.futures breaks the whole pool and every task
in flight with it ends; each is tried once more on a fresh pool, and that try counts against it (a crash cannot
be pinned on one task). Workers ignore SIGINT: Ctrl-C reaches the driver alone, which cancels what is queued,
ends the workers and re-raises.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, cast

from bsbench.experiments.executors.base import Finished, Outcomes, RunOne, RunTask, Watch, execute
from bsbench.experiments.executors.slots import run_on_slots


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(slots=True)
class FuturesPool:
    """slots.Pool over a concurrent.futures process pool."""

    workers: int
    start_method: str
    _pool: Any = field(default=None, init=False)  # started at the first submit, again after stop()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(self.start_method),
                                   initializer=_ignore_sigint)

    def submit(self, run_one: RunOne, task: RunTask) -> Hashable:
        if self._pool is None:
            self._pool = self._new()
        return self._pool.submit(execute, run_one, task)

    def wait_any(self, handles: Sequence[Hashable]) -> list[Hashable]:
        done, _ = wait(cast("list[Future]", handles), return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Hashable) -> Finished:
        return cast("Future", handle).result()

    def crashed(self, exc: BaseException) -> str | None:
        return "the worker process died mid-run" if isinstance(exc, BrokenProcessPool) else None

    def rebuild(self, handles: Sequence[Hashable]) -> None:
        wait(cast("list[Future]", handles))  # the broken pool ends them all, promptly
        self._pool.shutdown(wait=True)
        self._pool = self._new()

    def stop(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
        result_queue = getattr(pool, "_result_queue", None)  # shutdown(wait=False) drops it without closing it
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        # A worker ended while it sent a result leaves half a message in the result pipe, and the pool's manager
        # thread blocks reading the rest: the interpreter then never exits (it joins that thread). Closing this
        # process's copy of the pipe's write end, the last one left, turns the wait into an EOF: the manager gives
        # the pool up as broken and ends.
        writer = getattr(result_queue, "_writer", None)
        if writer is not None:
            writer.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


@dataclass(slots=True)
class ProcessExecutor:
    """Its workers live from the first task to `close()`, so successive batches (capacity's probe rounds)
    reuse them and the models they loaded."""

    workers: int
    name: str = "process"
    start_method: str = "spawn"
    _pool: FuturesPool | None = field(default=None, init=False, repr=False)

    def run(self, tasks: Sequence[RunTask], run_one: RunOne, watch: Watch | None = None) -> Outcomes:
        if self._pool is None:
            self._pool = FuturesPool(self.workers, self.start_method)
        return run_on_slots(self._pool, self.workers, tasks, run_one, watch)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
