"""Clocks for the engine loop: real wall time now; a virtual clock plugs in the same way later."""

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
