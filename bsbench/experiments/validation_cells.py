"""validate-sim's comparisons, as pure functions of the runs' summaries: one scheduler's simulated run against
its real runs, and one (workload, rate) cell's rankings of the schedulers, real against simulated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.report.validation_tables import E2E_SHOWN, RANK_KEYS
from bsbench.sim.accuracy import (
    decisive_pairs,
    end_to_end_errors,
    error_stats,
    median_summary,
    ranking,
    ranking_preserved,
    spread,
)


def check_distinct(cells: list[tuple[str, float, Any]]) -> None:
    """BsbenchError when two named workloads give the same requests at a rate (a ranking "kept on two workloads"
    would then be one workload counted twice)."""
    seen: dict[tuple[float, str], str] = {}
    for name, rate, workload in cells:
        first = seen.setdefault((rate, workload.fingerprint()), name)
        if first != name:
            raise BsbenchError(f"workloads {first!r} and {name!r} give the same requests with these flags: "
                               "validate on distinct workloads")


def compare_runs(real: Sequence[dict[str, Any]], sim: dict[str, Any], priced: list[tuple[str, float, float]],
                 records: list[str]) -> dict[str, Any]:
    """One scheduler in one cell: the simulated summary against the median of the real ones (`real`), their
    spread, and the real steps `priced` as (layout, measured s, predicted s); `records`: the runs' record paths."""
    real_median = median_summary(real)
    return {"real": real_median, "sim": sim,
            "errors": end_to_end_errors(real_median, sim),
            "real_spread": {key: spread(real, key) for key in E2E_SHOWN},
            "real_repeats": [{k: r.get(k) for k in E2E_SHOWN} for r in real],
            "steps": priced,
            "step_error": error_stats([m for _, m, _ in priced], [p for _, _, p in priced]),
            "records": records}


def compare_cell(workload_name: str, rate: float, runs: dict[str, dict[str, Any]],
                 real_repeats: int) -> dict[str, Any]:
    """One (workload, rate) from its schedulers' `compare_runs`: whether the simulator orders them as the median
    of the real runs does, both orders, how many real repeats alone agree, and the decisive pairs it keeps."""
    preserved = {key: ranking_preserved({n: r["real"][key] for n, r in runs.items()},
                                        {n: r["sim"][key] for n, r in runs.items()}, key) for key in RANK_KEYS}
    return {"workload": workload_name, "rate": rate, "runs": runs, "ranking_preserved": preserved,
            "ranking": {key: {"real": ranking({n: r["real"][key] for n, r in runs.items()}, key),
                              "sim": ranking({n: r["sim"][key] for n, r in runs.items()}, key)}
                        for key in RANK_KEYS},
            "real_repeats_agreeing": {key: _repeats_agreeing(runs, key, real_repeats) for key in RANK_KEYS},
            "decisive_pairs": {key: dict(zip(("decided", "kept"), decisive_pairs(
                {n: [rep[key] for rep in r["real_repeats"]] for n, r in runs.items()},
                {n: r["sim"][key] for n, r in runs.items()}))) for key in RANK_KEYS}}


def _repeats_agreeing(runs: dict[str, dict[str, Any]], key: str, repeats: int) -> int:
    """How many real repeats, on their own, order the schedulers on `key` as the median of the repeats does."""
    median_order = ranking({n: r["real"][key] for n, r in runs.items()}, key)
    return sum(ranking({n: r["real_repeats"][i][key] for n, r in runs.items()}, key) == median_order
               for i in range(repeats))
