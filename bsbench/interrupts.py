"""SIGTERM takes the Ctrl-C path: the run's record is written, marked incomplete, and the exit code says which.

CI cancellation, `docker stop` and `timeout` send SIGTERM, whose default
action kills the process with no record. Inside `sigterm_as_interrupt()` the
first SIGTERM raises `Terminated`, a KeyboardInterrupt, so every place that
handles Ctrl-C (the engine loop ends unfinished requests as "interrupted",
the record is saved incomplete, a sweep keeps its finished runs) handles it
too. The first SIGINT raises KeyboardInterrupt as Python's own handler does.
After the first of either, further SIGINTs and SIGTERMs are ignored (one note
on stderr) until the program has written its record and exited: a second
Ctrl-C landing while the record is written once lost the record, or escaped
every handler and killed the process (rc -2). SIGKILL still works. Exit
codes, by convention 128 + the signal number of the first: 130 after Ctrl-C
(SIGINT), 143 after SIGTERM.
"""

from __future__ import annotations

import os
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


IGNORED_NOTE = b"bsbench: finishing the interrupted run's record; further Ctrl-C is ignored\n"


@dataclass(slots=True)
class SignalsSeen:
    """What `sigterm_as_interrupt` saw: whether an interrupt arrived, and whether the first was a SIGTERM."""

    terminated: bool = False
    interrupted: bool = False  # a SIGINT or SIGTERM was raised; later ones are ignored
    noted: bool = False  # the "ignored" note was written

    def exit_code(self, code: int) -> int:
        """The interrupted exit code (130) becomes 143 when the interrupt was a SIGTERM."""
        return EXIT_TERMINATED if code == EXIT_INTERRUPTED and self.terminated else code


@contextmanager
def sigterm_as_interrupt(*, exiting: bool = False) -> Iterator[SignalsSeen]:
    """While inside, the first SIGTERM raises Terminated and the first SIGINT KeyboardInterrupt; every later
    one of either is ignored. On leaving, the previous handlers come back, except with `exiting` (the
    process exits right after: the CLI's entry point) once an interrupt was seen: then both are set to
    SIG_IGN, since a Ctrl-C during the interpreter's shutdown (a second or more with torch loaded) would
    otherwise kill the process (rc -2). Outside
    the main thread (where handlers cannot be installed) it does nothing."""
    seen = SignalsSeen()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if seen.interrupted:
            if not seen.noted and signum == signal.SIGINT:
                seen.noted = True
                try:
                    os.write(2, IGNORED_NOTE)  # async-signal-safe, unlike print: stderr may be mid-write
                except OSError:
                    pass
            return
        seen.interrupted = True
        if signum == signal.SIGTERM:
            seen.terminated = True
            raise Terminated
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    try:
        yield seen
    finally:
        if exiting and seen.interrupted:
            # SIG_IGN, not our handler: Python's finalisation resets a Python-level handler to the default
            # (a kill) but leaves an ignored signal ignored.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)


class InterruptedRun(KeyboardInterrupt):
    """Ctrl-C during a run; carries the run's (saved, incomplete) record."""

    def __init__(self, record: Any) -> None:
        super().__init__("interrupted")
        self.record = record
