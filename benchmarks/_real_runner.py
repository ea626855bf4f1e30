"""What the real-runner timing benchmarks share: the load average they print around their figures, and the
flags and session of the real runner they time (dummy weights)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from bsbench.bench import RunConfig, open_session
from bsbench.progress import Progress


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: timings are only worth quoting on a quiet machine."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def add_runner_options(parser: argparse.ArgumentParser) -> None:
    """--model (default tiny), --device (default cpu), --threads (default 1)."""
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")


def open_runner_session(args: argparse.Namespace) -> Any:
    """A real session with dummy weights on the flags of `add_runner_options` (no progress display)."""
    config = RunConfig(model=args.model, weights="dummy", device=args.device, threads=args.threads)
    return open_session(config, Progress(enabled=False))
