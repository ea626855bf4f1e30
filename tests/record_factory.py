"""Hand-made run records (typed rows, built by metrics.build_record) for tests of metrics, reports, gates, sweeps."""

from __future__ import annotations

from typing import Any

from bsbench.metrics import build_record
from bsbench.record import EndKind, EndReason, EventRow, RecordConfig, RequestRow, RunRecord, StepRow, WorkloadInfo


def req(
    id: str,
    arrival: float = 0.0,
    token_times: list[float] | None = None,
    *,
    scheduled: float | None = None,
    finish: float | None = None,
    status: str = "completed",
    reason: EndKind | str | None = None,
    prompt_len: int = 10,
    output_len: int | None = None,
    slo_ttft_ms: float | None = None,
    slo_tpot_ms: float | None = None,
    slo_e2e_ms: float | None = None,
    preemptions: int = 0,
    pad_tokens: int = 0,
    truncated: bool = False,
    priority: str = "online",
) -> RequestRow:
    """A request row; `token_times` are absolute run times; finish defaults to the last token.

    `reason` is an end-reason kind (default: interrupted for failed, kv-rejected for rejected)."""
    token_times = list(token_times or [])
    if status == "completed" and not token_times:
        raise ValueError("a completed request needs token times")
    if scheduled is None and token_times:
        scheduled = arrival
    if finish is None:
        finish = token_times[-1] if token_times else (arrival if status != "completed" else None)
    if status != "completed" and reason is None:
        reason = EndKind.INTERRUPTED if status == "failed" else EndKind.KV_REJECTED
    return RequestRow.from_json({
        "id": id, "source": "test", "priority": priority,
        "prompt_len": prompt_len, "output_len": output_len if output_len is not None else max(len(token_times), 1),
        "num_output": len(token_times), "arrival_s": arrival, "first_scheduled_s": scheduled,
        "first_token_s": token_times[0] if token_times else None, "finish_s": finish,
        "token_times": token_times, "status": status,
        "reason": None if reason is None else EndReason(EndKind(reason), "test").to_json(),
        "preemptions": preemptions, "pad_tokens": pad_tokens, "truncated": truncated,
        "slo_ttft_ms": slo_ttft_ms, "slo_tpot_ms": slo_tpot_ms, "slo_e2e_ms": slo_e2e_ms, "notes": {},
    })


def step(start: float, duration: float = 0.01, *, num_seqs: int = 1, num_tokens: int = 1, pad_tokens: int = 0,
         kv_usage: float = 0.0, kv_blocks_used: int = 0, forward: float | None = None,
         layout: str = "packed") -> StepRow:
    return StepRow.from_json({
        "start_s": start, "duration_s": duration, "forward_s": duration * 0.9 if forward is None else forward,
        "layout": layout, "num_seqs": num_seqs, "num_tokens": num_tokens, "pad_tokens": pad_tokens,
        "kv_blocks_used": kv_blocks_used, "kv_usage": kv_usage,
    })


def simple_requests(n: int = 4, *, speed: float = 1.0, tokens: int = 4, gap: float = 0.1,
                    slo_ttft_ms: float | None = 500.0) -> list[RequestRow]:
    """n requests arriving `gap` apart; each waits 0.1*speed s, then emits tokens 0.05*speed s apart."""
    rows = []
    for i in range(n):
        arrival = i * gap
        first = arrival + 0.1 * speed * (i + 1)
        times = [first + k * 0.05 * speed for k in range(tokens)]
        rows.append(req(f"r{i}", arrival, times, slo_ttft_ms=slo_ttft_ms, prompt_len=10 + i))
    return rows


def simple_steps(n: int = 10, *, kv: float = 0.5, batch: int = 2, pad: int = 0) -> list[StepRow]:
    return [step(i * 0.05, 0.04, num_seqs=batch, num_tokens=batch * 4, pad_tokens=pad,
                 kv_usage=min(1.0, kv * (1 + i / n)), kv_blocks_used=i) for i in range(n)]


def make_record(
    scheduler: str = "continuous",
    rate: float = 4.0,
    *,
    requests: list[RequestRow] | None = None,
    steps: list[StepRow] | None = None,
    events: list[EventRow] | None = None,
    speed: float = 1.0,
    duration_s: float | None = None,
    fingerprint: str = "fp-abc",
    workload_name: str = "test-workload",
    model: str = "tiny",
    device: str = "cpu",
    device_name: str = "Test CPU",
    seed: int = 0,
    complete: bool = True,
    pad: int = 0,
    **config_extra: Any,
) -> RunRecord:
    """A full, valid run record built through metrics.build_record."""
    requests = requests if requests is not None else simple_requests(speed=speed)
    steps = steps if steps is not None else simple_steps(pad=pad)
    if duration_s is None:
        ends = [r.finish_s for r in requests if r.finish_s is not None]
        duration_s = max(ends) if ends else 1.0
    config = RecordConfig.from_json({
        "scheduler": scheduler, "rate": rate, "seed": seed, "num_requests": len(requests),
        "workload": workload_name, "model": model, "device": device, "num_kv_blocks": 100,
        "scheduler_options": {}, **config_extra})
    return build_record(
        config=config,
        environment={"device": device, "device_name": device_name, "python": "3.11"},
        workload=WorkloadInfo(workload_name, fingerprint, len(requests), "test"),
        requests=requests, steps=steps, events=events or [],
        scheduler={"name": scheduler}, duration_s=duration_s, complete=complete,
    )
