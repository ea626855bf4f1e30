"""What sweep and capacity share: the workload target and overrides, the base run config, one model session
reused across runs, one progress display, and `task_runner(base_seed)` (an executor's RunOne)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bsbench.backends.config import RunConfig
from bsbench.backends.factory import cluster_setting_of
from bsbench.backends.policy_build import build_scheduler_options, check_flags_apply, options_for
from bsbench.backends.record_build import planned_record_config
from bsbench.backends.run import session_for
from bsbench.backends.session import ModelSession
from bsbench.experiments.executors import Executor, make_executor
from bsbench.experiments.executors.engine_task import EngineTask
from bsbench.model.source import check_model_source
from bsbench.progress import Progress
from bsbench.record import RecordConfig
from bsbench.schedulers.registry import all_schedulers, get_scheduler
from bsbench.workloads.build import load_workload
from bsbench.workloads.workload import Workload


@dataclasses.dataclass(slots=True)
class EngineRunner:
    """A sweep's or a capacity search's engine side. `scheduler_flags`: the scheduler flags the user gave, each
    applied to the schedulers that have it."""

    config: RunConfig
    target: str | None  # the --workload spec, name or file (None: the default workload)
    overrides: dict[str, Any]
    scheduler_flags: dict[str, Any]
    progress: Progress
    session: ModelSession | None = None

    @property
    def known_schedulers(self) -> list[str]:
        return sorted(all_schedulers())

    @property
    def out_dir(self) -> Path:
        return Path(self.config.out_dir)

    def workload(self, rate: float | None = None, seed: int | None = None) -> Workload:
        overrides = dict(self.overrides)
        if rate is not None:
            overrides["rate"] = rate
        if seed is not None:
            overrides["seed"] = seed
        with self.progress.task("loading the workload"):
            return load_workload(self.target, overrides)

    def base_seed(self) -> int:
        if "seed" in self.overrides:
            return int(self.overrides["seed"])
        return int(self.workload().spec.get("seed") or 0)

    def check_schedulers(self, names: list[str]) -> list[str]:
        """The chosen schedulers, once every scheduler flag given applies to one of them and is valid for it,
        and the model can be had (a hub id while offline and not cached: exit 2 in a moment)."""
        check_flags_apply(names, self.scheduler_flags)
        for name in names:
            options = options_for(name, self.scheduler_flags)
            build_scheduler_options(get_scheduler(name), options)
            cluster_setting_of(dataclasses.replace(self.config, scheduler=name, scheduler_options=options))
        check_model_source(self.config.model)
        return names

    def open(self) -> ModelSession:
        """The model session (loaded once per process, shared by every run here: backends.run.session_for): its
        backend id keys the runs, its timing label heads simulated output."""
        if self.session is None:
            self.session = session_for(self.config, self.progress)
        return self.session

    def executor(self, name: str, workers: int | None, ray_address: str | None) -> Executor:
        """The executor of --executor/--workers/--ray-address; Ray tasks ask for a GPU when runs use CUDA."""
        gpu_tasks = name == "ray" and not self.open().part.simulated and self.open().device.startswith("cuda")
        return make_executor(name, workers, ray_address, gpu_tasks)

    def task_runner(self, base_seed: int) -> EngineTask:
        """What runs one task (here or in a worker): the base config, each scheduler's flags, the base seed."""
        options = {name: options_for(name, self.scheduler_flags) for name in self.known_schedulers}
        return EngineTask(self.config, options, base_seed)

    def timing_note(self) -> str:
        """'simulated (...): ' before tables and lines of simulated figures; '' for measured ones."""
        label = self.open().timing_label()
        return f"{label}: " if label else ""

    def planned_config(self, scheduler: str, workload: Any, seed: int, base_seed: int) -> RecordConfig:
        """The RecordConfig the run of `scheduler` on `workload` (of `seed`) will carry (sweep.run_key keys it):
        made from the same run config as the run itself (EngineTask.config_for), so they cannot drift."""
        return planned_record_config(workload, self.task_runner(base_seed).config_for(scheduler, seed), self.open())
