"""The self-contained report.html that `bsbench sweep` and `bsbench capacity` write into OUT.

The page opens with a table of contents; then the overview (what was run,
SLOs, backend: "SIMULATED" when a cost model produced the times), the plots
against the rate, and one section per comparable group of runs, the largest
group first. Each group shows its configuration (workload, model, device,
backend, KV budget, SLOs, every run's scheduler options), its comparison table
and its plots. Plots are embedded (base64 PNG): the page is one file that
opens offline. All text from records and specs is escaped (html_page).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bsbench import metrics
from bsbench.record import RunRecord
from bsbench.report.comparison import Group, comparison_frame, frame_to_html, group_records
from bsbench.report.html_page import Section, img_tag, key_value_table, paragraph, swatch, table, write_page
from bsbench.safe_text import html_text
from bsbench.units import format_bytes, format_rate
from bsbench.workloads.specs import DEFAULT_WORKLOAD

REPORT_FILE = "report.html"
NO_SLOS = f"{metrics.NO_SLOS}: SLO attainment and goodput are not shown (set --ttft-slo / --tpot-slo / --e2e-slo)"
_SLO_FIELDS = (("TTFT", "slo_ttft_ms"), ("TPOT", "slo_tpot_ms"), ("E2E", "slo_e2e_ms"))


def describe_slos(records: Sequence[RunRecord]) -> str:
    """'TTFT <= 500 ms (48 of 48 requests); E2E <= 15,000 ms (...)' from the request rows; NO_SLOS when none."""
    parts = []
    first = records[0].requests if records else []
    for name, attr in _SLO_FIELDS:
        values = sorted({v for r in first if (v := getattr(r, attr)) is not None})
        if values:
            count = sum(1 for r in first if getattr(r, attr) is not None)
            shown = " or ".join(f"{v:,g} ms" for v in values[:4]) + (" ..." if len(values) > 4 else "")
            parts.append(f"{name} <= {shown} ({count} of {len(first)} requests)")
    return "; ".join(parts) if parts else NO_SLOS


def backend_text(record: RunRecord) -> str:
    config = record.config
    label = config.timing_label()
    return f"SIMULATED: {label}" if label else "real runner, measured on the wall clock"


def _kv_budget(record: RunRecord) -> str:
    config = record.config
    parts = []
    if config.kv_memory_bytes:
        parts.append(format_bytes(config.kv_memory_bytes))
    if config.num_kv_blocks:
        parts.append(f"{config.num_kv_blocks:,} blocks" + (f" of {config.block_size} tokens" if config.block_size
                                                            else ""))
    if config.kv_capacity_tokens:
        parts.append(f"{config.kv_capacity_tokens:,} tokens")
    return " · ".join(parts) or "not recorded"


def _distinct(values: Sequence[str]) -> str:
    return " | ".join(dict.fromkeys(values))


def group_configuration(group: Group) -> list[tuple[str, str]]:
    """(name, text) rows of everything that defines a group's runs; values differing between runs are joined
    with ' | '."""
    records = [r.record for r in group.runs]
    first = records[0]
    return [
        ("workload", f"{first.workload.name} · {first.workload.num_requests} requests · rate "
                     f"{format_rate(first.config.rate)} req/s · seed {first.config.seed} · "
                     f"arrivals {first.config.arrival or 'default'} · fingerprint {first.workload.fingerprint[:16]}"),
        ("model", group.key[1]),
        ("device", group.key[2]),
        ("backend", backend_text(first)),
        ("KV budget", _distinct([_kv_budget(r) for r in records])),
        ("SLOs", describe_slos(records)),
    ]


def scheduler_options_html(group: Group) -> str:
    """One row per run: its colour swatch, label, scheduler options (JSON) and record path."""
    rows = []
    for run in group.runs:
        options = run.record.config.scheduler_options
        text = json.dumps(options, sort_keys=True, default=str) if options else "defaults"
        rows.append(f"<tr><td>{swatch(run.scheduler)}{html_text(run.label)}</td><td>{html_text(text)}</td>"
                    f"<td class='runs'>{html_text(run.path)}</td></tr>")
    return ("<table class='config'><thead><tr><th>run</th><th>scheduler options</th><th>record</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def ordered_groups(records: Sequence[RunRecord]) -> list[Group]:
    """Comparable groups (report.group_records), the largest first; equal sizes keep first-seen order."""
    groups, _ = group_records(records)
    return sorted(groups, key=lambda g: -len(g.runs))


# A capacity search probes many rates, each a group of its own: plots for every probe group (4 figures each, 19
# groups in one search) made the page take longer than the search. Its page plots the largest groups only.
CAPACITY_PLOTTED_GROUPS = 2


def group_sections(groups: Sequence[Group], page: Path, plot_dir: Path, plotted: int | None = None) -> list[Section]:
    """A section per group: configuration, scheduler options, comparison table, embedded plots; with `plotted`,
    only the first `plotted` groups get plots and the others a line naming the command that draws them. The
    plots of all groups are drawn at once (plot_pool: in worker processes when there are enough)."""
    # lazy: loads numpy
    from bsbench.report.plot_data import group_plot

    # lazy: loads matplotlib
    from bsbench.report.plot_pool import render_groups

    drawn = groups if plotted is None else groups[:plotted]
    pngs = render_groups([(group_plot([(r.label, r.record) for r in group.runs]), plot_dir, f"group{i}_")
                          for i, group in enumerate(drawn, start=1)])
    sections = []
    for i, group in enumerate(groups, start=1):
        body = [key_value_table(group_configuration(group)), scheduler_options_html(group),
                frame_to_html(group.runs, comparison_frame(group.runs))]
        if i > len(drawn):
            paths = " ".join(str(r.path) for r in group.runs)
            body.append(paragraph(f"plots of this group: bsbench compare {paths} --html PAGE", "runs"))
        else:
            body += [img_tag(png, page) for png in pngs[i - 1]]
        sections.append(Section(f"Group {i} ({len(group.runs)} runs): {group.title()}", body, anchor=f"group-{i}"))
    return sections


def _banner(records: Sequence[RunRecord]) -> list[str]:
    simulated = sorted({r.config.timing_label() for r in records if r.config.simulated})
    return [f"<p class='note simulated'>SIMULATED: {html_text(label)}: times come from a cost model, not a "
            f"measurement</p>" for label in simulated]


def _write(path: Path, title: str, head: list[Section], records: Sequence[RunRecord], intro: list[str],
           plotted: int | None = None) -> Path:
    with tempfile.TemporaryDirectory(prefix="bsbench-report-") as tmp:
        sections = head + (group_sections(ordered_groups(records), path, Path(tmp), plotted) if records else [])
        return write_page(path, title, sections, intro=_banner(records) + intro)


# The spec keys that say what a workload is (its rate, seeds and SLOs have rows of their own); the synthetic
# lengths only for the synthetic source, where they mean something.
_WORKLOAD_KEYS = ("source", "filter", "arrival", "burstiness", "max_prompt_len", "max_output_len", "tokenizer")
_SYNTHETIC_KEYS = ("input_len", "output_len", "length_dist")
_OWN_ROWS = ("rate", "seed", "ttft_slo", "tpot_slo", "e2e_slo")


def workload_text(summary: dict[str, Any], records: Sequence[RunRecord]) -> str:
    """The workload's name and key parameters, e.g. 'sharegpt-vllm · 100 requests · source sharegpt · filter
    vllm · arrival poisson · tokenizer bsbench-bpe-32k', from the first record's spec; before any run finished,
    the summary's target (the default spec when none was given) and the options set on the command line."""
    if records:
        spec = records[0].workload.spec
        keys = _WORKLOAD_KEYS + (_SYNTHETIC_KEYS if spec.get("source") == "synthetic" else ())
        parts = [records[0].workload.name, f"{records[0].workload.num_requests} requests"]
        parts += [f"{key.replace('_', ' ')} {spec[key]}" for key in keys if spec.get(key) not in (None, "")]
        return " · ".join(parts)
    overrides = summary.get("workload_overrides") or {}
    parts = [str(summary.get("workload") or DEFAULT_WORKLOAD)]
    parts += [f"{key.replace('_', ' ')} {value}" for key, value in sorted(overrides.items()) if key not in _OWN_ROWS]
    return " · ".join(parts)


def write_sweep_report(out_dir: Path, summary: dict[str, Any], records: Sequence[RunRecord],
                       pngs: Sequence[Path], grid_caption: str, grid_header: Sequence[str],
                       grid: Sequence[Sequence[str]]) -> Path:
    """OUT/report.html of a sweep: overview, the rate x scheduler grid, the sweep plots, then the groups."""
    path = Path(out_dir) / REPORT_FILE
    overview = [
        ("schedulers", ", ".join(summary.get("schedulers", []))),
        ("rates (req/s)", ", ".join(format_rate(float(r)) for r in summary.get("rates", []))),
        ("workload seeds", _seeds_text(summary.get("seeds", []))),
        ("runs", f"{summary.get('finished_runs')} finished of {summary.get('planned_runs')} planned"
                 + (" (interrupted)" if summary.get("interrupted") else "")),
        ("workload", workload_text(summary, records)),
        ("model", str(summary.get("model", "?"))),
        ("backend", backend_text(records[0]) if records else str(summary.get("timing", "?"))),
        ("SLOs", describe_slos(records)),
    ]
    slo_note = [paragraph(NO_SLOS, "note")] if describe_slos(records) == NO_SLOS else []
    head = [
        Section("Sweep overview", [key_value_table(overview), *slo_note,
                                   paragraph("Each rate and seed is one request list replayed by every scheduler "
                                             "(paired); a group below is one such list.", "runs")]),
        Section("Results by rate", [paragraph(grid_caption, "runs"), table(grid_header, grid)]),
        Section("Plots against the rate", [img_tag(png, path) for png in pngs]),
    ]
    return _write(path, "bsbench sweep report", head, records, [])


def write_capacity_report(out_dir: Path, summary: dict[str, Any], records: Sequence[RunRecord],
                          rows: Sequence[Sequence[str]], header: Sequence[str], probe_png: Path | None) -> Path:
    """OUT/report.html of a capacity search: overview, capacity table, attainment at each probe, the groups."""
    path = Path(out_dir) / REPORT_FILE
    overview = [
        ("target", f"SLO attainment >= {100 * float(summary['target']):g}%"),
        ("schedulers", ", ".join(summary.get("schedulers", {}))),
        ("reference", str(summary.get("reference"))),
        ("workload", workload_text(summary, records)),
        ("seed", str(summary.get("seed"))),
        ("backend", backend_text(records[0]) if records else str(summary.get("timing", "?"))),
        ("SLOs", describe_slos(records)),
    ]
    slo_note = [paragraph("no SLOs set: attainment is the share of completed requests", "note")] \
        if describe_slos(records) == NO_SLOS else []
    plots = [img_tag(probe_png, path)] if probe_png is not None else []
    head = [Section("Capacity", [key_value_table(overview), *slo_note, table(header, rows)]),
            Section("Attainment at each probed rate", plots)]
    return _write(path, "bsbench capacity report", head, records, [], plotted=CAPACITY_PLOTTED_GROUPS)


def _seeds_text(seeds: list[int]) -> str:
    """'0 (1 repeat)' or '0, 1, 2 (3 repeats)': the workload seed of each repeat."""
    return f"{', '.join(str(s) for s in seeds)} ({len(seeds)} repeat{'s' if len(seeds) != 1 else ''})"
