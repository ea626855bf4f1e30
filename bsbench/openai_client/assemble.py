"""The run record of an openai-backend run: a request row per submitted request, the config, the environment.

There are no step rows (the server's steps are not visible to the client): every step figure (KV usage,
batch size, padding) is None, and reports show it as such.
"""

from __future__ import annotations

import math
from typing import Any

from bsbench import metrics
from bsbench.environment import capture_environment
from bsbench.openai_client.dispatch import Dispatch
from bsbench.openai_client.exchange import Exchange
from bsbench.openai_client.options import LATE_THRESHOLD_S, ClientOptions
from bsbench.record import EndKind, EndReason, Outcome, RecordConfig, RequestRow, RunRecord, WorkloadInfo
from bsbench.record.backend_part import OpenAIPart
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload

REMOTE_DEVICE = "remote"
REMOTE_DEVICE_NAME = "remote server (device not known to the client)"


def request_row(spec: RequestSpec, exchange: Exchange, start: float) -> RequestRow:
    """The row of one submitted request; times are seconds from `start` (the run's t = 0, perf_counter)."""
    sent_s = exchange.sent_at - start if exchange.sent_at else None
    num_output = exchange.output_tokens
    reason = exchange.failure
    if reason is None and not exchange.ended:
        reason = EndReason(EndKind.INTERRUPTED, "the run was stopped before the request ended")
    short = reason is None and num_output < spec.output_len
    if short:
        reason = EndReason(EndKind.SHORT_OUTPUT, f"{num_output} of {spec.output_len} tokens "
                                                 f"(finish_reason {exchange.finish_reason})")
    token_times = [t - start for t in exchange.token_times]
    notes: dict[str, Any] = {"counted_tokens": exchange.counted_tokens, "counted_by": exchange.counted_by}
    if exchange.usage_rejected is not None:
        notes["usage_rejected"] = exchange.usage_rejected
    if exchange.finish_reason is not None:
        notes["finish_reason"] = exchange.finish_reason
    return RequestRow(
        id=spec.id, source=spec.source, priority=spec.priority, prompt_len=spec.prompt_len,
        output_len=spec.output_len, num_output=num_output, arrival_s=spec.arrival_s,
        first_token_s=token_times[0] if token_times else None,
        finish_s=exchange.finished_at - start if exchange.finished_at is not None else None,
        token_times=token_times, status=Outcome.COMPLETED if reason is None else Outcome.FAILED, reason=reason,
        truncated=short, slo_ttft_ms=spec.slo.ttft_ms, slo_tpot_ms=spec.slo.tpot_ms, slo_e2e_ms=spec.slo.e2e_ms,
        notes=notes, output_ids=list(exchange.token_ids) if exchange.token_ids else None,
        sent_s=sent_s, late=sent_s is not None and sent_s - spec.arrival_s > LATE_THRESHOLD_S,
        token_count_source="usage" if exchange.usage_tokens is not None and exchange.usage_rejected is None
        else exchange.counted_by,
        server_prompt_tokens=exchange.server_prompt_tokens, server_output_tokens=exchange.usage_tokens,
    )


def build_record(workload: Workload, state: Dispatch, options: ClientOptions, served_model: str, *,
                 record_tokens: bool, percentiles: tuple[float, ...], repeat: int, base_seed: int | None,
                 complete: bool, warmed_up: int, strict_fallback: str | None = None) -> RunRecord:
    """The record of the requests `state` submitted (the first len(state.exchanges) of the workload).
    `strict_fallback`: the server's refusal of the vLLM-only fields, when the run went strict for it."""
    specs = workload.requests[: len(state.exchanges)]
    rows = [request_row(spec, ex, state.start) for spec, ex in zip(specs, state.exchanges, strict=True)]
    if not record_tokens:
        for row in rows:
            row.output_ids = None
    end = state.end if state.end is not None else state.start
    described = {**options.describe(), "served_model": served_model}
    config = RecordConfig(
        scheduler="openai", scheduler_options=described, rate=float(workload.spec.get("rate", math.inf)),
        arrival=workload.spec.get("arrival"), seed=workload.spec.get("seed"), num_requests=len(rows),
        workload=workload.name, model=served_model, device=REMOTE_DEVICE, tokenizer=workload.tokenizer,
        record_tokens=record_tokens, percentiles=list(percentiles), repeat=repeat, base_seed=base_seed,
        backend=OpenAIPart(options.shown_url, served_model, options.endpoint))
    environment = capture_environment("cpu")
    environment.update(device=REMOTE_DEVICE, device_name=REMOTE_DEVICE_NAME, client_host=environment.get("hostname"))
    record = metrics.build_record(
        config=config, environment=environment,
        workload=WorkloadInfo(workload.name, workload.fingerprint(), len(workload.requests), workload.tokenizer,
                              dict(workload.spec), dict(workload.load_report)),
        requests=rows, steps=[], events=[],
        scheduler={"name": "openai", **described, "warmup_requests": warmed_up, "unsent_requests": state.unsent,
                   "peak_in_flight": state.peak_in_flight, "late_threshold_ms": LATE_THRESHOLD_S * 1000,
                   "test_request": options.test_request,
                   **({"strict_fallback": strict_fallback} if strict_fallback is not None else {})},
        duration_s=max(0.0, end - state.start), complete=complete, percentiles=percentiles)
    record.summary["unsent_requests"] = state.unsent
    return record
