"""A `bsbench run` in a child process, and a wait until its engine loop has really ended a request.

Signal tests interrupt a run mid-way. A fixed sleep after the banner is a race on
a loaded machine (a slow start can outlast it, or the sleep can outlast a fast
run); reading the run's non-terminal progress lines instead waits for proof
that the loop is running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

PROGRESS_ENV = {"PYTHONUNBUFFERED": "1", "BSBENCH_PROGRESS_INTERVAL": "0.2"}


def start_run(*args: object) -> subprocess.Popen:
    """`python -m bsbench run ARGS` with piped output and progress lines every 0.2 s on stderr (no --quiet)."""
    return subprocess.Popen([sys.executable, "-m", "bsbench", "run", *map(str, args)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={**os.environ, **PROGRESS_ENV})


def wait_until_a_request_ends(proc: subprocess.Popen, total: int) -> list[str]:
    """Read stderr until a progress line says at least one of `total` requests ended; the lines read."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if re.search(rf": [1-9][0-9]*/{total} requests", line):  # "continuous @ 1 req/s: 2/12 requests, ..."
            return seen
    raise AssertionError(f"the run ended without reporting a finished request: {seen[-5:]}")
