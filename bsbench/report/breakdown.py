"""Where the time went: the latency breakdown of runs as plain data, a table of it, and a one-line explanation
of a difference against a reference run.

Each request row carries its time split into queueing, prefill, decode and preemption (with recompute)
(`RequestRow.breakdown`, engine/phases.py); the parts add up to E2E, and TTFT = queueing + prefill +
the preemption time before the first token (so that last part is TTFT - queueing - prefill). A disaggregated run
(bsbench/backends/cluster) has a fifth part, `transfer` (first token on the prefill instance -> prompt KV on a decode
instance, waits included), part of E2E and not of TTFT; tables show it only when a run has it. Figures are over
completed requests, like the latency distributions (metrics.py). Records of schema version 2 have no breakdown:
their figures are None and the tables say "n/a".

A tail latency is cut into parts with the interpolation that gives the percentile itself (numpy's linear
method): the percentile falls between two requests (ordered by the latency, then by id), and each part is
interpolated between the same two, so the parts sum to the percentile. The part that grew most in a
difference explains it: "bucket vs continuous: p99 TTFT +1.20 s (1.35 s vs 150.0 ms), of which queueing +1.10 s".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from bsbench.metrics import distribution, e2el_s, percentile_key, ttft_s
from bsbench.record import LatencyBreakdown, Outcome, RequestRow, RunRecord
from bsbench.safe_text import markup
from bsbench.units import format_duration

PARTS: tuple[str, ...] = ("queue", "prefill", "decode", "preempted")
TRANSFER = "transfer"  # the part only disaggregated runs have
PART_LABELS = {"queue": "queueing", "prefill": "prefill", "decode": "decode",
               "preempted": "preemption + recompute", TRANSFER: "KV transfer"}
TTFT_PARTS: tuple[str, ...] = ("queue", "prefill", "preempted")  # nothing decodes before the first token
METRIC_LABELS = {"ttft": "TTFT", "e2e": "E2E"}
NOT_AVAILABLE = "n/a"


def ttft_parts(row: RequestRow, parts: LatencyBreakdown) -> dict[str, float]:
    """The TTFT of a completed row cut into queueing, prefill and the preemption before its first token."""
    ttft = ttft_s(row) or 0.0
    return {"queue": parts.queue_s, "prefill": parts.prefill_s,
            "preempted": max(0.0, ttft - parts.queue_s - parts.prefill_s)}  # max: float rounding only


def e2e_parts(row: RequestRow, parts: LatencyBreakdown) -> dict[str, float]:
    out = {"queue": parts.queue_s, "prefill": parts.prefill_s, "decode": parts.decode_s,
           "preempted": parts.preempted_s}
    if parts.transfer_s is not None:
        out[TRANSFER] = parts.transfer_s
    return out


def parts_of(items: Sequence[RunBreakdown]) -> tuple[str, ...]:
    """The parts a table of `items` shows: PARTS, and the transfer when any run has one."""
    return PARTS + ((TRANSFER,) if any(TRANSFER in item.mean_s for item in items) else ())


@dataclass(slots=True)
class TailSplit:
    """A latency percentile (seconds) and the parts it is made of (they sum to it)."""

    metric: str  # "ttft" | "e2e"
    percentile: float
    value_s: float
    parts_s: dict[str, float]

    @property
    def dominant(self) -> str:
        """The largest part (the first listed on a tie)."""
        names = list(self.parts_s)
        return max(names, key=lambda name: (self.parts_s[name], -names.index(name)))

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "percentile": self.percentile, "value_ms": self.value_s * 1000,
                "parts_ms": {k: v * 1000 for k, v in self.parts_s.items()}, "dominant": self.dominant}


def tail_split(metric: str, items: Sequence[tuple[str, float, dict[str, float]]], percentile: float) -> TailSplit:
    """`items` are (request id, latency, its parts); the percentile of the latencies, cut into parts."""
    if not items:
        raise ValueError("tail_split needs at least one request")
    ordered = sorted(items, key=lambda item: (item[1], item[0]))
    position = (len(ordered) - 1) * percentile / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    weight = position - low
    _, low_value, low_parts = ordered[low]
    _, high_value, high_parts = ordered[high]
    parts = {name: (1 - weight) * low_parts[name] + weight * high_parts[name] for name in low_parts}
    return TailSplit(metric, percentile, (1 - weight) * low_value + weight * high_value, parts)


@dataclass(slots=True)
class RunBreakdown:
    """One run's breakdown: mean and percentile of each part, and its tail TTFT and E2E cut into parts.

    `missing` says why there are no figures ("record schema 2 has no breakdown", "no completed request")."""

    label: str
    percentile: float
    completed: int = 0
    mean_s: dict[str, float | None] = field(default_factory=dict)
    tail_s: dict[str, float | None] = field(default_factory=dict)  # the percentile of each part on its own
    ttft: TailSplit | None = None
    e2e: TailSplit | None = None
    missing: str | None = None

    def to_json(self) -> dict[str, Any]:
        def ms(values: dict[str, float | None]) -> dict[str, float | None]:
            return {k: None if v is None else v * 1000 for k, v in values.items()}

        return {"label": self.label, "percentile": self.percentile, "completed": self.completed,
                "missing": self.missing, "mean_ms": ms(self.mean_s), f"{percentile_key(self.percentile)}_ms":
                ms(self.tail_s), "ttft": self.ttft.to_json() if self.ttft else None,
                "e2e": self.e2e.to_json() if self.e2e else None}


def run_breakdown(label: str, record: RunRecord, percentile: float = 99.0) -> RunBreakdown:
    """The breakdown of one record's completed requests."""
    out = RunBreakdown(label, percentile)
    completed = [r for r in record.requests if r.status is Outcome.COMPLETED]
    rows = [(r, r.breakdown) for r in completed if r.breakdown is not None]
    if not rows:
        if completed and record.schema_version < 3:
            out.missing = f"record schema {record.schema_version} has no breakdown"
        else:
            out.missing = "no completed request" if not completed else "no request has a breakdown"
        return out
    out.completed = len(rows)
    key = percentile_key(percentile)
    names = PARTS + ((TRANSFER,) if any(parts.transfer_s is not None for _, parts in rows) else ())
    for name in names:
        stats = distribution([getattr(parts, f"{name}_s") or 0.0 for _, parts in rows], [percentile])
        out.mean_s[name], out.tail_s[name] = stats["mean"], stats[key]
    out.ttft = tail_split("ttft", [(r.id, ttft_s(r) or 0.0, ttft_parts(r, p)) for r, p in rows], percentile)
    out.e2e = tail_split("e2e", [(r.id, e2el_s(r) or 0.0, e2e_parts(r, p)) for r, p in rows], percentile)
    return out


def explain(run: RunBreakdown, ref: RunBreakdown, metric: str = "ttft") -> str | None:
    """'<run> vs <ref>: p99 TTFT +1.20 s (1.35 s vs 150.0 ms), of which queueing +1.10 s': the difference of the
    tail latency and the part whose change explains most of it (the part that moved furthest in the direction
    of the difference; when it moved further than the whole, the part that moved most the other way is named
    too: ', offset by queueing -360.0 ms'). None when either run has no breakdown."""
    mine, theirs = getattr(run, metric), getattr(ref, metric)
    if mine is None or theirs is None:
        return None
    what = f"{percentile_key(mine.percentile)} {METRIC_LABELS[metric]}"
    delta = mine.value_s - theirs.value_s
    head = f"{run.label} vs {ref.label}: {what}"
    if delta == 0:
        return f"{head} equal ({format_duration(mine.value_s)})"
    names = list(mine.parts_s) + [n for n in theirs.parts_s if n not in mine.parts_s]  # a transfer on one side only
    moved = {name: mine.parts_s.get(name, 0.0) - theirs.parts_s.get(name, 0.0) for name in names}
    pick: Callable[[str], float] = (lambda n: moved[n]) if delta > 0 else (lambda n: -moved[n])
    part = max(moved, key=pick)
    line = (f"{head} {format_duration(delta, signed=True)} ({format_duration(mine.value_s)} vs "
            f"{format_duration(theirs.value_s)}), of which {PART_LABELS[part]} "
            f"{format_duration(moved[part], signed=True)}")
    if abs(moved[part]) > abs(delta):  # another part moved the other way: name the largest such
        other = min(moved, key=pick)
        line += f", offset by {PART_LABELS[other]} {format_duration(moved[other], signed=True)}"
    return line


def explanations(items: Sequence[RunBreakdown], reference: str | None) -> list[str]:
    """One line per run and metric (TTFT, E2E) against the run labelled `reference`; none without one."""
    ref = next((b for b in items if b.label == reference), None)
    if ref is None:
        return []
    lines = []
    for item in items:
        if item is ref:
            continue
        for metric in ("ttft", "e2e"):
            line = explain(item, ref, metric)
            if line is not None:
                lines.append(line)
    return lines


@dataclass(slots=True)
class GroupBreakdown:
    """The breakdown of a group of comparable runs: one per run, the explanations against the reference run,
    and a note for each run without figures."""

    runs: list[RunBreakdown]
    explanations: list[str]
    notes: list[str]

    @property
    def lines(self) -> list[str]:
        """What a report prints under the table."""
        return self.explanations + self.notes

    def to_json(self) -> dict[str, Any]:
        return {"percentile": self.runs[0].percentile if self.runs else None, "parts": list(parts_of(self.runs)),
                "part_labels": dict(PART_LABELS), "runs": [b.to_json() for b in self.runs],
                "explanations": self.explanations, "notes": self.notes}


def group_breakdown(runs: Sequence[tuple[str, RunRecord]], reference: str | None = None,
                    percentile: float = 99.0) -> GroupBreakdown:
    """The breakdown of (label, record) pairs, explained against the run labelled `reference` (None: no lines)."""
    items = [run_breakdown(label, record, percentile) for label, record in runs]
    return GroupBreakdown(items, explanations(items, reference),
                          [f"{b.label}: no latency breakdown ({b.missing})" for b in items if b.missing])


def breakdown_data(runs: Sequence[tuple[str, RunRecord]], reference: str | None = None,
                   percentile: float = 99.0) -> dict[str, Any]:
    """The breakdown table as plain JSON-safe data (for HTML and JSON reports): every run's figures in ms, the
    explanation lines against `reference` (a run label) and the notes."""
    return group_breakdown(runs, reference, percentile).to_json()


# ----------------------------------------------------------------------------- text


def table_rows(items: Sequence[RunBreakdown]) -> list[tuple[str, list[str]]]:
    """(row label, one cell per run) of the breakdown table: each part's mean / percentile in ms, then which part
    makes most of the tail TTFT and E2E."""
    if not items:
        return []
    key = percentile_key(items[0].percentile)
    rows = []
    for name in parts_of(items):
        cells = []
        for item in items:
            mean, tail = item.mean_s.get(name), item.tail_s.get(name)
            cells.append(NOT_AVAILABLE if mean is None or tail is None else f"{mean * 1000:,.1f} / {tail * 1000:,.1f}")
        rows.append((f"{PART_LABELS[name]} mean / {key} (ms)", cells))
    for metric in ("ttft", "e2e"):
        cells = []
        for item in items:
            split: TailSplit | None = getattr(item, metric)
            if split is None:
                cells.append(NOT_AVAILABLE)
                continue
            part = split.dominant
            share = split.parts_s[part] / split.value_s if split.value_s > 0 else 0.0
            cells.append(f"{PART_LABELS[part]} {100 * share:.0f}% of {format_duration(split.value_s)}")
        rows.append((f"{key} {METRIC_LABELS[metric]} mostly", cells))
    return rows


def rich_table(items: Sequence[RunBreakdown], title: str | None = None) -> Any:
    """The breakdown as a rich Table: parts as rows, runs as columns."""


    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("where the time went", style="cyan", no_wrap=True)
    for item in items:
        table.add_column(markup(item.label), justify="right")
    for label, cells in table_rows(items):
        table.add_row(label, *(markup(c) for c in cells))
    return table


def markdown(items: Sequence[RunBreakdown]) -> str:
    """The breakdown as a GitHub-flavoured markdown table."""
    lines = ["| where the time went | " + " | ".join(b.label for b in items) + " |",
             "|:---|" + "---:|" * len(items)]
    lines += ["| " + " | ".join([label, *cells]) + " |" for label, cells in table_rows(items)]
    return "\n".join(lines)
