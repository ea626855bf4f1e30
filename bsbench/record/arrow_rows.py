"""The record's rows as Arrow tables, column by column, and back: the form the record keeps on disk (store.py).

One fixed schema per kind of row (REQUEST_SCHEMA, STEP_SCHEMA, EVENT_SCHEMA). A field that is None in a row
is null in its column; nested parts are flattened (the breakdown into `breakdown_*` columns, the end reason
into `reason_kind` / `reason_detail`); the free-form dicts (a request's notes, an event's detail) are JSON text.
`*_rows(table)` gives rows equal to the ones `*_table` was given, and checks what it reads as the JSON
reader does: a wrong column type or a bad value is a ValueError naming it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from bsbench.record.reasons import EndReason
from bsbench.record.rows import EventRow, LatencyBreakdown, Outcome, RequestRow, StepRow

F64, I64, STR, BOOL = pa.float64(), pa.int64(), pa.string(), pa.bool_()
BREAKDOWN_PARTS = ("queue_s", "prefill_s", "decode_s", "preempted_s", "transfer_s")

REQUEST_SCHEMA = pa.schema([
    ("id", STR), ("source", STR), ("priority", STR), ("status", STR), ("reason_kind", STR), ("reason_detail", STR),
    ("prompt_len", I64), ("output_len", I64), ("num_output", I64),
    ("arrival_s", F64), ("first_scheduled_s", F64), ("first_token_s", F64), ("finish_s", F64),
    ("token_times", pa.list_(F64)),
    ("preemptions", I64), ("pad_tokens", I64), ("truncated", BOOL),
    ("slo_ttft_ms", F64), ("slo_tpot_ms", F64), ("slo_e2e_ms", F64),
    ("notes", STR), ("output_ids", pa.list_(I64)),
    *[(f"breakdown_{part}", F64) for part in BREAKDOWN_PARTS],
    ("transfer_start_s", F64), ("transfer_end_s", F64),
    ("sent_s", F64), ("late", BOOL), ("token_count_source", STR),
    ("server_prompt_tokens", I64), ("server_output_tokens", I64),
])

STEP_SCHEMA = pa.schema([
    ("start_s", F64), ("duration_s", F64), ("forward_s", F64), ("layout", STR), ("num_seqs", I64),
    ("num_tokens", I64), ("pad_tokens", I64), ("kv_blocks_used", I64), ("kv_usage", F64),
    ("measured_forward_s", F64), ("measured_step_s", F64), ("instance", STR),
])

EVENT_SCHEMA = pa.schema([("kind", STR), ("t_s", F64), ("request_ids", pa.list_(STR)), ("detail", STR)])

SCHEMAS = {"requests": REQUEST_SCHEMA, "steps": STEP_SCHEMA, "events": EVENT_SCHEMA}


def _json_or_null(value: dict[str, Any]) -> str | None:
    return json.dumps(value, allow_nan=False, separators=(",", ":")) if value else None


def requests_table(rows: Sequence[RequestRow]) -> pa.Table:
    """The request rows as one Arrow table of REQUEST_SCHEMA."""
    def col(name: str) -> list[Any]:
        return [getattr(r, name) for r in rows]

    breakdowns = [r.breakdown for r in rows]
    columns: dict[str, list[Any]] = {
        "id": col("id"), "source": col("source"), "priority": col("priority"),
        "status": [r.status.value for r in rows],
        "reason_kind": [None if r.reason is None else r.reason.kind.value for r in rows],
        "reason_detail": [None if r.reason is None else r.reason.detail for r in rows],
        "notes": [_json_or_null(r.notes) for r in rows],
        **{f"breakdown_{part}": [None if b is None else getattr(b, part) for b in breakdowns]
           for part in BREAKDOWN_PARTS},
    }
    for name in REQUEST_SCHEMA.names:
        if name not in columns:
            columns[name] = col(name)
    return pa.table(columns, schema=REQUEST_SCHEMA)


def steps_table(rows: Sequence[StepRow]) -> pa.Table:
    """The step rows as one Arrow table of STEP_SCHEMA."""
    return pa.table({name: [getattr(r, name) for r in rows] for name in STEP_SCHEMA.names}, schema=STEP_SCHEMA)


def events_table(rows: Sequence[EventRow]) -> pa.Table:
    """The event rows as one Arrow table of EVENT_SCHEMA."""
    return pa.table({"kind": [e.kind for e in rows], "t_s": [e.t_s for e in rows],
                     "request_ids": [e.request_ids for e in rows], "detail": [_json_or_null(e.detail) for e in rows]},
                    schema=EVENT_SCHEMA)


def check_schema(table: pa.Table, kind: str) -> None:
    """ValueError unless `table` has every column of `kind`'s schema with its type (extra columns are allowed)."""
    schema = SCHEMAS[kind]
    for field in schema:
        index = table.schema.get_field_index(field.name)
        if index < 0:
            raise ValueError(f"{kind} rows: missing column {field.name!r}")
        got = table.schema.field(index).type
        if got != field.type and not (pa.types.is_large_string(got) and field.type == STR):
            raise ValueError(f"{kind} rows: column {field.name!r} is {got}, not {field.type}")


def _finite(values: list[Any], name: str) -> list[Any]:
    for v in values:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"field {name!r} must be a finite number, got {v}")
    return values


def _columns(table: pa.Table, kind: str) -> dict[str, list[Any]]:
    check_schema(table, kind)
    out = {}
    for field in SCHEMAS[kind]:
        values = table.column(field.name).to_pylist()
        if field.type == F64:
            _finite(values, field.name)
        out[field.name] = values
    return out


def _dict(text: str | None, name: str) -> dict[str, Any]:
    if text is None:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"field {name!r} must be a JSON object")
    return value


def _rows(kind: str, table: pa.Table, make: Callable[[dict[str, Any]], Any]) -> list[Any]:
    columns = _columns(table, kind)
    names = list(columns)
    out = []
    for index, values in enumerate(zip(*columns.values(), strict=True)):
        try:
            out.append(make(dict(zip(names, values, strict=True))))
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{kind[:-1]} row {index}: {exc}") from None
    return out


def _request(c: dict[str, Any]) -> RequestRow:
    try:
        status = Outcome(c["status"])
    except ValueError:
        raise ValueError(f"status must be completed, failed or rejected, got {c['status']!r:.40}") from None
    reason = None
    if c["reason_kind"] is not None:
        reason = EndReason.from_json({"kind": c["reason_kind"], "detail": c["reason_detail"] or ""})
    parts = [c[f"breakdown_{part}"] for part in BREAKDOWN_PARTS]
    breakdown = None
    if parts[0] is not None:
        breakdown = LatencyBreakdown.from_json({name: value for name, value in zip(BREAKDOWN_PARTS, parts,
                                                                                      strict=True)})
    for name in ("id", "prompt_len", "output_len", "arrival_s"):
        if c[name] is None:
            raise ValueError(f"missing field {name!r}")
    return RequestRow(
        id=c["id"], source=c["source"] or "", priority=c["priority"] or "", prompt_len=c["prompt_len"],
        output_len=c["output_len"], num_output=c["num_output"] or 0, arrival_s=c["arrival_s"],
        first_scheduled_s=c["first_scheduled_s"], first_token_s=c["first_token_s"], finish_s=c["finish_s"],
        token_times=c["token_times"] or [], status=status, reason=reason, preemptions=c["preemptions"] or 0,
        pad_tokens=c["pad_tokens"] or 0, truncated=bool(c["truncated"]), slo_ttft_ms=c["slo_ttft_ms"],
        slo_tpot_ms=c["slo_tpot_ms"], slo_e2e_ms=c["slo_e2e_ms"], notes=_dict(c["notes"], "notes"),
        output_ids=c["output_ids"], breakdown=breakdown, transfer_start_s=c["transfer_start_s"],
        transfer_end_s=c["transfer_end_s"], sent_s=c["sent_s"], late=bool(c["late"]),
        token_count_source=c["token_count_source"], server_prompt_tokens=c["server_prompt_tokens"],
        server_output_tokens=c["server_output_tokens"],
    )


def _step(c: dict[str, Any]) -> StepRow:
    for name in ("start_s", "duration_s", "forward_s", "layout", "num_seqs", "num_tokens", "pad_tokens",
                 "kv_blocks_used", "kv_usage"):
        if c[name] is None:
            raise ValueError(f"missing field {name!r}")
    return StepRow(**c)


def _event(c: dict[str, Any]) -> EventRow:
    if c["kind"] is None or c["t_s"] is None:
        raise ValueError("missing field 'kind' or 't_s'")
    return EventRow(kind=c["kind"], t_s=c["t_s"], request_ids=c["request_ids"] or [],
                    detail=_dict(c["detail"], "detail"))


def request_rows(table: pa.Table) -> list[RequestRow]:
    """RequestRows from a table of REQUEST_SCHEMA; ValueError names the row and field that is wrong."""
    return _rows("requests", table, _request)


def step_rows(table: pa.Table) -> list[StepRow]:
    """StepRows from a table of STEP_SCHEMA."""
    return _rows("steps", table, _step)


def event_rows(table: pa.Table) -> list[EventRow]:
    """EventRows from a table of EVENT_SCHEMA."""
    return _rows("events", table, _event)


TABLE_OF: dict[str, Callable[[Sequence[Any]], pa.Table]] = {
    "requests": requests_table, "steps": steps_table, "events": events_table}
ROWS_OF: dict[str, Callable[[pa.Table], list[Any]]] = {
    "requests": request_rows, "steps": step_rows, "events": event_rows}
