"""One benchmark run, end to end: model session -> policy -> engine -> run record on disk.

`run_benchmark` is the single entry point every command uses (`run`, `sweep`,
`capacity`). A `ModelSession` (weights + KV tensors + runner) can be reused
across runs of the same model, so a sweep loads the model once.
"""

from __future__ import annotations

import dataclasses
import math
import time
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
from bsbench.errors import BsbenchError
from bsbench.results import build_record, save_record
from bsbench.schedulers.base import SchedulerContext
from bsbench.schedulers.registry import get_scheduler
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
    threads: int | None = None  # torch intra-op threads; None = torch's default
    seed: int = 0
    out_dir: Path = Path("results")
    record_tokens: bool = False
    percentiles: tuple[float, ...] = (50, 90, 99)

    def session_key(self) -> tuple:
        return (self.model, self.weights, self.weights_seed, self.device, self.dtype, self.kv_memory, self.block_size)


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


def open_session(config: RunConfig) -> ModelSession:
    """Load the model and allocate the KV cache for the configured (or default) budget."""
    from bsbench.engine.model_loader import load_model, resolve_device, resolve_dtype
    from bsbench.engine.runner import ModelRunner

    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    model, info = load_model(config.model, weights=config.weights, device=device, dtype=dtype,
                             seed=config.weights_seed, kv_bytes=config.kv_memory)
    budget = config.kv_memory or default_kv_budget_for_model(model, info, device)
    num_blocks = num_blocks_for_budget(budget, info, config.block_size)
    runner = ModelRunner(model, info, device, dtype)
    runner.allocate_kv(num_blocks, config.block_size)
    _warm_up(runner, config.block_size)
    return ModelSession(config.session_key(), runner, info, str(device), str(dtype).replace("torch.", ""),
                        num_blocks, config.block_size, budget)


def _warm_up(runner: Any, block_size: int) -> None:
    """One prefill and one batched decode step, so lazy initialisation is not timed in the first run."""
    prompt = list(range(4, 4 + block_size))
    runner.execute(StepPlan("packed", [SeqChunk("warmup", prompt, 0, [0])]))
    decode = [SeqChunk(f"warmup{i}", [5], block_size - 1, [0], pad_len=0) for i in range(4)]
    runner.execute(StepPlan("packed", decode))


def check_workload_fits(workload: Workload, session: ModelSession) -> None:
    """Impossible configurations are user errors, found before anything runs."""
    if not workload.requests:
        raise BsbenchError("the workload has no requests")
    longest = max(workload.requests, key=lambda r: r.prompt_len + r.output_len)
    total = longest.prompt_len + longest.output_len
    if total > session.info.max_model_len:
        raise BsbenchError(
            f"request {longest.id} needs {total} tokens (prompt {longest.prompt_len} + output {longest.output_len}) "
            f"but {session.info.name} has a context of {session.info.max_model_len}; filter the workload "
            f"(--max-prompt-len / --max-output-len) or use another model"
        )
    capacity = session.num_blocks * session.block_size
    if total > capacity:
        raise BsbenchError(
            f"KV budget holds {capacity} tokens but request {longest.id} needs {total}; raise --kv-memory"
        )


def build_scheduler_options(scheduler_cls: type, values: dict[str, Any]) -> Any:
    """The policy's options dataclass from user-given values; unknown names are user errors."""
    names = {f.name for f in dataclasses.fields(scheduler_cls.Options)}
    unknown = sorted(set(values) - names)
    if unknown:
        flags = ", ".join("--" + n.replace("_", "-") for n in unknown)
        raise BsbenchError(f"{flags} does not apply to scheduler {scheduler_cls.name!r}")
    return scheduler_cls.Options(**values)


def request_row(state: RequestState, record_tokens: bool) -> dict[str, Any]:
    spec = state.spec
    row: dict[str, Any] = {
        "id": spec.id,
        "source": spec.source,
        "priority": spec.priority,
        "prompt_len": spec.prompt_len,
        "output_len": spec.output_len,
        "num_output": state.num_output,
        "arrival_s": spec.arrival_s,
        "first_scheduled_s": state.first_scheduled_s,
        "first_token_s": state.token_times[0] if state.token_times else None,
        "finish_s": state.finish_s,
        "token_times": state.token_times,
        "status": state.status.value,
        "reason": state.reason,
        "preemptions": state.preemptions,
        "pad_tokens": state.pad_tokens,
        "truncated": state.truncated,
        "slo_ttft_ms": spec.slo.ttft_ms,
        "slo_tpot_ms": spec.slo.tpot_ms,
        "slo_e2e_ms": spec.slo.e2e_ms,
        "notes": state.notes,
    }
    if record_tokens:
        row["output_ids"] = state.output_ids
    return row


def run_benchmark(
    workload: Workload,
    config: RunConfig,
    *,
    progress: bool = True,
    session: ModelSession | None = None,
) -> dict[str, Any]:
    """Run `workload` through `config.scheduler` and save the run record; returns the record.

    The record's path is in `record["path"]`. A Ctrl-C ends the run early: the
    unfinished requests fail with reason "interrupted", the record is still
    written and marked incomplete, and KeyboardInterrupt is re-raised after.
    """
    scheduler_cls = get_scheduler(config.scheduler)
    options = build_scheduler_options(scheduler_cls, config.scheduler_options)
    if session is None or session.key != config.session_key():
        session = open_session(config)
    check_workload_fits(workload, session)
    ctx = SchedulerContext(BlockManager(session.num_blocks, session.block_size), session.info, EventLog(),
                           seed=config.seed)
    try:
        scheduler = scheduler_cls(options, ctx)
    except ValueError as exc:
        raise BsbenchError(f"scheduler {config.scheduler}: {exc}") from None
    sampler = GpuSampler(session.device)
    with _progress_bar(len(workload.requests), enabled=progress) as on_progress:
        engine = Engine(scheduler, session.runner, events=ctx.events, blocks=ctx.block_manager,
                        on_progress=on_progress)
        sampler.start()
        result = engine.run(workload.requests)
        gpu = sampler.stop()
    record = _make_record(workload, config, session, scheduler, result, gpu)
    record["path"] = str(save_record(record, config.out_dir))
    if not result.complete:
        raise InterruptedRun(record)
    return record


class InterruptedRun(KeyboardInterrupt):
    """Ctrl-C during a run; carries the (saved, incomplete) record."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.record = record


def _make_record(workload: Workload, config: RunConfig, session: ModelSession, scheduler: Any,
                 result: EngineResult, gpu: dict[str, Any]) -> dict[str, Any]:
    rate = workload.spec.get("rate", math.inf)
    run_config = {
        "scheduler": config.scheduler,
        "scheduler_options": dataclasses.asdict(scheduler.options),
        "rate": rate,
        "arrival": workload.spec.get("arrival"),
        "seed": workload.spec.get("seed"),
        "num_requests": len(workload.requests),
        "workload": workload.name,
        "model": session.info.name,
        "weights": config.weights,
        "weights_seed": config.weights_seed,
        "device": session.device,
        "dtype": session.dtype,
        "kv_memory_bytes": session.kv_budget_bytes,
        "block_size": session.block_size,
        "threads": _torch_threads(),
        "num_kv_blocks": session.num_blocks,
        "kv_capacity_tokens": session.num_blocks * session.block_size,
        "tokenizer": workload.tokenizer,
        "record_tokens": config.record_tokens,
        "percentiles": list(config.percentiles),
    }
    environment = capture_environment(session.device)
    if gpu:
        environment["gpu_sampled"] = gpu
    scheduler_summary = {
        "name": config.scheduler,
        "decision_s": result.scheduler_decision_s,
        "decision_share": result.scheduler_decision_s / result.duration_s if result.duration_s > 0 else None,
        **scheduler.summary(),
    }
    return build_record(
        config=run_config,
        environment=environment,
        workload={
            "name": workload.name,
            "fingerprint": workload.fingerprint(),
            "num_requests": len(workload.requests),
            "tokenizer": workload.tokenizer,
            "spec": workload.spec,
            "load_report": workload.load_report,
        },
        requests=[request_row(s, config.record_tokens) for s in result.states],
        steps=[dataclasses.asdict(s) for s in result.steps],
        events=[e.to_dict() for e in result.events.events],
        scheduler=scheduler_summary,
        duration_s=result.duration_s,
        complete=result.complete,
        percentiles=config.percentiles,
    )


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


class _progress_bar:
    """A rich progress bar (ended/total, tokens/s) as a context manager yielding the engine callback."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._progress = None

    def __enter__(self) -> ProgressFn | None:
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tps]}"),
            TimeElapsedColumn(), transient=True,
        )
        self._progress.start()
        task = self._progress.add_task("run", total=self.total, tps="")
        clock = {"t0": None}

        def update(ended: int, total: int, tokens: int) -> None:
            now = time.perf_counter()
            if clock["t0"] is None:
                clock["t0"] = now
            elapsed = max(now - clock["t0"], 1e-9)
            self._progress.update(task, completed=ended, tps=f"{tokens / elapsed:,.0f} tok/s")

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
