"""The executor contract: how the runs of a sweep (or of one capacity probe round) are spread.

The driver hands an executor its RunTasks, one per run key, and `run_one`, which runs one task and returns its
record WITHOUT writing it; the executor yields one TaskOutcome per task as tasks end, in any order, and the
driver alone writes records (atomically), so no shared filesystem is needed. Contract, for every executor:
- every task given ends in exactly one outcome: a record, or the reason it failed;
- the workload's fingerprint is checked where the task runs (`execute`), so a workload that arrived altered
  fails loudly instead of keying a record it did not produce;
- a task that dies (its worker crashed, or the run raised) is tried once more; `attempts` says how many tries
  it took (2 = one retry) and a task that fails twice ends with its reason, while the others go on;
- a BsbenchError (a user error: the workload does not fit the model, ...) is not retried: it ends the whole
  batch, as it would a serial sweep;
- KeyboardInterrupt cancels the outstanding tasks and propagates; outcomes already yielded stay valid;
- the driver calls `close()` when it has no more batches.
`run_one` must be picklable for the process and Ray executors (a module-level function or dataclass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bsbench.errors import BsbenchError
from bsbench.record.io import EncodedRecord, encode_record
from bsbench.units import format_rate

if TYPE_CHECKING:
    from bsbench.record import RunRecord

MAX_ATTEMPTS = 2  # a task is tried at most twice: one retry


@dataclass(slots=True)
class RunTask:
    """One run: its place in the driver's plan, its key, and the workload built (once) on the driver."""

    index: int
    key: str
    scheduler: str
    rate: float
    seed: int
    workload: Any
    fingerprint: str  # the workload's fingerprint on the driver

    def label(self) -> str:
        return f"{self.scheduler} @ {format_rate(self.rate)} req/s seed {self.seed}"


@dataclass(slots=True)
class Finished:
    """What a task sends back: its record encoded (record.io.encode_record: the header and the rows' Parquet
    bytes), made where the task ran so that the driver only writes it, and the record without its rows
    (requests, steps, events: in the encoding only), which is all the driver reads (config, workload,
    summary); shipping the rows twice cost the driver more than a fifth of a core at 2 workers."""

    record: RunRecord
    encoded: EncodedRecord


@dataclass(slots=True)
class TaskOutcome:
    task: RunTask
    record: RunRecord | None  # without its rows when `encoded` is set (Finished)
    error: str | None  # why it failed, when record is None
    attempts: int
    encoded: EncodedRecord | None = None  # the record's files: save_record(record, folder, encoded=encoded)


RunOne = Callable[[RunTask], "RunRecord"]
Outcomes = Generator[TaskOutcome, None, None]  # close() it to stop early: the executor's workers stop


class Watch(Protocol):
    """What an executor (started, retrying) and its driver (planned, ended) report while they work: the
    sweep's progress display."""

    def planned(self, resumed: int) -> None:
        """Before any task: `resumed` runs of the plan are already done."""
        ...

    def started(self, task: RunTask, worker: str) -> None: ...

    def retrying(self, task: RunTask, reason: str) -> None: ...

    def ended(self, key: str, failed: bool = False) -> None:
        """The driver has the outcome of run `key` (a record, or failed twice)."""
        ...


class Executor(Protocol):
    name: str
    workers: int

    def run(self, tasks: Sequence[RunTask], run_one: RunOne, watch: Watch | None = None) -> Outcomes:
        """Run every task (see the module docstring), yielding outcomes as they end."""
        ...

    def close(self) -> None:
        """End the workers; the executor may serve several batches before."""
        ...


def execute(run_one: RunOne, task: RunTask) -> Finished:
    """Run one task where it landed: check the shipped workload's fingerprint, run it, render its record."""

    got = task.workload.fingerprint()
    if got != task.fingerprint:
        raise BsbenchError(f"run {task.key}: the workload arrived with fingerprint {got}, not the driver's "
                           f"{task.fingerprint}")
    record = run_one(task)
    return Finished(dataclasses.replace(record, requests=[], steps=[], events=[]), encode_record(record))


def failure_reason(exc: BaseException) -> str:
    """One line for a failed try: the exception's type and message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
