"""Progress for every wait longer than a moment: ONE implementation, used by every long command
(run, sweep, capacity, profile-predictor) and by what they wait on (workload and model loading,
the learned predictor's training).

    progress = Progress()                          # Progress(enabled=False): shows nothing
    with progress.task("running", total=100, unit="requests") as task:
        task.update(40, detail="1,234 tok/s")

Contract:
- On a terminal, the open tasks are rows of one transient rich display on stderr
  (gone when the last task ends); a task of unknown total (None) shows a spinner.
- Anywhere else (CI logs, pipes, files) a task writes one line to stderr at most
  every `interval_s` seconds, from a timer as well as on updates, so a task that
  never updates (loading a model) still reports; and a last line when it ends,
  if it lasted `min(2 s, interval_s)` or more or printed a line before.
  `BSBENCH_PROGRESS_INTERVAL` (seconds, default 5) sets the interval.
- A task that ends by an exception writes no last line, so a user error stays
  the one line that matters.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self, TextIO

from rich.console import Console
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

DEFAULT_INTERVAL_S = 5.0
INTERVAL_ENV = "BSBENCH_PROGRESS_INTERVAL"
MIN_REPORT_S = 2.0  # a task shorter than this is not worth a line of its own
MIN_RATE_WINDOW_S = 1.0  # a rate over a shorter time is noise (the first step's 1e9 tok/s)


def rate_text(count: float, elapsed_s: float, unit: str) -> str:
    """'1,234 tok/s' for `count` over `elapsed_s`, or '' while the window is too short to mean anything."""
    if elapsed_s < MIN_RATE_WINDOW_S:
        return ""
    return f"{count / elapsed_s:,.0f} {unit}"


def _interval_from_env() -> float:
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


@dataclass(slots=True)
class Progress:
    """Hands out progress tasks; see the module docstring. One per command invocation."""

    enabled: bool = True
    interval_s: float = field(default_factory=_interval_from_env)
    terminal: bool | None = None  # None: whether the stream is a terminal
    stream: TextIO | None = None  # None: sys.stderr at the time of writing
    _live: Any = field(default=None, init=False, repr=False)
    _open: int = field(default=0, init=False, repr=False)

    def task(self, label: str, total: int | None = None, unit: str = "") -> ProgressTask:
        """A context manager for one wait: `label` says what is being waited on, `unit` what is counted."""
        return ProgressTask(self, label, total, unit)

    def out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def is_terminal(self) -> bool:
        if self.terminal is not None:
            return self.terminal
        isatty = getattr(self.out(), "isatty", None)
        return bool(isatty and isatty())

    def _acquire_live(self) -> Any:
        if self._live is None:

            self._live = RichProgress(
                SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("{task.fields[counts]}"), TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                console=Console(file=self.out(), force_terminal=True), transient=True,
            )
            self._live.start()
        self._open += 1
        return self._live

    def _release_live(self) -> None:
        self._open -= 1
        if self._open == 0 and self._live is not None:
            self._live.stop()
            self._live = None


class ProgressTask:
    """One wait: `update(done, detail=...)` / `advance(n)`; `elapsed_s` since the task began."""

    def __init__(self, owner: Progress, label: str, total: int | None, unit: str) -> None:
        self.owner = owner
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.detail = ""
        self.lines = 0  # non-terminal lines written so far
        self._start = time.monotonic()
        self._last_line = self._start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._live: Any = None
        self._live_id: Any = None

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._start

    def __enter__(self) -> Self:
        self._start = self._last_line = time.monotonic()
        if not self.owner.enabled:
            return self
        if self.owner.is_terminal():
            self._live = self.owner._acquire_live()
            self._live_id = self._live.add_task(self.label, total=self.total, counts=self._counts(), detail="")
        elif self.owner.interval_s > 0:
            self._ticker = threading.Thread(target=self._tick, name="bsbench-progress", daemon=True)
            self._ticker.start()
        return self

    def update(self, done: int | None = None, *, detail: str | None = None, total: int | None = None) -> None:
        """Set the count done (and optionally the detail text and the total); cheap to call every step."""
        if done is not None:
            self.done = done
        if detail is not None:
            self.detail = detail
        if total is not None:
            self.total = total
        if not self.owner.enabled:
            return
        if self._live is not None:
            self._live.update(self._live_id, completed=self.done, total=self.total, counts=self._counts(),
                              detail=self.detail)
        else:
            self._write(final=False, only_if_due=True)

    def advance(self, count: int = 1, *, detail: str | None = None) -> None:
        self.update(self.done + count, detail=detail)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._live is not None:
            self._live.remove_task(self._live_id)
            self.owner._release_live()
            self._live = None
        elif self.owner.enabled and exc_type is None and (
                self.lines or self.elapsed_s >= min(MIN_REPORT_S, self.owner.interval_s)):
            self._write(final=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.owner.interval_s / 4):
            self._write(final=False, only_if_due=True)

    def _counts(self) -> str:
        if self.total is not None:
            return f"{self.done:,}/{self.total:,} {self.unit}".rstrip()
        return f"{self.done:,} {self.unit}".rstrip() if self.done else ""

    def line(self, final: bool = False) -> str:
        """The one-line form: 'LABEL: 40/100 requests, DETAIL, 12 s' ('done in 44.2 s' at the end)."""
        elapsed = self.elapsed_s
        when = f"done in {elapsed:.1f} s" if final else f"{elapsed:.0f} s"
        parts = [p for p in (self._counts(), self.detail, when) if p]
        return f"{self.label}: {', '.join(parts)}"

    def _write(self, final: bool, only_if_due: bool = False) -> None:
        with self._lock:
            if only_if_due and time.monotonic() - self._last_line < self.owner.interval_s:
                return
            text = self.line(final)
            stream = self.owner.out()
            stream.write(text + "\n")
            stream.flush()
            self._last_line = time.monotonic()
            self.lines += 1
