"""The loop the pooled executors (process, Ray) share: at most `workers` tasks in flight, each on a named slot,
retry once on a crash or an exception, a BsbenchError ends the batch, Ctrl-C stops the pool (base's contract).
A `Pool` adapts one engine (concurrent.futures, Ray) to it."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from typing import Protocol

from bsbench.errors import BsbenchError
from bsbench.experiments.executors.base import (
    MAX_ATTEMPTS,
    Finished,
    Outcomes,
    RunOne,
    RunTask,
    TaskOutcome,
    Watch,
    failure_reason,
)


class Pool(Protocol):
    def submit(self, run_one: RunOne, task: RunTask) -> Hashable: ...

    def wait_any(self, handles: Sequence[Hashable]) -> list[Hashable]:
        """The handles among `handles` that have ended (at least one; blocks until then)."""
        ...

    def result(self, handle: Hashable) -> Finished:
        """The ended task's record and text, or its exception raised, unwrapped (the run's own BsbenchError, ...)."""
        ...

    def crashed(self, exc: BaseException) -> str | None:
        """Why the worker died, when `exc` says it did (then the pool is rebuilt); None for a run's exception."""
        ...

    def rebuild(self, handles: Sequence[Hashable]) -> None:
        """After a crash: let `handles` (in flight when it happened) end, and make the pool usable again."""
        ...

    def stop(self) -> None:
        """Cancel and end everything now (Ctrl-C, or a BsbenchError)."""
        ...

    def close(self) -> None:
        """End the workers (the executor's close(); a batch leaves them running for the next)."""
        ...


def run_on_slots(pool: Pool, workers: int, tasks: Sequence[RunTask], run_one: RunOne,
                 watch: Watch | None) -> Outcomes:
    pending = deque(tasks)
    attempts = {task.index: 0 for task in tasks}
    in_flight: dict[Hashable, tuple[RunTask, int]] = {}
    free_slots = list(range(workers, 0, -1))
    try:
        while pending or in_flight:
            while pending and free_slots:
                task, slot = pending.popleft(), free_slots.pop()
                attempts[task.index] += 1
                if watch is not None:
                    watch.started(task, f"worker {slot}")
                in_flight[pool.submit(run_one, task)] = (task, slot)
            crashed = False
            for handle in pool.wait_any(list(in_flight)):
                task, slot = in_flight.pop(handle)
                free_slots.append(slot)
                try:
                    finished = pool.result(handle)
                except (BsbenchError, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    died = pool.crashed(exc)
                    crashed = crashed or died is not None
                    reason = died or failure_reason(exc)
                    if attempts[task.index] < MAX_ATTEMPTS:
                        pending.appendleft(task)
                        if watch is not None:
                            watch.retrying(task, reason)
                    else:
                        yield TaskOutcome(task, None, reason, attempts[task.index])
                    continue
                yield TaskOutcome(task, finished.record, None, attempts[task.index], finished.encoded)
            if crashed:
                pool.rebuild(list(in_flight))
    except BaseException:
        pool.stop()
        raise
