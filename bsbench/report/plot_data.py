"""What a group's comparison plots show, taken from its records once: small, picklable, ready to draw.

A page draws four figures per group from the same runs; reading the request
and step rows once per run here (instead of once per figure and panel) is
what lets the figures be drawn in worker processes (bsbench.report.plot_pool)
that receive these arrays and never a record. Timelines are already thinned
to TIMELINE_POINTS, with each event's height taken on the unthinned line.
Throughput bars need only the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bsbench import metrics
from bsbench.record import EventKind, Outcome, RunRecord
from bsbench.units import format_rate

CDF_POINTS = 400
TIMELINE_POINTS = 1200
Runs = Sequence[tuple[str, RunRecord]]

# (panel name, latency of a completed request in s or None, the request row's SLO field)
LATENCY_PANELS = (("TTFT", metrics.ttft_s, "slo_ttft_ms"), ("TPOT", metrics.tpot_s, "slo_tpot_ms"),
                  ("E2E latency", metrics.e2el_s, "slo_e2e_ms"))
TIMELINE_KEYS = ("kv_usage", "num_seqs")  # the StepRow fields the timelines draw
THROUGHPUT_KEYS = ("request_throughput", "output_throughput", "goodput")
EVENT_KINDS = (EventKind.OOM.value, EventKind.PREEMPTION.value)


@dataclass(slots=True)
class CensoredSample:
    """The latencies (ms) of one run's completed requests, and how many submitted requests have none
    (failed or rejected: +inf, censored)."""

    finite: Sequence[float] | np.ndarray
    censored: int

    @property
    def submitted(self) -> int:
        return len(self.finite) + self.censored


def latency_sample(record: RunRecord, fn: Any) -> CensoredSample:
    """Completed requests' latencies by `fn` (ms; None values, e.g. TPOT of one token, left out) and the
    failed + rejected count."""
    finite = [1000 * v for r in record.requests if r.status is Outcome.COMPLETED and (v := fn(r)) is not None]
    return CensoredSample(finite, sum(1 for r in record.requests if r.status is not Outcome.COMPLETED))


def timeline_starts(xs: np.ndarray, limit: int = TIMELINE_POINTS) -> np.ndarray | None:
    """The first index of each of `limit` equal time spans of sorted `xs` that holds a point; None when `xs` has
    no more than `limit` points (nothing to thin)."""
    if len(xs) <= limit:
        return None
    span = np.minimum(((xs - xs[0]) / max(float(xs[-1] - xs[0]), 1e-12) * limit).astype(int), limit - 1)
    return np.flatnonzero(np.r_[True, np.diff(span) != 0])


def thin_timeline(xs: np.ndarray, ys: np.ndarray, limit: int = TIMELINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points of a step line over time (xs sorted): the run is cut into `limit` equal spans and
    each span drawn as its largest value from its first step's start, so a peak (a full KV cache) stays visible."""
    starts = timeline_starts(xs, limit)
    if starts is None:
        return xs, ys
    return xs[starts], np.maximum.reduceat(ys, starts)


@dataclass(slots=True)
class InstanceTimeline:
    """One instance's step line (one per run unless disaggregated): thinned times, thinned values per
    TIMELINE_KEYS field, and per event kind the event times and their heights on each line."""

    instance: str | None
    xs: np.ndarray
    values: dict[str, np.ndarray]
    events: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = field(default_factory=dict)


@dataclass(slots=True)
class RunPlot:
    """Everything the comparison plots draw of one run."""

    label: str
    scheduler: str
    latency: tuple[CensoredSample, ...]          # one per LATENCY_PANELS
    throughput: dict[str, float]                 # THROUGHPUT_KEYS, from the summary
    has_slos: bool
    timelines: list[InstanceTimeline]
    event_counts: dict[str, int]                 # EVENT_KINDS -> count


@dataclass(slots=True)
class GroupPlot:
    """One group's plot data: its runs, the SLO values per latency panel, the headline."""

    runs: list[RunPlot]
    slos: tuple[list[float], ...]                # one sorted list per LATENCY_PANELS
    title: str
    simulated: bool

    @property
    def has_steps(self) -> bool:
        return any(len(t.xs) for run in self.runs for t in run.timelines)


def _latencies(record: RunRecord) -> tuple[tuple[CensoredSample, ...], list[set[float]]]:
    """The latency samples of every panel and the SLO values seen, in one pass over the request rows."""
    finite: list[list[float]] = [[] for _ in LATENCY_PANELS]
    slos: list[set[float]] = [set() for _ in LATENCY_PANELS]
    censored = 0
    for row in record.requests:
        completed = row.status is Outcome.COMPLETED
        censored += not completed
        for i, (_, fn, slo_field) in enumerate(LATENCY_PANELS):
            if (slo := getattr(row, slo_field)) is not None:
                slos[i].add(slo)
            if completed and (value := fn(row)) is not None:
                finite[i].append(1000 * value)
    samples = tuple(CensoredSample(np.sort(np.asarray(values, dtype=float)), censored) for values in finite)
    return samples, slos


def _timelines(record: RunRecord) -> list[InstanceTimeline]:
    """One InstanceTimeline per instance, from the steps' columns (read alone from a stored record) and one pass
    over the events."""
    table = record.rows_table("steps", ["start_s", "instance", *TIMELINE_KEYS])
    starts_s = table.column("start_s").to_numpy()
    values = {key: np.asarray(table.column(key).to_numpy(), dtype=float) for key in TIMELINE_KEYS}
    instance_column = table.column("instance")
    if instance_column.null_count == table.num_rows:  # one instance: every step
        rows_of: dict[str | None, np.ndarray] = {None: np.arange(table.num_rows)}
    else:
        rows_of = {}
        names = instance_column.to_pylist()
        for name in dict.fromkeys(names):  # first-seen order
            rows_of[name] = np.flatnonzero(np.array([n == name for n in names]))
    columns = {name: [starts_s[at], *(values[key][at] for key in TIMELINE_KEYS)] for name, at in rows_of.items()}
    times: dict[tuple[str, str | None], list[float]] = {}
    for event in record.events:
        if event.kind in EVENT_KINDS:
            times.setdefault((event.kind, event.detail.get("instance")), []).append(event.t_s)
    out = []
    for instance, found in columns.items():
        xs = np.asarray(found[0], dtype=float)
        full = {key: np.asarray(col, dtype=float) for key, col in zip(TIMELINE_KEYS, found[1:])}
        starts = timeline_starts(xs)
        line = InstanceTimeline(instance, xs if starts is None else xs[starts],
                                {k: v if starts is None else np.maximum.reduceat(v, starts) for k, v in full.items()})
        for kind in EVENT_KINDS:
            at = np.sort(np.asarray(times.get((kind, instance), []), dtype=float))
            if not len(at):
                continue
            # each event sits on its run's line: the value of the step running at that time
            where = np.clip(np.searchsorted(xs, at, side="right") - 1, 0, None) if len(xs) else None
            line.events[kind] = (at, {k: v[where] if where is not None else np.zeros(len(at))
                                      for k, v in full.items()})
        out.append(line)
    return out


def figure_title(record: RunRecord) -> str:
    """'<workload> · N requests @ R req/s · model M · device D · backend B', 'SIMULATED · ' first for sim runs."""
    config = record.config
    model = " ".join(str(p) for p in (config.model, config.backend.model_weights(), config.dtype) if p)
    device = record.environment.get("device_name") or config.device
    backend = config.timing_label() or "real runner, measured wall clock"
    title = (f"{record.workload.name} · {record.workload.num_requests} requests @ {format_rate(config.rate)} req/s"
             f" · model {model} · device {device} · backend {backend}")
    return f"SIMULATED · {title}" if config.simulated else title


def _run_plot(label: str, record: RunRecord) -> tuple[RunPlot, list[set[float]]]:
    """One run's plot data and the SLO values its requests carry (one pass over its requests, one over its
    steps, two over its events)."""
    samples, slos = _latencies(record)
    counts = {kind: sum(1 for e in record.events if e.kind == kind) for kind in EVENT_KINDS}
    run = RunPlot(label, record.config.scheduler, samples,
                  {key: float(record.summary.get(key) or 0.0) for key in THROUGHPUT_KEYS},
                  metrics.has_slos(record.summary), _timelines(record), counts)
    return run, slos


def group_plot(runs: Runs) -> GroupPlot:
    """The plot data of one group of comparable runs. A group never mixes simulated and measured runs
    (report.comparability_key), so the first run's title heads every figure; the SLO values are those of all
    its runs' requests."""
    plotted: list[RunPlot] = []
    slos: list[set[float]] = [set() for _ in LATENCY_PANELS]
    for label, record in runs:
        run, seen = _run_plot(label, record)
        plotted.append(run)
        for mine, theirs in zip(slos, seen):
            mine |= theirs
    first = runs[0][1] if runs else None
    return GroupPlot(plotted, tuple(sorted(s) for s in slos), figure_title(first) if first else "",
                     bool(first and first.config.simulated))
