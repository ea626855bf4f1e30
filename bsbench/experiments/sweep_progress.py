"""One progress row for a whole sweep (or capacity search): runs done / running / left, the ETA and what each
worker runs, on the one Progress display (bsbench.progress), instead of a line per run. It is the executors'
Watch (executors.base)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bsbench.experiments.executors.base import RunTask
from bsbench.progress import ProgressTask


def eta_text(seconds: float) -> str:
    """'ETA 42 s' / 'ETA 3.5 min' / 'ETA 1.2 h'."""
    if seconds < 90:
        return f"ETA {seconds:.0f} s"
    if seconds < 5400:
        return f"ETA {seconds / 60:.1f} min"
    return f"ETA {seconds / 3600:.1f} h"


@dataclass(slots=True)
class SweepWatch:
    """`task`: the progress task ('sweep', total = the planned runs); `done` counts resumed runs too."""

    task: ProgressTask
    done: int = 0
    executed: int = 0  # runs ended in this invocation (the ETA's basis)
    retries: int = 0
    failed: int = 0
    workers: dict[str, str] = field(default_factory=dict)  # worker -> what it runs
    _running: dict[str, str] = field(default_factory=dict)  # run key -> worker

    def planned(self, resumed: int) -> None:
        self.done = resumed
        self._show()

    def started(self, task: RunTask, worker: str) -> None:
        self.workers[worker] = task.label()
        self._running[task.key] = worker
        self._show()

    def retrying(self, task: RunTask, reason: str) -> None:
        self.retries += 1
        self._free(task.key)
        self._show()

    def ended(self, key: str, failed: bool = False) -> None:
        self.done += 1
        self.executed += 1
        self.failed += int(failed)
        self._free(key)
        self._show()

    def _free(self, key: str) -> None:
        worker = self._running.pop(key, None)
        if worker is not None:
            self.workers[worker] = "idle"

    def detail(self) -> str:
        total = self.task.total or 0
        running = len(self._running)
        left = max(total - self.done - running, 0)
        parts = [f"{running} running", f"{left} left"]
        if self.executed and total > self.done:
            parts.append(eta_text(self.task.elapsed_s / self.executed * (total - self.done)))
        if self.retries:
            parts.append(f"{self.retries} retried")
        if self.failed:
            parts.append(f"{self.failed} failed")
        busy = [f"{w}: {what}" for w, what in sorted(self.workers.items()) if what != "idle"]
        return ", ".join(parts) + (f" [{'; '.join(busy)}]" if busy else "")

    def _show(self) -> None:
        self.task.update(self.done, detail=self.detail())

