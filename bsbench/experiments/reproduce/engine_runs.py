"""The runs of a reproduction, through the harness's own machinery: sweeps (bsbench.experiments.sweep.run_sweep) and
capacity searches (bsbench.experiments.capacity.find_capacities, one round of probes by capacity_probes.probe_round).

Each experiment writes into its own folder under OUT (one sweep or search per folder: a folder holds one
setting), so a reproduction run again into the same OUT resumes its sweeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bsbench.backends.record_build import planned_record_config
from bsbench.backends.run import session_for
from bsbench.experiments.capacity import capacity_search, search_and_confirm
from bsbench.experiments.capacity_probes import probe_round
from bsbench.experiments.capacity_repeats import CapacityOverRepeats, slo_text
from bsbench.experiments.executors.engine_task import EngineTask
from bsbench.experiments.run_length import RunLength
from bsbench.experiments.sweep import SweepPlan, run_sweep
from bsbench.record import read_records

if TYPE_CHECKING:
    from bsbench.backends.config import RunConfig
    from bsbench.experiments.executors import Executor
    from bsbench.experiments.executors.engine_task import EngineTask
    from bsbench.experiments.sweep import SweepResult
    from bsbench.record import RecordConfig, RunRecord
    from bsbench.workloads.workload import Workload

MakeWorkload = Callable[[float, int], "Workload"]


@dataclass(slots=True)
class CapacitySetting:
    """How a capacity search runs: the target attainment, the first rate, the ceiling and the relative
    tolerance of the bisection."""

    target: float
    start_rate: float
    max_rate: float
    tolerance: float


@dataclass(slots=True)
class Bench:
    """One model setup (`config`: model, backend, device or GPU preset), each scheduler's options (and topology,
    `instances`: e.g. bucket disaggregated), the seeds of the repeats, the executor, and `say` for one line of
    progress."""

    config: RunConfig
    options: dict[str, dict[str, Any]]
    seeds: list[int]
    executor: Executor
    say: Callable[[str], None] = print
    done: list[str] = field(default_factory=list)  # the folders written, in order
    instances: dict[str, str] = field(default_factory=dict)  # scheduler -> its disaggregated topology

    def task(self) -> EngineTask:

        return EngineTask(self.config, self.options, self.seeds[0], self.instances)

    def config_of(self, scheduler: str, workload: Any, seed: int) -> RecordConfig:

        return planned_record_config(workload, self.task().config_for(scheduler, seed), session_for(self.config))

    def timing_label(self) -> str:

        return session_for(self.config).timing_label()

    def sweep(self, folder: Path, schedulers: Sequence[str], rates: Sequence[float],
              make_workload: MakeWorkload) -> SweepResult:
        """Every scheduler at every rate and seed on paired workloads (run_sweep), with its summary file."""

        plan = SweepPlan(list(schedulers), sorted(rates), list(self.seeds), session_for(self.config).backend_id())
        self.say(f"{folder.name}: {plan.size} runs ({', '.join(schedulers)} x {len(rates)} rates x "
                 f"{len(self.seeds)} seeds)")
        result = run_sweep(plan, make_workload, self.task(), folder,
                           config_of=lambda name, workload, rate, seed: self.config_of(name, workload, seed),
                           executor=self.executor)
        self.done.append(str(folder))
        return result

    def timed(self, length: RunLength) -> Bench:
        """This bench with runs scored over `length`'s window."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, window=length.spec()))

    def capacities(self, folder: Path, schedulers: Sequence[str], make_workload: Callable[[RunLength], MakeWorkload],
                   setting: CapacitySetting, length: RunLength) -> dict[str, CapacityOverRepeats]:
        """One capacity search per scheduler and seed, in lock step, probe records in `folder`; each probe runs
        `length` (make_workload(length) builds its workloads), each found capacity confirmed at twice it."""

        folder.mkdir(parents=True, exist_ok=True)
        searches = {(name, seed): capacity_search(setting.target, setting.start_rate, setting.tolerance,
                                                  setting.max_rate, relative=True)
                    for name in schedulers for seed in self.seeds}

        def probe_all_at(doubled: bool) -> Callable[[dict[Any, float]], dict[Any, Any]]:
            run = length.doubled() if doubled else length
            bench = self.timed(run)
            if doubled:
                self.say(f"{folder.name}: confirming the capacities at a {run.window_s:g} s window")
            return lambda rates: probe_round(rates, lambda key: key, make_workload(run), bench.config_of,
                                             bench.executor, bench.task(), folder)

        self.say(f"{folder.name}: capacity searches of {', '.join(schedulers)} x {len(self.seeds)} seeds, "
                 f"{length.window_s:g} s windows")
        found, confirmed = search_and_confirm(searches, probe_all_at, setting.tolerance, setting.max_rate)
        slo = slo_text(make_workload(length)(setting.start_rate, self.seeds[0]).spec.get("slo") or {},
                       setting.target)
        self.done.append(str(folder))
        return {name: CapacityOverRepeats(name, list(self.seeds), [found[(name, seed)] for seed in self.seeds],
                                          slo, setting.max_rate, [confirmed[(name, seed)] for seed in self.seeds],
                                          length.window_s) for name in schedulers}


def sweep_records(result: SweepResult) -> dict[tuple[str, float], list[RunRecord]]:
    """The complete records of a sweep by (scheduler, rate), one per seed, in seed order."""

    runs = [r for r in result.runs if r.complete and r.path]
    records = read_records([r.path for r in runs]) if runs else []
    by_cell: dict[tuple[str, float], list[RunRecord]] = {}
    for record in sorted(records, key=lambda r: int(r.config.seed or 0)):
        by_cell.setdefault((record.config.scheduler, float(record.config.rate)), []).append(record)
    return by_cell
