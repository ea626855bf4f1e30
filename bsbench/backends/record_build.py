"""The run record of a run on an in-process backend: its config (common part + the backend's part), environment,
request rows and summary."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bsbench import metrics
from bsbench.backends.cluster.backend import cluster_part
from bsbench.backends.config import RunConfig
from bsbench.backends.factory import cluster_setting_of
from bsbench.backends.host_timing import HOST_TIMED
from bsbench.backends.policy_build import build_scheduler_options
from bsbench.backends.session import ModelSession
from bsbench.engine.loop import EngineResult
from bsbench.engine.request_state import RequestState
from bsbench.environment import capture_environment
from bsbench.record import Outcome, RecordConfig, RequestRow, RunRecord, WorkloadInfo
from bsbench.record.backend_part import BackendPart
from bsbench.schedulers.registry import get_scheduler
from bsbench.workloads.workload import Workload


def request_row(state: RequestState, record_tokens: bool) -> RequestRow:
    """The record's row for one ended request."""
    spec = state.spec
    return RequestRow(
        id=spec.id,
        source=spec.source,
        priority=spec.priority,
        prompt_len=spec.prompt_len,
        output_len=spec.output_len,
        num_output=state.num_output,
        arrival_s=spec.arrival_s,
        first_scheduled_s=state.first_scheduled_s,
        first_token_s=state.token_times[0] if state.token_times else None,
        finish_s=state.finish_s,
        token_times=state.token_times,
        status=Outcome(state.status.value),
        reason=state.reason,
        preemptions=state.preemptions,
        pad_tokens=state.pad_tokens,
        truncated=state.truncated,
        slo_ttft_ms=spec.slo.ttft_ms,
        slo_tpot_ms=spec.slo.tpot_ms,
        slo_e2e_ms=spec.slo.e2e_ms,
        notes=dict(state.notes),
        output_ids=list(state.output_ids) if record_tokens else None,
        breakdown=state.phases.breakdown(),
        transfer_start_s=state.transfer_start_s,
        transfer_end_s=state.transfer_end_s,
    )


@dataclass(slots=True)
class EndedRows:
    """The engine's `on_ended`: each request's record row, made as the request ends. Unless the run records
    tokens, the ended request's output ids are let go then (RequestState.release_output_ids): the engine so holds
    no id of a finished request (3.3M of them at the end of a 10k-request ShareGPT run)."""

    record_tokens: bool
    rows: dict[str, RequestRow] = field(default_factory=dict)

    def __call__(self, ended: list[RequestState]) -> None:
        for state in ended:
            self.rows[state.id] = request_row(state, self.record_tokens)
            if not self.record_tokens:
                state.release_output_ids()

    def of(self, states: Sequence[RequestState]) -> list[RequestRow]:
        """The row of every state, in `states` order: the one made as it ended, else one made now."""
        return [self.rows.get(s.id) or request_row(s, self.record_tokens) for s in states]


def record_config(workload: Workload, config: RunConfig, session: ModelSession, options: Any) -> RecordConfig:
    """The RecordConfig a run of `config` on `workload` in `session` carries; `options` is the policy's options
    dataclass (effective, defaults filled in). The sweep keys runs on it before they run (sweep.run_key)."""
    return RecordConfig(
        scheduler=config.scheduler,
        scheduler_options=dataclasses.asdict(options),
        rate=float(workload.spec.get("rate", math.inf)),
        arrival=workload.spec.get("arrival"),
        seed=workload.spec.get("seed"),
        num_requests=len(workload.requests),
        workload=workload.name,
        model=session.info.name,
        device=session.device,
        dtype=session.dtype,
        kv_memory_bytes=session.kv_budget_bytes,
        block_size=session.block_size,
        threads=session.threads,
        num_kv_blocks=session.num_blocks,
        kv_capacity_tokens=session.num_blocks * session.block_size,
        tokenizer=workload.tokenizer,
        record_tokens=config.record_tokens,
        percentiles=list(config.percentiles),
        repeat=config.repeat,
        base_seed=config.base_seed if config.base_seed is not None else workload.spec.get("seed"),
        backend=_run_part(config, session),
        window=None if config.window is None else config.window.to_json(),
    )


def _run_part(config: RunConfig, session: ModelSession) -> BackendPart:
    """The record part of one run: its session's, or a cluster's when the run is disaggregated."""
    setting = cluster_setting_of(config)
    return session.part if setting is None else cluster_part(session.part, setting)


def planned_record_config(workload: Workload, config: RunConfig, session: ModelSession) -> RecordConfig:
    """`record_config` of a run not yet made: the policy's options built from `config` as the run builds them."""
    options = build_scheduler_options(get_scheduler(config.scheduler), config.scheduler_options)
    return record_config(workload, config, session, options)


def make_record(workload: Workload, config: RunConfig, session: ModelSession, options: Any,
                policy_summary: dict[str, Any], result: EngineResult, gpu: dict[str, Any],
                ended: EndedRows | None = None) -> RunRecord:
    """The run's record; `ended`: the rows made as requests ended (the others are made here)."""
    run_config = record_config(workload, config, session, options)
    environment = environment_of(session)
    if gpu:
        environment["gpu_sampled"] = gpu
    scheduler_summary = {
        "name": config.scheduler,
        "decision_s": result.scheduler_decision_s,
        "decision_share": result.scheduler_decision_s / result.duration_s if result.duration_s > 0 else None,
        **policy_summary,
    }
    if session.part.simulated:  # host wall time is no part of a virtual-clock run's results
        environment["host_timing"] = {k: scheduler_summary.pop(k) for k in HOST_TIMED if k in scheduler_summary}
    return metrics.build_record(
        config=run_config,
        environment=environment,
        workload=WorkloadInfo(workload.name, workload.fingerprint(), len(workload.requests), workload.tokenizer,
                              dict(workload.spec), dict(workload.load_report)),
        requests=(ended or EndedRows(config.record_tokens)).of(result.states),
        steps=result.steps,
        events=result.events.events,
        scheduler=scheduler_summary,
        duration_s=result.duration_s,
        complete=result.complete,
        percentiles=config.percentiles,
        window=config.window,
    )


def environment_of(session: ModelSession) -> dict[str, Any]:
    """capture_environment, with `device_name` saying what the times describe (reports and the gate group by it)
    and, on a virtual clock, the cost model's full description."""
    environment = capture_environment(session.device)
    environment["device_name"] = session.part.device_name(environment.get("device_name"))
    if session.cost_model is not None:
        environment["cost_model"] = session.cost_model.describe()
    return environment
