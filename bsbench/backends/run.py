"""One benchmark run, end to end: model session -> policy -> engine -> run record on disk.

`run_benchmark` is the single entry point every command uses (`run`, `sweep`,
`capacity`). A `ModelSession` (weights + KV tensors + runner) can be reused
across runs of the same model, so a sweep loads the model once.

Disaggregated runs (sim backend only): `RunConfig.instances` ("prefill=N,decode=M") and `RunConfig.link`
(nvlink | pcie4-x16 | ib-200g; default nvlink), with `RunConfig.decode_gpu` (a GPU preset for the decode
instances; default `gpu`), make `run_benchmark(workload, config)` run the scheduler's
disaggregated form on several instances of the simulated GPU (bsbench/backends/cluster): `distserve` always runs
so (prefill=1,decode=1 without `instances`), `bucket` when `instances` is given. E.g.
`run_benchmark(workload, RunConfig(scheduler="distserve", backend="sim", clock="virtual", gpu="a100-40gb",
model="llama2-13b", instances="prefill=1,decode=1", link="nvlink"), progress=False, save=False)`.
The KV budget (`kv_memory`, or the device's default) is per instance; the record's config says the
topology and link, its step rows the instance, its request rows the KV transfer's start and end.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.events import EventLog
from bsbench.engine.kv_budget import (
    DEFAULT_BLOCK_SIZE,
    default_kv_budget_for_model,
    num_blocks_for_budget,
)
from bsbench.engine.loop import Engine, EngineResult, ProgressFn
from bsbench.engine.model_info import ModelInfo
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.request_state import RequestState
from bsbench.environment import GpuSampler, capture_environment
from bsbench.errors import BsbenchError, OptionsError
from bsbench.interrupts import InterruptedRun
from bsbench.metrics import build_record
from bsbench.progress import Progress, ProgressTask, rate_text
from bsbench.record import Outcome, RecordConfig, RequestRow, RunRecord, WorkloadInfo, save_record
from bsbench.record.reasons import EndKind, EndReason
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.registry import get_scheduler
from bsbench.units import format_rate
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload


@dataclass(slots=True)
class RunConfig:
    """Everything but the workload that defines a run."""

    scheduler: str = "continuous"
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    model: str = "tiny"
    weights: str = "dummy"
    weights_seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    kv_memory: int | None = None  # bytes; None = the device's default budget
    block_size: int = DEFAULT_BLOCK_SIZE
    threads: int | None = None  # torch intra-op threads; None = model.threads.cpu_threads' default (CPU: cores // 2)
    seed: int = 0
    out_dir: Path = Path("results")
    record_tokens: bool = False
    percentiles: tuple[float, ...] = (50, 90, 99)
    backend: str = "real"  # real | sim
    clock: str = "wall"  # wall | virtual; the sim backend is always virtual
    gpu: str | None = None  # device preset of the cost model (sim, or the real runner on a virtual clock)
    calibration: Path | None = None  # a calibration file: the calibrated cost model instead of the roofline
    repeat: int = 0  # repeat index of --repeats (the workload's seed is base_seed + repeat)
    base_seed: int | None = None  # the workload seed of repeat 0; None: the workload's own seed (one run)
    instances: str | None = None  # disaggregated topology "prefill=N,decode=M" (sim only); None: one instance
    link: str | None = None  # KV-transfer link preset of a disaggregated run; None: nvlink
    decode_gpu: str | None = None  # GPU preset of the decode instances of a disaggregated run; None: `gpu`

    def cluster(self) -> Any:
        """Its cluster.setting.ClusterSetting, or None for one instance (user errors are BsbenchError)."""
        from bsbench.backends.cluster.setting import cluster_setting

        return cluster_setting(self.scheduler, self.instances, self.link, self.backend, self.scheduler_options,
                               self.decode_gpu)

    def session_key(self) -> tuple:
        return (self.model, self.weights, self.weights_seed, self.device, self.dtype, self.kv_memory, self.block_size,
                self.backend, self.clock, self.gpu, str(self.calibration) if self.calibration else None)


@dataclass(slots=True)
class ModelSession:
    """A loaded model, its runner and its KV cache, reusable across runs with the same key."""

    key: tuple
    runner: Any
    info: ModelInfo
    device: str
    dtype: str
    num_blocks: int
    block_size: int
    kv_budget_bytes: int
    backend: str = "real"
    clock_kind: str = "wall"
    clock: Any = None  # the engine's clock: None = a fresh WallClock per run; the runner's VirtualClock otherwise
    gpu: str | None = None  # the cost model's device (preset name, or the measured device of a calibration)
    cost_model: Any = None  # sim.cost_model.CostModel on a virtual clock
    threads: int | None = None

    def backend_id(self) -> str:
        """The id its records will carry (RecordConfig.backend_id)."""
        from bsbench.record.schema import backend_id

        return backend_id(self.backend, self.clock_kind, self.gpu, self.calibration_hash)

    def timing_label(self) -> str:
        """What its records' times are ('' when measured; RecordConfig.timing_label)."""
        from bsbench.record.schema import timing_label

        tier = self.cost_model.tier if self.cost_model is not None else None
        return timing_label(self.backend, self.clock_kind, self.gpu, tier, self.calibration_hash)

    @property
    def calibration_hash(self) -> str | None:
        described = self.cost_model.describe() if self.cost_model is not None else {}
        return described.get("content_hash")

    def describe(self) -> str:
        """One line for banners: what runs the steps and what the times are."""
        if self.backend == "sim":
            return f"simulated {self.gpu} ({self.cost_model.tier} cost model, virtual clock)"
        if self.clock_kind == "virtual":
            return f"{self.device}, virtual clock ({self.cost_model.tier} cost model of {self.gpu})"
        return self.device


def session_for(config: RunConfig, progress: Progress | None = None) -> ModelSession:
    """The session of `config`, opened once per process: the sweep's driver and every executor worker reuse
    it across their runs (one model load per process). Only the last one is kept, so memory holds one model."""
    key = config.session_key()
    if key not in _SESSIONS:
        _SESSIONS.clear()
        _SESSIONS[key] = open_session(config, progress)
    return _SESSIONS[key]


# Per-process cache of session_for: a worker process has no other place to keep its loaded model between tasks.
_SESSIONS: dict[tuple, ModelSession] = {}


def open_session(config: RunConfig, progress: Progress | None = None) -> ModelSession:
    """The backend of a run (the one switch between real and simulated): the loaded model and its KV cache, on a
    wall or virtual clock, or the simulated runner (no torch, no weights). Shown as a progress task."""
    with (progress or Progress(enabled=False)).task(f"loading model {config.model}"):
        if config.backend == "sim":
            return _open_sim_session(config)
        session = _open_session(config)
        return _on_virtual_clock(session, config) if config.clock == "virtual" else session


def _open_sim_session(config: RunConfig) -> ModelSession:
    from bsbench.sim.backend import open_sim

    sim = open_sim(config.model, config.gpu, dtype=config.dtype, kv_memory=config.kv_memory,
                   block_size=config.block_size, calibration=config.calibration)
    return ModelSession(config.session_key(), sim.runner, sim.shape.info, "sim", sim.dtype, sim.num_blocks,
                        sim.block_size, sim.kv_budget_bytes, backend="sim", clock_kind="virtual", clock=sim.clock,
                        gpu=sim.device.name, cost_model=sim.cost_model)


def _on_virtual_clock(session: ModelSession, config: RunConfig) -> ModelSession:
    """The real runner with time from the cost model (sim.virtual_time): real tokens, deterministic scheduling.
    With a GPU preset the activation-OOM decision is the preset's estimate too."""
    from bsbench.engine.clock import VirtualClock
    from bsbench.model.loader import loaded_model_shape
    from bsbench.sim.backend import load_cost_model
    from bsbench.sim.gpus import gpu_preset
    from bsbench.sim.memory import free_after_weights
    from bsbench.sim.virtual_time import VirtualTimeRunner

    runner = session.runner
    shape = loaded_model_shape(runner.model, session.info)
    preset = gpu_preset(config.gpu) if config.gpu else None
    cost, device = load_cost_model(shape, preset, session.dtype, session.block_size, config.calibration)
    room = None
    if preset is not None:
        kv_bytes = session.num_blocks * session.block_size * session.info.kv_bytes_per_token
        room = free_after_weights(shape, preset) - kv_bytes
    clock = VirtualClock()
    return dataclasses.replace(session, runner=VirtualTimeRunner(runner, shape, cost, clock, room),
                               clock_kind="virtual", clock=clock, gpu=device.name, cost_model=cost)


def _open_session(config: RunConfig) -> ModelSession:
    from bsbench.model.loader import load_model, resolve_device, resolve_dtype
    from bsbench.model.runner import ModelRunner
    from bsbench.model.threads import cpu_threads

    device = resolve_device(config.device)
    threads = cpu_threads(config.threads, device.type)  # on CPU without --threads: half the cores (model/threads.py)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    dtype = resolve_dtype(config.dtype, device)
    model, info = load_model(config.model, weights=config.weights, device=device, dtype=dtype,
                             seed=config.weights_seed, kv_bytes=config.kv_memory)
    budget = config.kv_memory or default_kv_budget_for_model(model, info, device)
    num_blocks = num_blocks_for_budget(budget, info, config.block_size)
    runner = ModelRunner(model, info, device, dtype)
    runner.allocate_kv(num_blocks, config.block_size)
    _warm_up(runner, config.block_size)
    return ModelSession(config.session_key(), runner, info, str(device), str(dtype).replace("torch.", ""),
                        num_blocks, config.block_size, budget, threads=_torch_threads())


def _warm_up(runner: Any, block_size: int) -> None:
    """One prefill and one batched decode step, so lazy initialisation is not timed in the first run."""
    prompt = list(range(4, 4 + block_size))
    runner.execute(StepPlan("packed", [SeqChunk("warmup", prompt, 0, [0])]))
    decode = [SeqChunk(f"warmup{i}", [5], block_size - 1, [0], pad_len=0) for i in range(4)]
    runner.execute(StepPlan("packed", decode))


def check_workload_fits(workload: Workload, info: ModelInfo, scheduler: Scheduler) -> None:
    """Impossible configurations are user errors, found before anything runs: no requests, a token id
    outside the vocabulary, a request longer than the model's context, or one the chosen policy would
    never serve even alone (its own admission bound, e.g. bucket's safety share of the KV cache)."""
    if not workload.requests:
        raise BsbenchError("the workload has no requests")
    check_token_ids(workload, info)
    longest = max(workload.requests, key=lambda r: r.prompt_len + r.output_len)
    too_long = context_excess(longest, info)
    if too_long is not None:
        raise BsbenchError(f"request {longest.id} {too_long}; filter the workload "
                           f"(--max-prompt-len / --max-output-len) or use another model")
    bound = scheduler.admission_bound().max_blocks
    over = [(need, r) for r in workload.requests if (need := scheduler.blocks_to_serve_alone(r)) > bound]
    if over:
        need, spec = max(over, key=lambda item: item[0])
        more = f" (and {len(over) - 1} more)" if len(over) > 1 else ""
        raise BsbenchError(f"request {spec.id}{more} {kv_excess(spec, scheduler)}; raise --kv-memory")


def context_excess(spec: RequestSpec, info: ModelInfo) -> str | None:
    """Why `spec` passes the model's context ("needs N tokens ... but"), or None when it fits."""
    total = spec.prompt_len + spec.output_len
    if total <= info.max_model_len:
        return None
    return (f"needs {total} tokens (prompt {spec.prompt_len} + output {spec.output_len}) "
            f"but {info.name} has a context of {info.max_model_len}")


def kv_excess(spec: RequestSpec, scheduler: Scheduler) -> str | None:
    """Why `scheduler` would never serve `spec`, even alone in an empty cache (its admission bound), or None."""
    need = scheduler.blocks_to_serve_alone(spec)
    bound = scheduler.admission_bound()
    if need <= bound.max_blocks:
        return None
    return (f"needs {need} KV blocks of {scheduler.blocks.block_size} tokens (prompt {spec.prompt_len} + output "
            f"{spec.output_len}) but {scheduler.name} lets one request hold at most {bound.max_blocks}, {bound.why}")


def request_misfit(spec: RequestSpec, info: ModelInfo, scheduler: Scheduler) -> EndReason | None:
    """Why one request can never be served (the model's context, the policy's admission bound), typed for
    its end reason; None when it can. An online engine rejects such a request before it enters."""
    too_long = context_excess(spec, info)
    if too_long is not None:
        return EndReason(EndKind.TOO_LONG, f"the request {too_long}")
    over = kv_excess(spec, scheduler)
    return None if over is None else EndReason(EndKind.KV_REJECTED, f"the request {over}")


def check_token_ids(workload: Workload, info: ModelInfo) -> None:
    """Every prompt token id must index the model's embedding (a replay or a tokenizer made for another model)."""
    for spec in workload.requests:
        low, high = min(spec.prompt_ids), max(spec.prompt_ids)
        if low < 0 or high >= info.vocab_size:
            raise BsbenchError(
                f"request {spec.id} has token id {high if high >= info.vocab_size else low} but {info.name} has a "
                f"vocabulary of {info.vocab_size} (ids 0..{info.vocab_size - 1}); the workload's tokenizer "
                f"({workload.tokenizer}) does not fit this model: use --tokenizer with the model's own"
            )


def build_scheduler_options(scheduler_cls: type[Scheduler], values: dict[str, Any]) -> Any:
    """The policy's options dataclass from user-given values, validated: the one place a policy's options are
    checked. An unknown name or a value out of range is a user error (OptionsError naming the flag)."""
    names = {f.name for f in dataclasses.fields(scheduler_cls.Options)}
    unknown = sorted(set(values) - names)
    if unknown:
        flags = ", ".join("--" + n.replace("_", "-") for n in unknown)
        raise OptionsError(f"{flags} does not apply to scheduler {scheduler_cls.name!r}")
    options = scheduler_cls.Options(**values)
    options.validate()
    return options


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


def build_policy(config: RunConfig, session: ModelSession, progress: Progress) -> Scheduler:
    """The configured policy over a fresh block manager and event log for `session`'s KV cache."""
    scheduler_cls = get_scheduler(config.scheduler)
    options = build_scheduler_options(scheduler_cls, config.scheduler_options)
    ctx = SchedulerContext(BlockManager(session.num_blocks, session.block_size), session.info, EventLog(),
                           seed=config.seed, progress=progress)
    return scheduler_cls(options, ctx)


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
    setting = config.cluster()
    cluster = None
    if setting is None:
        scheduler = policy if policy is not None else build_policy(config, session, shown)
        check_workload_fits(workload, session.info, scheduler)
    else:
        from bsbench.backends.cluster.run import build_cluster

        cluster = build_cluster(config, setting, workload, shown)
    sampler = GpuSampler(session.device)
    label = f"{config.scheduler} @ {format_rate(workload.spec.get('rate', math.inf))} req/s"
    with shown.task(label, total=len(workload.requests), unit="requests") as task:
        if cluster is None:
            engine: Any = Engine(scheduler, session.runner, events=scheduler.ctx.events,
                                 blocks=scheduler.ctx.block_manager, clock=session.clock,
                                 on_progress=_engine_progress(task))
        else:
            engine = cluster.make_engine(_engine_progress(task))
        sampler.start()
        result = engine.run(workload.requests)
        gpu = sampler.stop()
    if cluster is None:
        options, summary = scheduler.options, scheduler.summary()
    else:
        options, summary = cluster.options, cluster.summary()
    record = _make_record(workload, config, session, options, summary, result, gpu)
    if save:
        save_record(record, config.out_dir)
    if not result.complete:
        raise InterruptedRun(record)
    return record


# Scheduler-summary keys measured in host wall time (base.Scheduler's decision timer, bucket's controller timer).
# On a virtual clock they move to environment["host_timing"], so that the record proper is bit-identical run to run.
HOST_TIMED = ("decision_s", "decision_share", "decision_mean_us", "controller_s", "controller_mean_us",
              "controller_share")


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
        weights=config.weights if session.backend == "real" else None,
        weights_seed=config.weights_seed if session.backend == "real" else None,
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
        backend=session.backend,
        clock=session.clock_kind,
        gpu=session.gpu,
        cost_model=session.cost_model.tier if session.cost_model is not None else None,
        calibration_hash=session.calibration_hash,
        repeat=config.repeat,
        base_seed=config.base_seed if config.base_seed is not None else workload.spec.get("seed"),
        **_cluster_fields(config),
    )


def _cluster_fields(config: RunConfig) -> dict[str, Any]:
    """RecordConfig's `instances` and `link` of a disaggregated run (canonical names); nothing for one instance."""
    setting = config.cluster()
    if setting is None:
        return {}
    return {"instances": str(setting.topology), "link": setting.link.name, "decode_gpu": setting.decode_gpu}


def planned_record_config(workload: Workload, config: RunConfig, session: ModelSession) -> RecordConfig:
    """`record_config` of a run not yet made: the policy's options built from `config` as the run builds them."""
    options = build_scheduler_options(get_scheduler(config.scheduler), config.scheduler_options)
    return record_config(workload, config, session, options)


def _make_record(workload: Workload, config: RunConfig, session: ModelSession, options: Any,
                 policy_summary: dict[str, Any], result: EngineResult, gpu: dict[str, Any]) -> RunRecord:
    run_config = record_config(workload, config, session, options)
    environment = _environment(session)
    if gpu:
        environment["gpu_sampled"] = gpu
    scheduler_summary = {
        "name": config.scheduler,
        "decision_s": result.scheduler_decision_s,
        "decision_share": result.scheduler_decision_s / result.duration_s if result.duration_s > 0 else None,
        **policy_summary,
    }
    if session.clock_kind == "virtual":  # host wall time is no part of a virtual-clock run's results
        environment["host_timing"] = {k: scheduler_summary.pop(k) for k in HOST_TIMED if k in scheduler_summary}
    return build_record(
        config=run_config,
        environment=environment,
        workload=WorkloadInfo(workload.name, workload.fingerprint(), len(workload.requests), workload.tokenizer,
                              dict(workload.spec), dict(workload.load_report)),
        requests=[request_row(s, config.record_tokens) for s in result.states],
        steps=result.steps,
        events=result.events.events,
        scheduler=scheduler_summary,
        duration_s=result.duration_s,
        complete=result.complete,
        percentiles=config.percentiles,
    )


def _environment(session: ModelSession) -> dict[str, Any]:
    """capture_environment, with `device_name` saying what the times describe (reports and the gate group by it)
    and, on a virtual clock, the cost model's full description."""
    environment = capture_environment("sim" if session.backend == "sim" else session.device)
    if session.backend == "sim":
        environment["device_name"] = f"simulated {session.gpu}"
    elif session.clock_kind == "virtual":
        environment["device_name"] = f"{environment.get('device_name')} (virtual clock: {session.gpu}, " \
                                     f"{session.cost_model.tier} cost model)"
    if session.cost_model is not None:
        environment["cost_model"] = session.cost_model.describe()
    return environment


def _engine_progress(task: ProgressTask) -> ProgressFn:
    """The engine's progress callback shown as a task: requests ended, and output tokens/s since the run began."""

    def update(ended: int, total: int, tokens: int) -> None:
        task.update(ended, detail=rate_text(tokens, task.elapsed_s, "tok/s"))

    return update


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
