"""Operator tables: the measured seconds of the runner's matrix products as a function of their rows.

A matrix product's time is not linear in its rows on real hardware: BLAS libraries
switch kernels with the row count (on a CPU, 2 or 3 rows through the LM head take
longer than 4, because a matrix-vector path is taken per row), and GPU GEMMs move
in whole tiles. A linear model of token counts cannot follow that, so calibration
measures the products themselves at `ROW_KNOTS` rows, with the runner's own
weights, dtype and device (as Vidur profiles its operators), and the fit uses the
interpolated times as features:

- `linear`: every `nn.Linear` of the decoder applied to T rows (the projections and
  the MLP of all layers): what a step's T tokens, pads included, cost in matmuls;
- `lm_head`: the LM head and the greedy argmax over S rows (the sampled rows).

Between knots the time is interpolated linearly; beyond the last knot it grows
with the slope of the last two (never downwards); 0 rows cost 0.
"""

from __future__ import annotations

import statistics
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

ROW_KNOTS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
             1536, 2048)
LM_HEAD_MAX_ROWS = 256  # sampled rows of a step: at most its sequences
TABLES = ("linear", "lm_head")


@dataclass(slots=True, frozen=True)
class RowTable:
    """Seconds at `knots` rows (ascending); `at(rows)` interpolates (see the module docstring)."""

    knots: tuple[int, ...]
    seconds: tuple[float, ...]

    def at(self, rows: float) -> float:
        knots, seconds = self.knots, self.seconds
        if rows <= 0 or not knots:
            return 0.0
        if rows <= knots[0]:
            return seconds[0] * rows / knots[0]
        i = bisect_left(knots, rows)
        if i == len(knots):  # beyond the last knot: the last slope, never negative
            i -= 1
        x0, x1, y0, y1 = knots[i - 1], knots[i], seconds[i - 1], seconds[i]
        slope = (y1 - y0) / (x1 - x0)
        if rows > x1:
            return y1 + max(slope, 0.0) * (rows - x1)
        return y0 + slope * (rows - x0)

    def to_dict(self) -> dict[str, list[Any]]:
        return {"knots": list(self.knots), "seconds": list(self.seconds)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RowTable:
        knots, seconds = tuple(int(k) for k in data["knots"]), tuple(float(s) for s in data["seconds"])
        if len(knots) != len(seconds) or list(knots) != sorted(set(knots)) or any(k < 1 for k in knots):
            raise ValueError("an operator table needs ascending distinct knots >= 1, one time each")
        return RowTable(knots, seconds)


EMPTY = RowTable((), ())


def tables_from_dict(data: dict[str, Any]) -> dict[str, RowTable]:
    """Every table of `TABLES` from a calibration file's `tables` (a missing one is `EMPTY`: it costs 0)."""
    return {name: RowTable.from_dict(data[name]) if name in data else EMPTY for name in TABLES}


class TableTimer:
    """Times `runner`'s decoder linears and LM head at every knot, one pass per `run_pass` call, so that a caller
    can spread the passes over a long measurement. The first pass is a warm-up and is dropped; `tables()` keeps
    the median of the others. A runner without a torch model (a test double) has no tables (`tables()` is {})."""

    def __init__(self, runner: Any, sync: Callable[[], None]) -> None:
        # lazy: torch is heavy
        import torch

        self.sync = sync
        self.passes = 0
        self.ops: dict[str, tuple[Callable[[int], None], Sequence[int]]] = {}
        self.samples: dict[str, list[list[float]]] = {}
        lm_head = getattr(runner, "lm_head", None)
        decoder = getattr(runner, "decoder", None)
        if not isinstance(lm_head, torch.nn.Module) or not isinstance(decoder, torch.nn.Module):
            return
        linears = [m for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
        hidden = int(cast(torch.Tensor, lm_head.weight).shape[1])
        gen = torch.Generator().manual_seed(0)
        inputs = {width: torch.randn(max(ROW_KNOTS), width, generator=gen).to(device=runner.device,
                                                                               dtype=runner.dtype)
                  for width in sorted({m.in_features for m in linears} | {hidden})}

        def through_linears(rows: int) -> None:
            for m in linears:
                m(inputs[m.in_features][:rows])

        def through_lm_head(rows: int) -> None:
            lm_head(inputs[hidden][:rows]).argmax(dim=-1).tolist()

        self.ops = {"linear": (through_linears, ROW_KNOTS),
                    "lm_head": (through_lm_head, [k for k in ROW_KNOTS if k <= LM_HEAD_MAX_ROWS])}
        self.samples = {name: [[] for _ in knots] for name, (_, knots) in self.ops.items()}

    def run_pass(self) -> None:
        # lazy: torch is heavy
        import torch

        with torch.inference_mode():
            for name, (op, knots) in self.ops.items():
                for i, rows in enumerate(knots):
                    self.sync()
                    start = time.perf_counter()
                    op(rows)
                    self.sync()
                    if self.passes:
                        self.samples[name][i].append(time.perf_counter() - start)
        self.passes += 1

    def tables(self) -> dict[str, RowTable]:
        """The median of the kept passes at every knot (one more pass first if none was kept yet)."""
        while self.ops and self.passes < 2:
            self.run_pass()
        return {name: RowTable(tuple(knots), tuple(statistics.median(s) for s in self.samples[name]))
                for name, (_, knots) in self.ops.items()}


def measure_tables(runner: Any, passes: int, sync: Callable[[], None]) -> dict[str, RowTable]:
    """`TableTimer` run `passes` times in a row (at least 2: the first is a warm-up)."""
    timer = TableTimer(runner, sync)
    for _ in range(max(passes, 2) if timer.ops else 0):
        timer.run_pass()
    return timer.tables()
