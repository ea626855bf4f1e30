"""What the real-runner timing benchmarks share: the load average they print around their figures, and the
flags and session of the real runner they time (dummy weights)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from bsbench.backends.config import RunConfig
from bsbench.backends.run import open_session
from bsbench.progress import Progress


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: timings are only worth quoting on a quiet machine."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_load_before() -> float:
    """Print the load average before the timings; returns the start time for `print_load_after`."""
    print(f"load average before: {load_average()}", flush=True)
    return time.perf_counter()


def print_load_after(start: float) -> None:
    """Print the load average after the timings and the wall time since `start`."""
    print(f"load average after: {load_average()}; wall time {time.perf_counter() - start:.0f} s", flush=True)


def open_runner_benchmark(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, Any]:
    """Add --model (default tiny), --device (default cpu) and --threads (default 1) to `parser`, parse the command
    line, print the load average and open a real session with dummy weights on those flags (no progress
    display); (the parsed flags, the session)."""
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print_load_before()
    config = RunConfig(model=args.model, weights="dummy", device=args.device, threads=args.threads)
    return args, open_session(config, Progress(enabled=False))
