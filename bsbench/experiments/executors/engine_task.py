"""The RunOne the CLI hands an executor: one engine run of a sweep or capacity task, picklable, so it runs the
same in the driver (serial) and in a worker (process, Ray)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bsbench.experiments.executors.base import RunTask

if TYPE_CHECKING:
    from bsbench.backends.config import RunConfig
    from bsbench.record import RunRecord


@dataclass(slots=True, frozen=True)
class EngineTask:
    """`base` is the command's run config; per task the scheduler (with its `options` and, where `instances`
    names it, its topology), the seed, the repeat (seed - base_seed) change. The record comes back unsaved: the
    driver writes it."""

    base: RunConfig
    options: dict[str, dict[str, Any]]
    base_seed: int
    instances: dict[str, str] = field(default_factory=dict)  # a scheduler's own topology (bucket disaggregated)

    def config_for(self, scheduler: str, seed: int) -> RunConfig:
        """The run config of `scheduler` on the workload of `seed`; its topology from `instances` if given there."""
        return dataclasses.replace(self.base, scheduler=scheduler, scheduler_options=self.options[scheduler],
                                   seed=seed, repeat=seed - self.base_seed, base_seed=self.base_seed,
                                   instances=self.instances.get(scheduler, self.base.instances))

    def __call__(self, task: RunTask) -> RunRecord:
        # lazy: loads numpy
        from bsbench.backends.run import run_benchmark, session_for

        config = self.config_for(task.scheduler, task.seed)
        return run_benchmark(task.workload, config, progress=False, session=session_for(config), save=False)
