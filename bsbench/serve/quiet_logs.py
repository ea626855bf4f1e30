"""Logging that cannot flood: a repeated message (the same logger, level and format string) is let through at most
once per window; the next one let through says how many were held back. Without it, a client that exhausts the
descriptors makes asyncio log `socket.accept() out of system resource` on every loop turn (100,000s of lines)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

WINDOW_S = 10.0
NOISY_LOGGERS = ("asyncio", "uvicorn.error")


class RepeatFilter(logging.Filter):
    def __init__(self, window_s: float = WINDOW_S) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (last let through, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        last, held = self._seen.get(key, (-float("inf"), 0))
        if now - last < self.window_s:
            self._seen[key] = (last, held + 1)
            return False
        if len(self._seen) > 1000:  # distinct messages are few; bound the table anyway
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {self.window_s:g} s)"
        return True


@contextmanager
def quiet_repeats(window_s: float = WINDOW_S) -> Iterator[RepeatFilter]:
    """While inside, repeats on the asyncio and uvicorn loggers are held back (RepeatFilter)."""
    repeat = RepeatFilter(window_s)
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    for logger in loggers:
        logger.addFilter(repeat)
    try:
        yield repeat
    finally:
        for logger in loggers:
            logger.removeFilter(repeat)
