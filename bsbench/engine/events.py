"""Events a run records besides tokens: OOMs, preemptions, rejections, truncations, policy decisions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Kinds with a fixed meaning across schedulers (policies may add their own).
OOM = "oom"                # memory ran out: the listed requests failed or were retried
PREEMPTION = "preemption"  # the listed requests lost their KV and will be recomputed
REJECTION = "rejection"    # the listed requests were refused before running
TRUNCATION = "truncation"  # the listed requests were cut short of their output length


@dataclass(slots=True)
class Event:
    kind: str
    t_s: float
    request_ids: list[str]
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventLog:
    """Append-only list of events; one per run, shared by scheduler and engine."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, kind: str, t_s: float, request_ids: list[str], **detail: Any) -> Event:
        event = Event(kind, t_s, list(request_ids), dict(detail))
        self.events.append(event)
        return event

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)
