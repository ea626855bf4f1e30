"""SIGTERM takes the Ctrl-C path: the run's record is written, marked incomplete, and the exit code says which.

CI cancellation, `docker stop` and `timeout` send SIGTERM, whose default
action kills the process with no record. Inside `sigterm_as_interrupt()` the
first SIGTERM raises `Terminated`, a KeyboardInterrupt, so every place that
handles Ctrl-C (the engine loop ends unfinished requests as "interrupted",
the record is saved incomplete, a sweep keeps its finished runs) handles it
too. Further SIGTERMs are ignored while that record is written; SIGKILL still
works. Exit codes, by convention 128 + the signal number: 130 after Ctrl-C
(SIGINT), 143 after SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program was, so that it unwinds like Ctrl-C."""


@dataclass(slots=True)
class SignalsSeen:
    """What `sigterm_as_interrupt` saw: the SIGTERM, if one arrived."""

    terminated: bool = False

    def exit_code(self, code: int) -> int:
        """The interrupted exit code (130) becomes 143 when the interrupt was a SIGTERM."""
        return EXIT_TERMINATED if code == EXIT_INTERRUPTED and self.terminated else code


@contextmanager
def sigterm_as_interrupt() -> Iterator[SignalsSeen]:
    """While inside, the first SIGTERM raises Terminated; later ones are ignored. Outside the main thread
    (where handlers cannot be installed) it does nothing."""
    seen = SignalsSeen()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        if not seen.terminated:
            seen.terminated = True
            raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


class InterruptedRun(KeyboardInterrupt):
    """Ctrl-C during a run; carries the run's (saved, incomplete) record."""

    def __init__(self, record: Any) -> None:
        super().__init__("interrupted")
        self.record = record
