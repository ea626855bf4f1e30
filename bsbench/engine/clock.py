"""Clocks for the engine loop: `WallClock` (real time, what the model runner is measured on) and
`VirtualClock` (simulated time that moves only when told to), both behind the same `Clock` protocol."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def start(self) -> None: ...
    def now(self) -> float: ...
    def sleep_until(self, t: float) -> None: ...


class WallClock:
    """Seconds since `start()`, from the monotonic high-resolution counter."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            time.sleep(delay)


class VirtualClock:
    """Simulated time: it moves only when the engine sleeps, when a runner calls `advance`, or by
    `tick_s` per reading (a fixed cost per clock read, so that steps take time in tests)."""

    def __init__(self, tick_s: float = 0.0) -> None:
        self.tick_s = tick_s
        self.t = 0.0

    def start(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        self.t += self.tick_s
        return self.t

    def advance(self, seconds: float) -> float:
        """Move the clock on by `seconds`; returns the new time."""
        self.t += seconds
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)
