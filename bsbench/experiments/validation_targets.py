"""validate-sim's verdicts against issue 10's accuracy targets: per-step MAPE, throughput and median E2E within
10%, and the schedulers' ranking kept on at least two workloads at two rates or more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsbench.report.validation_tables import RANK_KEYS, signed_percent
from bsbench.units import format_percent, format_rate

TARGET = 0.10


@dataclass(slots=True, frozen=True)
class TargetVerdict:
    """One target, whether the validation meets it, and the measured figure it rests on."""

    target: str
    passed: bool
    measured: str


def accuracy_targets(cells: list[dict[str, Any]], step_stats: dict[str, Any]) -> list[TargetVerdict]:
    """The verdicts on validate-sim's `cells` (validation_cells.compare_cell) and per-step `step_stats`."""
    out = []
    mape = step_stats["all"]["mape"]
    out.append(TargetVerdict(f"per-step MAPE <= {TARGET:.0%} on held-out workloads",
                             mape is not None and mape <= TARGET,
                             f"{format_percent(mape)} over {step_stats['all']['n']} steps"))
    for key, label in (("output_throughput", "throughput"), ("median_e2el_ms", "median E2E")):
        errors = {f"{c['workload']}@{format_rate(c['rate'])}/{n}": r["errors"].get(key)
                  for c in cells for n, r in c["runs"].items()}
        worst = max(errors.items(), key=lambda kv: abs(kv[1]) if kv[1] is not None else float("inf"))
        passed = all(e is not None and abs(e) <= TARGET for e in errors.values())
        within = sum(1 for e in errors.values() if e is not None and abs(e) <= TARGET)
        figure = f"worst {worst[0]} {signed_percent(worst[1])}; {within}/{len(errors)} within"
        out.append(TargetVerdict(f"{label} within {TARGET:.0%} of the real run for each scheduler", passed, figure))
    by_workload: dict[str, int] = {}
    for cell in cells:
        if all(cell["ranking_preserved"].values()):
            by_workload[cell["workload"]] = by_workload.get(cell["workload"], 0) + 1
    good = [w for w, n in by_workload.items() if n >= 2]
    figure = (f"preserved (both {' and '.join(RANK_KEYS)}) in {sum(by_workload.values())}/{len(cells)} "
              f"(workload, rate) cells; workloads with >= 2 rates: {', '.join(good) or 'none'}")
    out.append(TargetVerdict("four-scheduler ranking preserved on >= 2 workloads at >= 2 rates", len(good) >= 2,
                             figure))
    return out
