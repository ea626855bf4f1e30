"""The event log of a run: OOMs, preemptions, rejections, truncations, policy decisions.

The row type and the shared kinds belong to the run record (`bsbench.record.rows`);
the names below are those kinds' string values, for emitters. A policy may log
kinds of its own as plain strings.
"""

from __future__ import annotations

from typing import Any

from bsbench.record.rows import EventKind, EventRow

OOM = EventKind.OOM.value
PREEMPTION = EventKind.PREEMPTION.value
REJECTION = EventKind.REJECTION.value
TRUNCATION = EventKind.TRUNCATION.value


class EventLog:
    """Append-only list of events; one per run, shared by the policy and the engine."""

    def __init__(self) -> None:
        self.events: list[EventRow] = []

    def emit(self, kind: str, t_s: float, request_ids: list[str], **detail: Any) -> EventRow:
        event = EventRow(str(kind), t_s, list(request_ids), dict(detail))
        self.events.append(event)
        return event

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)
