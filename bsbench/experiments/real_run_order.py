"""The order of validate-sim's real runs: round after round, every (cell, scheduler) once per round.

A shared machine's speed drifts over minutes, beside switching between spells every
few seconds. Measured cell after cell, all repeats of one (workload, rate) fell in one
stretch of minutes, while the calibration, spread over every run, averaged them all. On
2026-11-22 the calibration's 16-row decode took 24-30 ms in the three passes timed
during the first cell and 17.6-20 ms in the last four; the mean median-E2E error of a
cell's four schedulers then ranged from -13.5% to +6.4% over the four cells. In rounds,
repeat r of every cell lies in round r, so every cell's median is taken over the same
minutes as the calibration: three runs the same day ranged from -10.2% to +1.7%, -3.7%
to +8.3% and -4.4% to +1.6%. Within a round the schedulers of each cell start at a
rotating position, so none is always the first after another cell.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class RealRun:
    """One real run: cell index (a (workload, rate)), repeat index and scheduler name."""

    cell: int
    repeat: int
    scheduler: str


def real_run_order(cells: int, repeats: int, schedulers: list[str]) -> list[RealRun]:
    """Every (cell, repeat, scheduler) exactly once: round r holds repeat r of every cell, cell after cell, each
    cell's schedulers rotated by (r + cell) positions."""
    order: list[RealRun] = []
    for repeat in range(repeats):
        for cell in range(cells):
            shift = (repeat + cell) % len(schedulers) if schedulers else 0
            order.extend(RealRun(cell, repeat, name) for name in schedulers[shift:] + schedulers[:shift])
    return order
