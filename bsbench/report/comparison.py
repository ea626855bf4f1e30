"""Side-by-side comparison of run records: grouping, the comparison table, text formats, HTML.

Reports read run records only. Runs are comparable when they replayed the same
request list (workload fingerprint) on the same model on the same device;
`group_records` puts comparable runs together and explains, in words, why the
groups differ. `comparison_frame` is the pandas table underneath every output
format (rich table, markdown, csv, json, HTML): metrics as rows, runs as
columns, optional ratio columns to a reference scheduler.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from bsbench.errors import BsbenchError
from bsbench.jsonio import to_jsonable
from bsbench.metrics import NO_SLOS, SLO_KEYS, direction, has_slos, submitted_latency_ms
from bsbench.record import RunRecord
from bsbench.report.html_page import Section, img_tag, paragraph, swatch, write_page
from bsbench.report.steady import overload_cell
from bsbench.safe_text import csv_cell, html_text, markup
from bsbench.stats.interval import NO_CLEAR_DIFFERENCE
from bsbench.units import format_percent, format_rate

if TYPE_CHECKING:
    from bsbench.report.cell_stats import GroupStats

# (summary key, row label, kind) — kind chooses the number format.
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("offered_rate", "Offered rate (req/s)", "float"),
    ("request_throughput", "Request throughput (req/s)", "float"),
    ("output_throughput", "Output tokens/s", "float"),
    ("total_token_throughput", "Total tokens/s", "float"),
    ("median_ttft_ms", "TTFT median (ms)", "ms"),
    ("p99_ttft_ms", "TTFT p99 (ms)", "ms"),
    ("median_tpot_ms", "TPOT median (ms)", "ms"),
    ("p99_tpot_ms", "TPOT p99 (ms)", "ms"),
    ("median_itl_ms", "ITL median (ms)", "ms"),
    ("p99_itl_ms", "ITL p99 (ms)", "ms"),
    ("median_e2el_ms", "E2E median (ms)", "ms"),
    ("p99_e2el_ms", "E2E p99 (ms)", "ms"),
    ("median_queue_ms", "Queueing median (ms)", "ms"),
    ("slo_attainment", "SLO attainment", "pct"),
    ("goodput", "Goodput (req/s)", "float"),
    ("steady_slo_attainment", "SLO attainment in window", "pct"),
    ("steady_goodput", "Goodput in window (req/s)", "float"),
    ("steady_output_throughput", "Output tokens/s in window", "float"),
    ("steady_p99_ttft_ms", "TTFT p99 in window (ms)", "ms"),
    ("padding_ratio", "Padding ratio", "pct"),
    ("peak_kv_usage", "Peak KV usage", "pct"),
    ("mean_batch_size", "Mean batch size", "float"),
    ("oom_events", "OOM events", "int"),
    ("preemptions", "Preemptions", "int"),
    ("failed", "Failed", "int"),
    ("rejected", "Rejected", "int"),
    ("truncated", "Truncated", "int"),
)
LABELS = {key: label for key, label, _ in METRIC_ROWS}
KINDS = {key: kind for key, _, kind in METRIC_ROWS}
# The latency rows of the "per submitted request" view (latency_over="submitted"): key -> (measure, percentile).
# ITL is per token, not per request, so that view has no ITL rows.
SUBMITTED_ROWS: dict[str, tuple[str, float]] = {
    "median_ttft_ms": ("ttft", 50), "p99_ttft_ms": ("ttft", 99), "median_tpot_ms": ("tpot", 50),
    "p99_tpot_ms": ("tpot", 99), "median_e2el_ms": ("e2el", 50), "p99_e2el_ms": ("e2el", 99),
    "median_queue_ms": ("queue", 50),
}
LATENCY_VIEWS = ("completed", "submitted")
SUBMITTED_NOTE = ("latencies per submitted request: a failed or rejected request counts as +inf; 'inf' = the "
                  "percentile falls among them")


# ----------------------------------------------------------------------------- grouping


@dataclass(slots=True)
class Run:
    """One column of a comparison: a scheduler's record, or its records over repeats (seeds), and its label.

    `record` is the first repeat (lowest seed); `summary` is the mean of every figure over the repeats."""

    record: RunRecord
    label: str = ""
    repeats: list[RunRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.repeats:
            self.repeats = [self.record]

    @property
    def path(self) -> Path:
        return self.record.path or Path("?")

    @property
    def scheduler(self) -> str:
        return self.record.config.scheduler

    @property
    def summary(self) -> dict[str, Any]:
        if len(self.repeats) == 1:
            return self.record.summary
        return mean_summary([r.summary for r in self.repeats])

    def add_repeat(self, record: RunRecord) -> None:
        self.repeats = sorted([*self.repeats, record], key=lambda r: (r.config.seed is None, r.config.seed or 0))
        self.record = self.repeats[0]


def mean_summary(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The first summary with every numeric figure replaced by its mean over `summaries` (None if any lacks it)."""
    out = dict(summaries[0])
    for key, value in summaries[0].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        values = [_value(s, key) for s in summaries]
        out[key] = None if any(v is None for v in values) else sum(v for v in values if v is not None) / len(values)
    return out


def workload_id(record: RunRecord) -> str:
    return record.workload.fingerprint


def model_id(record: RunRecord) -> str:
    config = record.config
    return " ".join(str(part) for part in (config.model, config.backend.model_weights(), config.dtype) if part)


def device_id(record: RunRecord) -> str:
    return str(record.environment.get("device_name") or record.config.device)


def backend_id(record: RunRecord) -> str:
    """'real', or backend/clock/device/cost model of simulated and virtual-time runs (RecordConfig.backend_id)."""
    return record.config.backend_id()


Key = tuple[str, str, str, str]


def comparability_key(record: RunRecord) -> Key:
    """(workload fingerprint, model, device name, backend id): runs with equal keys are compared in one table,
    so a simulated run never shares a table with a measured one, nor two cost models one table."""
    return workload_id(record), model_id(record), device_id(record), backend_id(record)


@dataclass(slots=True)
class Group:
    key: Key
    runs: list[Run] = field(default_factory=list)

    @property
    def timing_label(self) -> str:
        """'' for measured runs; 'simulated (...)' / 'virtual time (...)' otherwise (RecordConfig.timing_label)."""
        return self.runs[0].record.config.timing_label()

    def title(self) -> str:
        first = self.runs[0].record
        title = (f"{first.workload.name} · {first.workload.num_requests} requests @ rate "
                 f"{format_rate(first.config.rate)} · {self.key[1]} · {self.key[2]}")
        return f"{self.timing_label} · {title}" if self.timing_label else title

    def seeds(self) -> list[Any]:
        """The workload seeds of the group's runs (several when it holds repeats)."""
        return sorted({r.config.seed for run in self.runs for r in run.repeats}, key=str)

    def details(self) -> str:
        seeds = self.seeds()
        workload = f"workload fingerprint {self.key[0][:16]}" if len(seeds) < 2 else \
            f"{len(seeds)} repeats: workload seeds {', '.join(map(str, seeds))}, runs paired by seed"
        return (f"{workload}; model {self.key[1]}; device {self.key[2]}; "
                f"times {self.runs[0].record.config.times_text()}")


def _describe_difference(a: RunRecord, b: RunRecord) -> list[str]:
    reasons = []
    if workload_id(a) != workload_id(b):
        details = []
        for name, va, vb in (
            ("name", a.workload.name, b.workload.name),
            ("requests", a.workload.num_requests, b.workload.num_requests),
            ("rate", a.config.rate, b.config.rate),
            ("seed", a.config.seed, b.config.seed),
        ):
            if va != vb:
                if name == "rate" and isinstance(va, (int, float)) and isinstance(vb, (int, float)):
                    va, vb = format_rate(float(va)), format_rate(float(vb))
                details.append(f"{name} {va} vs {vb}")
        if not details:
            details.append(f"fingerprint {workload_id(a)[:12]} vs {workload_id(b)[:12]}")
        reasons.append("different request lists (" + ", ".join(details) + ")")
    if model_id(a) != model_id(b):
        reasons.append(f"different model ({model_id(a)} vs {model_id(b)})")
    if device_id(a) != device_id(b):
        reasons.append(f"different device ({device_id(a)} vs {device_id(b)})")
    if backend_id(a) != backend_id(b):
        reasons.append(f"different backend, clock or cost model ({a.config.times_text()} vs {b.config.times_text()})")
    return reasons


def repeat_family(record: RunRecord) -> str | None:
    """What the repeats of one experiment share (the workload spec without its seed, the base seed, model,
    device, backend), hashed; None for a record written without repeat information."""
    if record.config.base_seed is None:
        return None
    spec = {k: v for k, v in record.workload.spec.items() if k != "seed"}
    text = json.dumps([record.workload.name, record.workload.num_requests, spec, record.config.base_seed,
                       model_id(record), device_id(record), backend_id(record)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _cells(records: Sequence[RunRecord]) -> list[Run]:
    """One column per scheduler and options, holding its repeats (one record per seed); a second record of a
    seed already in the column opens another column."""
    cells: list[Run] = []
    for record in records:
        same = (record.config.scheduler, json.dumps(record.config.scheduler_options, sort_keys=True, default=str))
        for cell in cells:
            if (cell.scheduler, json.dumps(cell.record.config.scheduler_options, sort_keys=True, default=str)) \
                    == same and all(r.config.seed != record.config.seed for r in cell.repeats):
                cell.add_repeat(record)
                break
        else:
            cells.append(Run(record))
    return cells


def group_records(records: Sequence[RunRecord]) -> tuple[list[Group], list[str]]:
    """Comparable groups (in first-seen order) and, for each group after the first, one plain
    sentence saying why it cannot share a table with group 1.

    Runs that replayed one request list form a group; the groups of one experiment at other seeds (the same
    repeat family, disjoint seeds) merge into one, and in it each scheduler's runs over the seeds form one
    column (its repeats)."""
    exact: dict[Key, list[RunRecord]] = {}
    for record in records:
        exact.setdefault(comparability_key(record), []).append(record)
    merged: list[tuple[Key, list[RunRecord]]] = []
    families: dict[str, int] = {}
    for key, members in exact.items():
        family = {repeat_family(r) for r in members}
        name = next(iter(family)) if len(family) == 1 else None
        seeds = {r.config.seed for r in members}
        at = families.get(name) if name is not None else None
        if at is not None and not seeds & {r.config.seed for r in merged[at][1]}:
            merged[at][1].extend(members)
            continue
        if name is not None:
            families[name] = len(merged)
        merged.append((key, list(members)))
    out = [Group(key, _cells(members)) for key, members in merged]
    for group in out:
        assign_labels(group.runs)
    notes = []
    first = out[0] if out else None
    for j, b in enumerate(out[1:], start=2):
        assert first is not None  # out has a second group, so a first
        reasons = _describe_difference(first.runs[0].record, b.runs[0].record)
        notes.append(
            f"group 1 ({', '.join(r.label for r in first.runs)}) and group {j} "
            f"({', '.join(r.label for r in b.runs)}) are not comparable: {'; '.join(reasons)}"
        )
    return out, notes


def assign_labels(runs: list[Run]) -> None:
    """Column labels: the scheduler name, disambiguated by rate, seed, then a counter when needed."""
    def base(run: Run) -> str:
        return run.scheduler

    def with_seed(run: Run) -> str:
        return f"{run.scheduler} s{run.record.config.seed}"

    for make in (base, with_seed):
        labels = [make(r) for r in runs]
        if len(set(labels)) == len(labels):
            break
    else:
        labels = [base(r) for r in runs]
    counts: dict[str, int] = {}
    for run, label in zip(runs, labels):
        counts[label] = counts.get(label, 0) + 1
        run.label = label if labels.count(label) == 1 else f"{label} #{counts[label]}"
        if not run.record.complete:
            run.label += " (incomplete)"


# ----------------------------------------------------------------------------- the table


def _value(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else float(value)


def find_reference(runs: Sequence[Run], reference: str | None) -> Run | None:
    """The run whose scheduler (or label) is `reference`; None when not given or absent."""
    if not reference:
        return None
    for run in runs:
        if run.label == reference:
            return run
    for run in runs:
        if run.scheduler == reference:
            return run
    return None


def ratio(value: float | None, ref: float | None) -> float | None:
    if value is None or ref is None or ref == 0 or math.isinf(value) or math.isinf(ref):
        return None
    return value / ref


def _cell_value(run: Run, key: str, latency_over: str) -> float | None:
    """The frame's value: None for attainment and goodput of a run without SLOs (shown as NO_SLOS); in the
    submitted view, latency percentiles over every submitted request (+inf possible)."""
    if shows_no_slos(run, key):
        return None
    if latency_over == "submitted" and key in SUBMITTED_ROWS:
        return submitted_latency_ms(run.record.requests, *SUBMITTED_ROWS[key])
    return _value(run.summary, key)


def comparison_frame(runs: Sequence[Run], reference: str | None = None,
                     metrics: Sequence[str] | None = None, latency_over: str = "completed") -> pd.DataFrame:
    """Rows = metric keys, columns = run labels (+ '<label> / <reference>' ratio columns). `latency_over`:
    'completed' (latency over completed requests, as vLLM) or 'submitted' (SUBMITTED_ROWS, censored)."""
    keys = list(metrics or [k for k, _, _ in METRIC_ROWS])
    if latency_over == "submitted":
        keys = [k for k in keys if "_itl_" not in k]
    ref = find_reference(runs, reference)
    data = {run.label: [_cell_value(run, k, latency_over) for k in keys] for run in runs}
    frame = pd.DataFrame(data, index=pd.Index(keys, name="metric"), dtype="float64")
    if ref is not None:
        for run in runs:
            if run is ref:
                continue
            frame[f"{run.label} / {ref.label}"] = [
                ratio(a, b) for a, b in zip(frame[run.label].tolist(), frame[ref.label].tolist())
            ]
    frame = frame.astype("float64")
    frame.attrs["latency_over"] = latency_over
    return frame


def best_labels(frame: pd.DataFrame, key: str, labels: Sequence[str], stats: GroupStats | None = None) -> set[str]:
    """Labels holding the best value of row `key` (direction-aware); empty if no direction or no spread. With
    `stats`, a best value is kept only when it differs clearly from every other (GroupStats.clearly_best)."""
    sign = direction(key)
    values = {lab: frame.at[key, lab] for lab in labels if not pd.isna(frame.at[key, lab])}
    if sign == 0 or len(values) < 2 or len(set(values.values())) < 2:
        return set()
    best = max(values.values()) if sign > 0 else min(values.values())
    found = {lab for lab, v in values.items() if v == best}
    if stats is not None:
        others = [lab for lab in values if lab not in found]
        found = {lab for lab in found if stats.clearly_best(key, lab, others)}
    return found


def interval_text(stats: GroupStats | None, key: str, label: str, kind: str) -> str:
    """' [low, high]' of a figure's 95% interval, '' when it has none."""
    interval = stats.figures.get((key, label)) if stats is not None else None
    if interval is None:
        return ""
    return f" [{format_value(interval.low, kind)}, {format_value(interval.high, kind)}]"


def ratio_text(stats: GroupStats | None, key: str, label: str, value: float | None, short: bool = False) -> str:
    """A ratio cell: '1.15x [1.02, 1.30]', or 'no clear difference (0.98x [0.90, 1.07])' when its paired interval
    contains 1 (`short`: the words alone); the bare ratio when it has no interval."""
    interval = stats.ratios.get((key, label)) if stats is not None else None
    if interval is None:
        return format_value(value, "ratio")
    text = f"{interval.point:.2f}x [{interval.low:.2f}, {interval.high:.2f}]"
    if not interval.contains(1.0):
        return text
    return NO_CLEAR_DIFFERENCE if short else f"{NO_CLEAR_DIFFERENCE} ({text})"


def apply_paired_ratios(frame: pd.DataFrame, runs: Sequence[Run], stats: GroupStats) -> None:
    """Ratio columns take the point of their paired interval (the ratio over paired requests or repeats)."""
    labels = {r.label for r in runs}
    for col in frame.columns:
        label = col.split(" / ")[0]
        if col in labels:
            continue
        for key in frame.index:
            interval = stats.ratios.get((key, label))
            if interval is not None:
                frame.at[key, col] = interval.point


def row_marks(runs: Sequence[Run], frame: pd.DataFrame, key: str,
              stats: GroupStats | None = None) -> tuple[set[str], set[str]]:
    """(best, best*) labels of row `key`: the best value of the row (best_labels, clear with `stats`) goes to
    'best' when its run completed as many requests as any run of the group, else to 'best*': a figure over
    fewer completed requests is never marked plain best (see `completion_note`)."""
    best = best_labels(frame, key, [r.label for r in runs], stats)
    most = max((_completed(r) for r in runs), default=0)
    fewer = {r.label for r in runs if _completed(r) < most}
    return best - fewer, best & fewer


def _completed(run: Run) -> int:
    value = run.summary.get("completed")
    return value if isinstance(value, int) else 0


def completion_note(runs: Sequence[Run]) -> str:
    """'' when every run completed as many requests; else the footnote of the 'best*' marks."""
    most = max((_completed(r) for r in runs), default=0)
    fewer = [r for r in runs if _completed(r) < most]
    if not fewer:
        return ""
    counts = ", ".join(f"{r.label} completed {_completed(r)}/{r.summary.get('num_requests')}" for r in fewer)
    return f"best*: the best figure of the row, from a run that completed fewer requests ({counts}; most: {most})"


def shows_no_slos(run: Run, key: str) -> bool:
    """Row `key` of this run reads NO_SLOS (attainment and goodput of a run without SLOs)."""
    return key in SLO_KEYS and not has_slos(run.summary)


def cell_text(run: Run, frame: pd.DataFrame, key: str, stats: GroupStats | None = None,
              best: str = "") -> str:
    """A run's formatted cell of row `key`, wrapped in `best` (e.g. '**') when given, then its 95% interval
    with `stats`; NO_SLOS for attainment and goodput of a run without SLOs."""
    if shows_no_slos(run, key):
        return NO_SLOS
    kind = KINDS.get(key, "float")
    return f"{best}{format_value(frame.at[key, run.label], kind)}{best}" + interval_text(stats, key, run.label, kind)


def format_value(value: float | None, kind: str) -> str:
    if value is None or pd.isna(value):
        return "—"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if kind == "int":
        return f"{int(round(value))}"
    if kind == "pct":
        return format_percent(value)
    if kind == "ms":
        return f"{value:,.1f}" if abs(value) < 1e5 else f"{value:,.0f}"
    if kind == "ratio":
        return f"{value:.2f}x"
    return f"{value:,.2f}" if abs(value) < 1e4 else f"{value:,.0f}"


def console(stderr: bool = False, min_width: int = 140):
    """A rich Console; when output is not a terminal (CI logs, files) it is at least `min_width` wide,
    so tables are not squeezed into 80 columns and cut."""

    out = Console(stderr=stderr)
    if not out.is_terminal:
        out = Console(stderr=stderr, width=max(out.width, min_width))
    return out


def rich_table(runs: Sequence[Run], frame: pd.DataFrame, title: str | None = None, stats: GroupStats | None = None):
    """A rich Table: metrics as rows, schedulers as columns, best value per row in bold green.

    Ratio columns of the frame ('<label> / <ref>') are shown inside the run's
    own cell, dimmed: '5.41 1.15x'. With `stats` each value carries its 95%
    interval and each ratio its paired interval, on a second line ('no clear
    difference' when it contains 1), and a best value must differ clearly.
    """

    labels = [r.label for r in runs]
    ratio_of = {c.split(" / ")[0]: c for c in frame.columns if c not in labels}
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("metric", style="cyan", no_wrap=True)
    for label in labels:
        ref_note = ""
        if ratio_of and label not in ratio_of:
            ref_note = "\n(reference)"
        elif label in ratio_of:
            ref_note = "\nvalue  ratio" if stats is None else "\nvalue\nratio"
        table.add_column(markup(label) + ref_note, justify="right")
    for key in frame.index:
        best, starred = row_marks(runs, frame, key, stats)
        cells = []
        for run in runs:
            label = run.label
            text = markup(cell_text(run, frame, key))
            if label in best:
                text = f"[bold green]{text}[/]"
            elif label in starred:
                text = f"[yellow]{text} best*[/]"
            if not shows_no_slos(run, key):
                text += f"[dim]{markup(interval_text(stats, key, label, KINDS.get(key, 'float')))}[/]"
            if label in ratio_of:
                ratio = ratio_text(stats, key, label, frame.at[key, ratio_of[label]], short=True)
                text += f"\n[dim]{markup(ratio)}[/]" if stats is not None else f" [dim]{ratio:>6}[/]"
            cells.append(text)
        table.add_row(row_label(frame, key), *cells)
    return table


TABLE_LEGEND = ("bold green: best of the row (higher throughput and attainment, lower latency and waste), marked "
                "only when it differs clearly (paired ratio interval to the reference excluding 1, else 95% "
                "intervals not overlapping)")


def row_label(frame: pd.DataFrame, key: str) -> str:
    """The human label of row `key`; latency rows of the submitted view say so."""
    label = LABELS.get(key, key)
    if frame.attrs.get("latency_over") == "submitted" and key in SUBMITTED_ROWS:
        return label.replace(" (ms)", " per submitted (ms)")
    return label


def table_notes(runs: Sequence[Run], frame: pd.DataFrame) -> list[str]:
    """The footnotes a group's table needs: best* and the censoring of the submitted view."""
    notes = [completion_note(runs)]
    notes += [f"{run.label}: {overload_cell(rec.summary)}" + (f" (seed {rec.config.seed})" if len(run.repeats) > 1
                                                               else "")
              for run in runs for rec in (run.repeats or [run.record]) if rec.summary.get("overloaded")]
    if frame.attrs.get("latency_over") == "submitted":
        notes.append(SUBMITTED_NOTE)
    return [n for n in notes if n]


def display_frame(runs: Sequence[Run], frame: pd.DataFrame, mark_best: str | None = None,
                  stats: GroupStats | None = None) -> pd.DataFrame:
    """The frame as formatted strings with human row labels; `mark_best` wraps the best cell (e.g. '**'), and a
    best figure from a run that completed fewer requests gets ' best*' instead (row_marks); with `stats`, values
    carry their interval and ratios their paired interval (interval_text, ratio_text)."""
    labels = [r.label for r in runs]
    out = pd.DataFrame(index=pd.Index([row_label(frame, k) for k in frame.index], name="metric"),
                       columns=list(frame.columns), dtype=object)
    by_label = {r.label: r for r in runs}
    for key, shown in zip(frame.index, out.index):
        best, starred = row_marks(runs, frame, key, stats) if mark_best else (set(), set())
        for col in frame.columns:
            if col in labels:
                text = cell_text(by_label[col], frame, key, stats, best=(mark_best or "") if col in best else "")
                if col in starred:
                    text = f"{text} best*"
            else:
                text = ratio_text(stats, key, col.split(" / ")[0], frame.at[key, col])
            out.at[shown, col] = text
    return out


def frame_to_markdown(runs: Sequence[Run], frame: pd.DataFrame, stats: GroupStats | None = None) -> str:
    """A GitHub-flavoured markdown table (no tabulate dependency), best values in bold."""
    shown = display_frame(runs, frame, mark_best="**", stats=stats)
    header = ["metric", *shown.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * len(shown.columns)) + "|"]
    for label, row in shown.iterrows():
        lines.append("| " + " | ".join([str(label), *(str(v) for v in row.tolist())]) + " |")
    return "\n".join(lines)


def _interval_of(stats: GroupStats, key: str, col: str, labels: set[str]):
    """The interval of a frame cell: a figure's for a run column, the paired one for a ratio column."""
    return stats.figures.get((key, col)) if col in labels else stats.ratios.get((key, col.split(" / ")[0]))


def groups_to_csv(groups: Sequence[Group], frames: Sequence[pd.DataFrame],
                  stats: Sequence[GroupStats] | None = None) -> str:
    """One CSV: group, timing ('measured' or the simulated label), metric, then one column per run label (raw
    numbers), then with `stats` '<column> low' and '<column> high' (95% interval) per column. Labels come from
    records, so every text cell and header is guarded against spreadsheet formulas (safe_text.csv_cell)."""
    parts = []
    for i, (group, frame) in enumerate(zip(groups, frames), start=1):
        f = frame.astype(object)
        for run in group.runs:  # attainment and goodput of a run without SLOs: say so, not an empty cell
            for key in SLO_KEYS & set(f.index):
                if not has_slos(run.summary):
                    f.at[key, run.label] = NO_SLOS
        if stats is not None:
            labels = {r.label for r in group.runs}
            for col in list(frame.columns):
                found = [_interval_of(stats[i - 1], key, col, labels) for key in frame.index]
                f[f"{col} low"] = [None if iv is None else iv.low for iv in found]
                f[f"{col} high"] = [None if iv is None else iv.high for iv in found]
        f.insert(0, "group", i)
        f.insert(1, "timing", group.timing_label or "measured")
        parts.append(f.reset_index())
    table = pd.concat(parts, ignore_index=True)
    table.columns = [csv_cell(str(c)) for c in table.columns]
    table = table.map(csv_cell)
    return table.to_csv(index=False, float_format="%.6g")


def groups_to_json(groups: Sequence[Group], frames: Sequence[pd.DataFrame], notes: Sequence[str],
                   stats: Sequence[GroupStats] | None = None) -> dict[str, Any]:
    """Per group its runs (each with its repeats), metrics[key][column], and with `stats` intervals[key][column]
    (Interval.to_json), verdicts[key][ratio column] and `intervals_method` (how they were made)."""
    out = []
    for i, (group, frame) in enumerate(zip(groups, frames), start=1):
        metrics = {
            key: {col: (None if pd.isna(frame.at[key, col]) else to_jsonable(float(frame.at[key, col])))
                  for col in frame.columns}
            for key in frame.index
        }
        out.append({
            "group": i,
            "workload_fingerprint": group.key[0], "model": group.key[1], "device": group.key[2],
            "backend": group.key[3], "simulated": bool(group.timing_label), "timing": group.timing_label or "measured",
            "title": group.title(),
            "runs": [{"label": r.label, "path": str(r.path), "scheduler": r.scheduler,
                      "rate": r.record.config.rate, "seed": r.record.config.seed,
                      "complete": all(x.complete for x in r.repeats), "completed": r.summary.get("completed"),
                      "slos": "set" if has_slos(r.summary) else NO_SLOS,
                      "repeats": [{"seed": x.config.seed, "path": str(x.path)} for x in r.repeats]}
                     for r in group.runs],
            "latency_over": frame.attrs.get("latency_over", "completed"),
            "notes": table_notes(group.runs, frame),
            "metrics": metrics,
        })
        if stats is not None:
            labels = {r.label for r in group.runs}
            found = {key: {col: _interval_of(stats[i - 1], key, col, labels) for col in frame.columns}
                     for key in frame.index}
            out[-1]["intervals"] = {key: {col: iv.to_json() for col, iv in cols.items() if iv is not None}
                                    for key, cols in found.items()}
            out[-1]["verdicts"] = {key: {f"{label} / {stats[i - 1].reference}": text
                                         for (k, label), text in stats[i - 1].verdicts.items() if k == key}
                                   for key in frame.index}
            out[-1]["intervals_method"] = stats[i - 1].describe()
    return {"groups": out, "not_comparable": list(notes)}


# ----------------------------------------------------------------------------- HTML


def frame_to_html(runs: Sequence[Run], frame: pd.DataFrame, stats: GroupStats | None = None) -> str:
    """The comparison table as HTML: each run's header with its scheduler's colour swatch, best cells marked;
    with `stats`, intervals beside values and paired intervals on ratios."""
    labels = [r.label for r in runs]
    scheduler_of = {r.label: r.scheduler for r in runs}
    head = "".join(f"<th>{swatch(scheduler_of[c])}{html_text(c)}</th>" if c in labels
                   else f"<th class='ratio'>{html_text(c)}</th>" for c in frame.columns)
    rows = []
    by_label = {r.label: r for r in runs}
    for key in frame.index:
        best, starred = row_marks(runs, frame, key, stats)
        cells = []
        for col in frame.columns:
            if col in labels:
                text = cell_text(by_label[col], frame, key, stats)
                cls = " class='best'" if col in best else ""
                if col in starred:
                    text += " best*"
            else:
                text, cls = ratio_text(stats, key, col.split(" / ")[0], frame.at[key, col]), " class='ratio'"
            cells.append(f"<td{cls}>{html_text(text)}</td>")
        rows.append(f"<tr><td>{html_text(row_label(frame, key))}</td>{''.join(cells)}</tr>")
    return f"<table><thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_html(path: str | Path, groups: Sequence[Group], frames: Sequence[pd.DataFrame], notes: Sequence[str],
               plots: Sequence[Sequence[Path]] | None = None, embed: bool = True,
               title: str = "bsbench comparison", stats: Sequence[GroupStats] | None = None) -> Path:
    """One report page: a table of contents, per group its table and its plots; the not-comparable notes first.

    Plots are embedded as data URIs (one self-contained file, as the sweep's
    page), or without `embed` referenced by paths relative to the page (they
    must then stay where they are); either way the page opens from disk with
    no server.
    """

    path = Path(path)
    sections = []
    for i, (group, frame) in enumerate(zip(groups, frames)):
        body = [f"<p class='runs'>{html_text(group.details())}<br>" + "<br>".join(
            f"{html_text(r.label)}: {html_text(r.path)}" for r in group.runs) + "</p>",
            frame_to_html(group.runs, frame, stats[i] if stats is not None else None), paragraph(TABLE_LEGEND, "runs")]
        if stats is not None:
            body.append(paragraph(stats[i].describe(), "runs"))
        body += [paragraph(note, "runs") for note in table_notes(group.runs, frame)]
        body += [img_tag(Path(png), path, embed) for png in (plots[i] if plots and i < len(plots) else [])]
        sections.append(Section(f"Group {i + 1}: {group.title()}", body, anchor=f"group-{i + 1}"))
    return write_page(path, title, sections, intro=[paragraph(note, "note") for note in notes])


def check_reference(groups: Sequence[Group], reference: str | None) -> list[str]:
    """Put the reference run first in each group; notes for groups lacking it; an error when none has it."""
    if not reference:
        return []
    for group in groups:
        ref = find_reference(group.runs, reference)
        if ref is not None:
            group.runs.remove(ref)
            group.runs.insert(0, ref)
    missing = [i + 1 for i, g in enumerate(groups) if find_reference(g.runs, reference) is None]
    if len(missing) == len(groups):
        names = sorted({r.label for g in groups for r in g.runs})
        raise BsbenchError(f"--reference {reference!r} matches no run; runs are: {', '.join(names)}")
    return [f"group {i} has no run of {reference!r}: no ratios there" for i in missing]
