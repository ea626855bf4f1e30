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
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bsbench.errors import BsbenchError
from bsbench.metrics import direction
from bsbench.record import RunRecord
from bsbench.safe_text import csv_cell, markup
from bsbench.stats.interval import NO_CLEAR_DIFFERENCE
from bsbench.units import format_percent, format_rate

if TYPE_CHECKING:
    from bsbench.cell_stats import GroupStats

# (summary key, row label, kind) — kind chooses the number format.
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
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
    return " ".join(str(part) for part in (config.model, config.weights, config.dtype) if part)


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
                f"times {self.timing_label or 'measured (wall clock)'}")


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
        what = [a.config.timing_label() or "measured (real runner, wall clock)",
                b.config.timing_label() or "measured (real runner, wall clock)"]
        reasons.append(f"different backend, clock or cost model ({what[0]} vs {what[1]})")
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
    if value is None or ref is None or ref == 0:
        return None
    return value / ref


def comparison_frame(runs: Sequence[Run], reference: str | None = None,
                     metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows = metric keys, columns = run labels (+ '<label> / <reference>' ratio columns)."""
    keys = list(metrics or [k for k, _, _ in METRIC_ROWS])
    ref = find_reference(runs, reference)
    data = {run.label: [_value(run.summary, k) for k in keys] for run in runs}
    frame = pd.DataFrame(data, index=pd.Index(keys, name="metric"), dtype="float64")
    if ref is not None:
        for run in runs:
            if run is ref:
                continue
            frame[f"{run.label} / {ref.label}"] = [
                ratio(a, b) for a, b in zip(frame[run.label].tolist(), frame[ref.label].tolist())
            ]
    return frame.astype("float64")


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


def format_value(value: float | None, kind: str) -> str:
    if value is None or pd.isna(value):
        return "—"
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
    from rich.console import Console

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
    from rich.table import Table

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
        best = best_labels(frame, key, labels, stats)
        cells = []
        for label in labels:
            kind = KINDS.get(key, "float")
            text = format_value(frame.at[key, label], kind)
            if label in best:
                text = f"[bold green]{text}[/]"
            text += f"[dim]{markup(interval_text(stats, key, label, kind))}[/]"
            if label in ratio_of:
                ratio = ratio_text(stats, key, label, frame.at[key, ratio_of[label]], short=True)
                text += f"\n[dim]{markup(ratio)}[/]" if stats is not None else f" [dim]{ratio:>6}[/]"
            cells.append(text)
        table.add_row(LABELS.get(key, key), *cells)
    return table


TABLE_LEGEND = ("bold green: best of the row (higher throughput and attainment, lower latency and waste), marked "
                "only when it differs clearly (paired ratio interval to the reference excluding 1, else 95% "
                "intervals not overlapping)")


def display_frame(runs: Sequence[Run], frame: pd.DataFrame, mark_best: str | None = None,
                  stats: GroupStats | None = None) -> pd.DataFrame:
    """The frame as formatted strings with human row labels; `mark_best` wraps the best cell (e.g. '**'); with
    `stats`, values carry their interval and ratios their paired interval (interval_text, ratio_text)."""
    labels = [r.label for r in runs]
    out = pd.DataFrame(index=[LABELS.get(k, k) for k in frame.index], columns=list(frame.columns), dtype=object)
    out.index.name = "metric"
    for key, row_label in zip(frame.index, out.index):
        best = best_labels(frame, key, labels, stats) if mark_best else set()
        for col in frame.columns:
            if col in labels:
                kind = KINDS.get(key, "float")
                text = format_value(frame.at[key, col], kind)
                text = (f"{mark_best}{text}{mark_best}" if col in best else text) + \
                    interval_text(stats, key, col, kind)
            else:
                text = ratio_text(stats, key, col.split(" / ")[0], frame.at[key, col])
            out.at[row_label, col] = text
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
        f = frame.copy()
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
            key: {col: (None if pd.isna(frame.at[key, col]) else float(frame.at[key, col])) for col in frame.columns}
            for key in frame.index
        }
        out.append({
            "group": i,
            "workload_fingerprint": group.key[0], "model": group.key[1], "device": group.key[2],
            "backend": group.key[3], "simulated": bool(group.timing_label), "timing": group.timing_label or "measured",
            "title": group.title(),
            "runs": [{"label": r.label, "path": str(r.path), "scheduler": r.scheduler,
                      "rate": r.record.config.rate, "seed": r.record.config.seed,
                      "complete": all(x.complete for x in r.repeats),
                      "repeats": [{"seed": x.config.seed, "path": str(x.path)} for x in r.repeats]}
                     for r in group.runs],
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

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f4f4f4}td.best{font-weight:bold;color:#0a7d2c}
td.ratio,th.ratio{color:#777}
.note{background:#fff6e0;border-left:4px solid #f0a500;padding:.5em 1em;margin:.5em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.runs{font-size:.85em;color:#555}
"""


def frame_to_html(runs: Sequence[Run], frame: pd.DataFrame, stats: GroupStats | None = None) -> str:
    labels = [r.label for r in runs]
    head = "".join(f"<th>{html.escape(c)}</th>" if c in labels else f"<th class='ratio'>{html.escape(c)}</th>"
                   for c in frame.columns)
    rows = []
    for key in frame.index:
        best = best_labels(frame, key, labels, stats)
        cells = []
        for col in frame.columns:
            if col in labels:
                kind = KINDS.get(key, "float")
                text = format_value(frame.at[key, col], kind) + interval_text(stats, key, col, kind)
                cls = " class='best'" if col in best else ""
            else:
                text, cls = ratio_text(stats, key, col.split(" / ")[0], frame.at[key, col]), " class='ratio'"
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append(f"<tr><td>{html.escape(LABELS.get(key, key))}</td>{''.join(cells)}</tr>")
    return f"<table><thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _img_tag(png: Path, html_path: Path, embed: bool) -> str:
    alt = html.escape(png.stem.replace("_", " "))
    if embed:
        import base64

        data = base64.b64encode(png.read_bytes()).decode()
        return f"<img alt='{alt}' src='data:image/png;base64,{data}'>"
    rel = Path(os.path.relpath(png.resolve(), html_path.resolve().parent)).as_posix()
    return f"<img alt='{alt}' src='{html.escape(rel)}'>"


def write_html(path: str | Path, groups: Sequence[Group], frames: Sequence[pd.DataFrame], notes: Sequence[str],
               plots: Sequence[Sequence[Path]] | None = None, embed: bool = False,
               title: str = "bsbench comparison", stats: Sequence[GroupStats] | None = None) -> Path:
    """One report page: per group its table and its plots, then the not-comparable notes.

    Plots are referenced by paths relative to the page (they must sit next to
    it, as `compare --html` arranges), or embedded as data URIs with `embed`;
    either way the page opens from disk with no server.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = [f"<h1>{html.escape(title)}</h1>"]
    for note in notes:
        body.append(f"<p class='note'>{html.escape(note)}</p>")
    for i, (group, frame) in enumerate(zip(groups, frames)):
        body.append(f"<h2>Group {i + 1}: {html.escape(group.title())}</h2>")
        body.append(f"<p class='runs'>{html.escape(group.details())}<br>" + "<br>".join(
            f"{html.escape(r.label)}: {html.escape(str(r.path))}" for r in group.runs) + "</p>")
        body.append(frame_to_html(group.runs, frame, stats[i] if stats is not None else None))
        body.append(f"<p class='runs'>{html.escape(TABLE_LEGEND)}</p>")
        if stats is not None:
            body.append(f"<p class='runs'>{html.escape(stats[i].describe())}</p>")
        for png in (plots[i] if plots and i < len(plots) else []):
            body.append(_img_tag(Path(png), path, embed))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


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
