"""Scheduler-summary keys measured in host wall time (base.Scheduler's decision timer, bucket's controller timer).

On a virtual clock they are no part of a run's results: the record keeps them apart (environment["host_timing"],
backends/record_build.py) and a disaggregated run's per-instance summaries leave them out (backends/cluster/run.py), so
that the record proper is bit-identical run to run.
"""

from __future__ import annotations

from typing import Any

HOST_TIMED = ("decision_s", "decision_share", "decision_mean_us", "controller_s", "controller_mean_us",
              "controller_share")


def without_host_timed(summary: dict[str, Any]) -> dict[str, Any]:
    """`summary` less its host-timed keys."""
    return {k: v for k, v in summary.items() if k not in HOST_TIMED}
