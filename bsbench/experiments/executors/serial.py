"""The serial executor (the default): every task in this process, one after another, in the order given."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from bsbench.experiments.executors.base import Finished, Outcomes, RunOne, RunTask, Watch, execute
from bsbench.experiments.executors.slots import run_on_slots


@dataclass(slots=True)
class InlinePool:
    """slots.Pool that runs a task when it is submitted, here; KeyboardInterrupt propagates from `submit`."""

    _ended: dict[int, Finished | Exception] = field(default_factory=dict)
    _submitted: int = 0

    def submit(self, run_one: RunOne, task: RunTask) -> Hashable:
        handle = self._submitted = self._submitted + 1
        try:
            self._ended[handle] = execute(run_one, task)
        except Exception as exc:
            self._ended[handle] = exc
        return handle

    def wait_any(self, handles: Sequence[Hashable]) -> list[Hashable]:
        return list(handles)

    def result(self, handle: Hashable) -> Finished:
        got = self._ended.pop(handle)  # type: ignore[call-overload]
        if isinstance(got, Exception):
            raise got
        return got

    def crashed(self, exc: BaseException) -> str | None:
        return None

    def rebuild(self, handles: Sequence[Hashable]) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(slots=True)
class SerialExecutor:
    name: str = "serial"
    workers: int = 1

    def run(self, tasks: Sequence[RunTask], run_one: RunOne, watch: Watch | None = None) -> Outcomes:
        return run_on_slots(InlinePool(), 1, tasks, run_one, watch)

    def close(self) -> None:
        pass
