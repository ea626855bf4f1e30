"""One round of capacity probes on an executor: what `bsbench capacity` and `bsbench reproduce` share.

A round is every unfinished search's next rate (capacity.find_capacities). Each probe is one engine run of a
scheduler on the workload of one (rate, seed), built once per (rate, seed) and shared by the schedulers, so
the searches stay paired. The driver writes every record; a probe whose run failed twice counts as a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from bsbench.experiments.executors.base import Executor, RunOne, RunTask, TaskOutcome
from bsbench.metrics import steady
from bsbench.record import save_record

K = TypeVar("K", bound=Hashable)
# what a probe got: (attainment or None, info such as the record path); capacity.Got
Got = tuple[float | None, dict[str, Any]]


def probe_round(rates: dict[K, float], who: Callable[[K], tuple[str, int]],
                make_workload: Callable[[float, int], Any], config_of: Callable[[str, Any, int], Any],
                executor: Executor, run_one: RunOne, out_dir: Path,
                on_outcome: Callable[[K, TaskOutcome, Path | None], None] | None = None) -> dict[K, Got]:
    """Run every probe of one round at once. `who(key)` -> (scheduler, seed); `make_workload(rate, seed)`;
    `config_of(scheduler, workload, seed)` -> the RecordConfig the run will carry (keys the run). Each record is
    saved into `out_dir`; `on_outcome(key, outcome, path)` is told of each (path None: the run failed)."""
    # lazy: loads numpy
    from bsbench.experiments.sweep import run_key

    workloads: dict[tuple[float, int], Any] = {}
    tasks: dict[K, RunTask] = {}
    for index, (key, rate) in enumerate(rates.items()):
        scheduler, seed = who(key)
        if (rate, seed) not in workloads:
            workloads[(rate, seed)] = make_workload(rate, seed)
        workload = workloads[(rate, seed)]
        fingerprint = workload.fingerprint()
        tasks[key] = RunTask(index, run_key(config_of(scheduler, workload, seed), fingerprint), scheduler, rate,
                             seed, workload, fingerprint)
    by_index = {task.index: key for key, task in tasks.items()}
    got: dict[K, Got] = {}
    with closing(executor.run(list(tasks.values()), run_one)) as outcomes:  # closed early: workers stop
        for outcome in outcomes:
            key = by_index[outcome.task.index]
            if outcome.record is None:
                got[key] = None, {"failed": outcome.error}
                path = None
            else:
                path = save_record(outcome.record, out_dir, encoded=outcome.encoded)
                summary = outcome.record.summary
                got[key] = steady(summary, "slo_attainment"), {"path": str(path),
                                                               "overloaded": bool(summary.get("overloaded"))}
            if on_outcome is not None:
                on_outcome(key, outcome, path)
    return got
