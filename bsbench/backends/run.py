"""One benchmark run, end to end: backend session -> policy -> engine -> run record on disk.

`run_benchmark` is the single entry point every command uses (`run`, `sweep`, `capacity`, `reproduce`,
`validate-sim`). The backend of a configuration is chosen by `factory.backend_for`; a `ModelSession`
(weights + KV tensors + runner, or the simulated runner) is reused across runs of the same session key, so a
sweep loads the model once.

Disaggregated runs (the `cluster` backend: `RunConfig.instances` "prefill=N,decode=M", `RunConfig.link`,
`RunConfig.decode_gpu`; `distserve` always) run the scheduler's disaggregated form on several instances of the
simulated GPU (backends/cluster). The KV budget (`kv_memory`, or the device's default) is per instance; the
record's backend part says the topology and link, its step rows the instance, its request rows the KV
transfer's start and end.
"""

from __future__ import annotations

import math
from typing import Any

from bsbench.backends.cluster.run import build_cluster
from bsbench.backends.config import RunConfig
from bsbench.backends.factory import backend_for, cluster_setting_of
from bsbench.backends.fit_checks import check_workload_fits
from bsbench.backends.policy_build import build_policy
from bsbench.backends.record_build import EndedRows, make_record
from bsbench.backends.session import ModelSession
from bsbench.engine.loop import Engine, ProgressFn
from bsbench.environment import GpuSampler
from bsbench.interrupts import InterruptedRun
from bsbench.progress import Progress, ProgressTask, rate_text
from bsbench.record import RunRecord, save_record
from bsbench.schedulers.base import Scheduler
from bsbench.units import format_rate
from bsbench.workloads.workload import Workload


def open_session(config: RunConfig, progress: Progress | None = None) -> ModelSession:
    """The session of `config`'s backend, shown as a progress task (user errors are BsbenchError)."""
    return backend_for(config).open_session(progress or Progress(enabled=False))


def session_for(config: RunConfig, progress: Progress | None = None) -> ModelSession:
    """The session of `config`, opened once per process: the sweep's driver and every executor worker reuse
    it across their runs (one model load per process). Only the last one is kept, so memory holds one model."""
    key = config.session_key()
    if key not in _SESSIONS:
        _SESSIONS.clear()
        _SESSIONS[key] = open_session(config, progress)
    return _SESSIONS[key]


# Per-process cache of session_for: a worker process has no other place to keep its loaded model between tasks.
_SESSIONS: dict[tuple[Any, ...], ModelSession] = {}


def run_benchmark(
    workload: Workload,
    config: RunConfig,
    *,
    progress: bool | Progress = True,
    session: ModelSession | None = None,
    policy: Scheduler | None = None,
    save: bool = True,
) -> RunRecord:
    """Run `workload` through `config.scheduler` and save the run record (unless not `save`: a sweep's driver
    writes the records its executor's workers return); returns the record.

    `progress`: a Progress to show the model loading, the policy's set-up and
    the run on (True: a new one; False: nothing shown). `policy`: one already
    built by `build_policy` for this config and session (and checked), else
    one is built here.

    The record's path is in `record.path`. A Ctrl-C ends the run early: the
    unfinished requests fail with reason "interrupted", the record is still
    written and marked incomplete, and KeyboardInterrupt is re-raised after.
    """
    shown = progress if isinstance(progress, Progress) else Progress(enabled=progress)
    if session is None or session.key != config.session_key():
        session = open_session(config, shown)
    setting = cluster_setting_of(config)
    cluster = None
    if setting is None:
        scheduler = policy if policy is not None else build_policy(config, session, shown)
        check_workload_fits(workload, session.info, scheduler)
    else:
        cluster = build_cluster(config, setting, workload, shown)
    sampler = GpuSampler(session.device)
    label = f"{config.scheduler} @ {format_rate(workload.spec.get('rate', math.inf))} req/s"
    ended: EndedRows | None = None  # a cluster's requests move between instances: its rows are made at the end
    with shown.task(label, total=len(workload.requests), unit="requests") as task:
        if cluster is None:
            ended = EndedRows(config.record_tokens)  # rows made as requests end (record_build.EndedRows)
            engine: Any = Engine(scheduler, session.runner, events=scheduler.ctx.events,
                                 blocks=scheduler.ctx.block_manager, clock=session.clock,
                                 on_progress=_engine_progress(task), on_ended=ended)
        else:
            engine = cluster.make_engine(_engine_progress(task))
        sampler.start()
        result = engine.run(workload.requests)
        gpu = sampler.stop()
    if cluster is None:
        options, summary = scheduler.options, scheduler.summary()
    else:
        options, summary = cluster.options, cluster.summary()
    record = make_record(workload, config, session, options, summary, result, gpu, ended)
    if save:
        save_record(record, config.out_dir)
    if not result.complete:
        raise InterruptedRun(record)
    return record


def _engine_progress(task: ProgressTask) -> ProgressFn:
    """The engine's progress callback shown as a task: requests ended, and output tokens/s since the run began."""

    def update(ended: int, total: int, tokens: int) -> None:
        task.update(ended, detail=rate_text(tokens, task.elapsed_s, "tok/s"))

    return update
