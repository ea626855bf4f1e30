"""The typed rows of a run record: one per request, one per step, one per event.

Each row converts to and from plain JSON (`to_json` / `from_json`); `from_json`
checks every field's type and raises ValueError naming the field, so a
malformed file is one clear error, never a crash deep inside a report.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from bsbench.record.reasons import EndReason


class Outcome(str, enum.Enum):
    """A request's final status; completed + failed + rejected == submitted."""

    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"


class EventKind(str, enum.Enum):
    """Event kinds with one meaning across policies (a policy may log its own kinds as plain strings)."""

    OOM = "oom"                # memory ran out: the listed requests failed or were retried
    PREEMPTION = "preemption"  # the listed requests lost their KV and will be recomputed
    REJECTION = "rejection"    # the listed requests were refused before running
    TRUNCATION = "truncation"  # the listed requests were cut short of their output length


_NUMBER = (int, float)


def _get(obj: dict[str, Any], name: str, kinds: tuple[type, ...], *, optional: bool = False,
         default: Any = None) -> Any:
    """obj[name] checked against `kinds` (bool is never a number); ValueError names the field."""
    if name not in obj or obj[name] is None:
        if optional:
            return default
        raise ValueError(f"missing field {name!r}")
    value = obj[name]
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError(f"field {name!r} must be {'/'.join(k.__name__ for k in kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise ValueError(f"field {name!r} must be {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"field {name!r} must be a finite number, got {value}")
    return value


def _number_list(obj: dict[str, Any], name: str) -> list[float]:
    values = _get(obj, name, (list,), optional=True, default=[])
    if not all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in values):
        raise ValueError(f"field {name!r} must be a list of numbers")
    return [float(v) for v in values]


@dataclass(slots=True)
class LatencyBreakdown:
    """Where a request's time went, in seconds; the parts partition arrival -> finish (see engine/phases.py).

    queue_s: arrival until first scheduled (or until it ended, if never scheduled); prefill_s: first scheduled
    until the first token, chunked-prefill gaps included; decode_s: first token until finish; preempted_s: from
    each preemption until the request has recomputed the KV it lost. Queueing and prefill lie wholly before the
    first token and decode wholly after, so TTFT = queue + prefill + the preempted time before the first token.
    """

    queue_s: float = 0.0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    preempted_s: float = 0.0
    transfer_s: float | None = None  # disaggregated runs only (schema 4): first token -> KV on the decode instance

    @property
    def total_s(self) -> float:
        """Arrival to finish: E2E for a completed request (up to float rounding)."""
        return self.queue_s + self.prefill_s + self.decode_s + self.preempted_s + (self.transfer_s or 0.0)

    def to_json(self) -> dict[str, float]:
        out = {"queue_s": self.queue_s, "prefill_s": self.prefill_s, "decode_s": self.decode_s,
               "preempted_s": self.preempted_s}
        if self.transfer_s is not None:
            out["transfer_s"] = self.transfer_s
        return out

    @classmethod
    def from_json(cls, obj: Any) -> LatencyBreakdown:
        if not isinstance(obj, dict):
            raise ValueError("field 'breakdown' must be an object")
        parts = {}
        for name in ("queue_s", "prefill_s", "decode_s", "preempted_s"):
            try:
                value = float(_get(obj, name, _NUMBER))
            except ValueError as exc:
                raise ValueError(f"breakdown: {exc}") from None
            if value < 0:
                raise ValueError(f"breakdown: field {name!r} must not be negative, got {value}")
            parts[name] = value
        transfer = _optional_float(obj, "transfer_s")
        if transfer is not None and transfer < 0:
            raise ValueError(f"breakdown: field 'transfer_s' must not be negative, got {transfer}")
        return cls(**parts, transfer_s=transfer)


@dataclass(slots=True)
class RequestRow:
    """One submitted request, start to end. Times are seconds from the run start.

    `reason` is set exactly when `status` is not completed. `token_times[i]` is
    when output token i was produced; `first_token_s` is `token_times[0]`.
    `breakdown` says where its time went (None in records older than schema version 3).
    `transfer_start_s` / `transfer_end_s`: when its prompt KV began and finished moving from the prefill to the
    decode instance (disaggregated runs only, schema 4; None elsewhere and for requests that never moved).
    Rows of the openai backend (schema version 4) also say when the client really sent the request (`sent_s`),
    whether that was late against `arrival_s` (`late`, openai_client.LATE_THRESHOLD_S) and where `num_output`
    came from (`token_count_source`: "usage" as the server reported it, "counted" by the client); None elsewhere.
    They also keep the server's own counts from its `usage` (`server_prompt_tokens`, `server_output_tokens`)
    beside the workload's (`prompt_len`, `output_len`): None when it sent none, and absent from the JSON then,
    so that older records read as before.
    """

    id: str
    prompt_len: int
    output_len: int
    arrival_s: float
    status: Outcome
    reason: EndReason | None = None
    source: str = ""
    priority: str = ""
    num_output: int = 0
    first_scheduled_s: float | None = None
    first_token_s: float | None = None
    finish_s: float | None = None
    token_times: list[float] = field(default_factory=list)
    preemptions: int = 0
    pad_tokens: int = 0
    truncated: bool = False
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    slo_e2e_ms: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    output_ids: list[int] | None = None
    breakdown: LatencyBreakdown | None = None
    transfer_start_s: float | None = None
    transfer_end_s: float | None = None
    sent_s: float | None = None
    late: bool = False
    token_count_source: str | None = None
    server_prompt_tokens: int | None = None
    server_output_tokens: int | None = None

    def __post_init__(self) -> None:
        if (self.status is Outcome.COMPLETED) != (self.reason is None):
            raise ValueError(f"request {self.id}: a reason is required exactly when it did not complete")

    def to_json(self) -> dict[str, Any]:
        row = {
            "id": self.id, "source": self.source, "priority": self.priority,
            "prompt_len": self.prompt_len, "output_len": self.output_len, "num_output": self.num_output,
            "arrival_s": self.arrival_s, "first_scheduled_s": self.first_scheduled_s,
            "first_token_s": self.first_token_s, "finish_s": self.finish_s, "token_times": self.token_times,
            "status": self.status.value, "reason": self.reason.to_json() if self.reason else None,
            "preemptions": self.preemptions, "pad_tokens": self.pad_tokens, "truncated": self.truncated,
            "slo_ttft_ms": self.slo_ttft_ms, "slo_tpot_ms": self.slo_tpot_ms, "slo_e2e_ms": self.slo_e2e_ms,
            "notes": self.notes, "breakdown": self.breakdown.to_json() if self.breakdown else None,
        }
        if self.output_ids is not None:
            row["output_ids"] = self.output_ids
        if self.transfer_start_s is not None:
            row["transfer_start_s"] = self.transfer_start_s
            row["transfer_end_s"] = self.transfer_end_s
        if self.sent_s is not None:  # the openai backend's fields; absent from engine rows (their files unchanged)
            row.update(sent_s=self.sent_s, late=self.late, token_count_source=self.token_count_source)
        if self.server_prompt_tokens is not None:
            row["server_prompt_tokens"] = self.server_prompt_tokens
        if self.server_output_tokens is not None:
            row["server_output_tokens"] = self.server_output_tokens
        return row

    @classmethod
    def from_json(cls, obj: Any) -> RequestRow:
        if not isinstance(obj, dict):
            raise ValueError("a request row must be an object")
        try:
            status = Outcome(obj.get("status"))
        except ValueError:
            raise ValueError(f"request {obj.get('id')!r:.40}: status must be completed, failed or rejected") from None
        output_ids = obj.get("output_ids")
        if output_ids is not None and not (isinstance(output_ids, list) and all(type(t) is int for t in output_ids)):
            raise ValueError("field 'output_ids' must be a list of integers")
        reason = obj.get("reason")
        breakdown = obj.get("breakdown")
        return cls(
            id=_get(obj, "id", (str,)),
            source=_get(obj, "source", (str,), optional=True, default=""),
            priority=_get(obj, "priority", (str,), optional=True, default=""),
            prompt_len=_get(obj, "prompt_len", (int,)),
            output_len=_get(obj, "output_len", (int,)),
            num_output=_get(obj, "num_output", (int,), optional=True, default=0),
            arrival_s=float(_get(obj, "arrival_s", _NUMBER)),
            first_scheduled_s=_optional_float(obj, "first_scheduled_s"),
            first_token_s=_optional_float(obj, "first_token_s"),
            finish_s=_optional_float(obj, "finish_s"),
            token_times=_number_list(obj, "token_times"),
            status=status,
            reason=None if reason is None else EndReason.from_json(reason),
            preemptions=_get(obj, "preemptions", (int,), optional=True, default=0),
            pad_tokens=_get(obj, "pad_tokens", (int,), optional=True, default=0),
            truncated=_get(obj, "truncated", (bool,), optional=True, default=False),
            slo_ttft_ms=_optional_float(obj, "slo_ttft_ms"),
            slo_tpot_ms=_optional_float(obj, "slo_tpot_ms"),
            slo_e2e_ms=_optional_float(obj, "slo_e2e_ms"),
            notes=_get(obj, "notes", (dict,), optional=True, default={}),
            output_ids=output_ids,
            breakdown=None if breakdown is None else LatencyBreakdown.from_json(breakdown),
            transfer_start_s=_optional_float(obj, "transfer_start_s"),
            transfer_end_s=_optional_float(obj, "transfer_end_s"),
            sent_s=_optional_float(obj, "sent_s"),
            late=_get(obj, "late", (bool,), optional=True, default=False),
            token_count_source=_get(obj, "token_count_source", (str,), optional=True),
            server_prompt_tokens=_get(obj, "server_prompt_tokens", (int,), optional=True),
            server_output_tokens=_get(obj, "server_output_tokens", (int,), optional=True),
        )


def _optional_float(obj: dict[str, Any], name: str) -> float | None:
    value = _get(obj, name, _NUMBER, optional=True)
    return None if value is None else float(value)


@dataclass(slots=True)
class StepRow:
    """One forward pass: when it started, how long it took, what it computed, KV in use before it.

    `forward_s` is what the clock was charged (measured on a wall clock, predicted on a
    virtual one). The real runner on a virtual clock also records what it measured:
    `measured_forward_s` (the forward alone) and `measured_step_s` (the whole runner call,
    what a calibration measures); None elsewhere. `instance` names the instance that ran the step in a
    disaggregated run ("prefill0", "decode0"; schema 4); None in a single-instance run.
    """

    start_s: float
    duration_s: float
    forward_s: float
    layout: str
    num_seqs: int
    num_tokens: int
    pad_tokens: int
    kv_blocks_used: int
    kv_usage: float
    measured_forward_s: float | None = None
    measured_step_s: float | None = None
    instance: str | None = None

    def to_json(self) -> dict[str, Any]:
        row = {"start_s": self.start_s, "duration_s": self.duration_s, "forward_s": self.forward_s,
               "layout": self.layout, "num_seqs": self.num_seqs, "num_tokens": self.num_tokens,
               "pad_tokens": self.pad_tokens, "kv_blocks_used": self.kv_blocks_used, "kv_usage": self.kv_usage,
               "measured_forward_s": self.measured_forward_s, "measured_step_s": self.measured_step_s}
        if self.instance is not None:
            row["instance"] = self.instance
        return row

    @classmethod
    def from_json(cls, obj: Any) -> StepRow:
        if not isinstance(obj, dict):
            raise ValueError("a step row must be an object")
        return cls(
            start_s=float(_get(obj, "start_s", _NUMBER)),
            duration_s=float(_get(obj, "duration_s", _NUMBER)),
            forward_s=float(_get(obj, "forward_s", _NUMBER)),
            layout=_get(obj, "layout", (str,)),
            num_seqs=_get(obj, "num_seqs", (int,)),
            num_tokens=_get(obj, "num_tokens", (int,)),
            pad_tokens=_get(obj, "pad_tokens", (int,)),
            kv_blocks_used=_get(obj, "kv_blocks_used", (int,)),
            kv_usage=float(_get(obj, "kv_usage", _NUMBER)),
            measured_forward_s=_optional_float(obj, "measured_forward_s"),
            measured_step_s=_optional_float(obj, "measured_step_s"),
            instance=_get(obj, "instance", (str,), optional=True),
        )


@dataclass(slots=True)
class EventRow:
    """Something that happened to some requests at `t_s`: an OOM, a preemption, a policy decision."""

    kind: str
    t_s: float
    request_ids: list[str]
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "t_s": self.t_s, "request_ids": self.request_ids, "detail": self.detail}

    @classmethod
    def from_json(cls, obj: Any) -> EventRow:
        if not isinstance(obj, dict):
            raise ValueError("an event row must be an object")
        ids = _get(obj, "request_ids", (list,), optional=True, default=[])
        if not all(isinstance(i, str) for i in ids):
            raise ValueError("field 'request_ids' must be a list of strings")
        return cls(
            kind=_get(obj, "kind", (str,)),
            t_s=float(_get(obj, "t_s", _NUMBER)),
            request_ids=list(ids),
            detail=_get(obj, "detail", (dict,), optional=True, default={}),
        )
