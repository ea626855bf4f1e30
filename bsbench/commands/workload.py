"""`bsbench workload show`: materialise a workload, print what it holds, optionally save it as JSONL."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from bsbench.commands._help import GroupedCommand
from bsbench.commands._workload_options import workload_options, workload_overrides
from bsbench.errors import BsbenchError
from bsbench.paths import check_output_file
from bsbench.safe_text import markup
from bsbench.units import format_rate
from bsbench.workloads.build import load_workload
from bsbench.workloads.replay import meta_path, save_workload
from bsbench.workloads.summary import PERCENTILES, histogram, summarize

if TYPE_CHECKING:  # rich tables and the workload builders are imported when the command runs, not for --help
    from rich.console import Console
    from rich.table import Table

    from bsbench.workloads.workload import Workload


@click.group("workload")
def command() -> None:
    """Inspect and save workloads (request lists with arrival times and SLOs)."""


def data_lines(workload: Workload) -> list[str]:
    """What the workload is and which data it came from (its spec's description and dataset path)."""
    lines = []
    if workload.spec.get("description"):
        lines.append(f"what: {markup(workload.spec['description'])}")
    if workload.spec.get("dataset_path"):
        lines.append(f"data: {markup(workload.spec['dataset_path'])}")
    return lines


def _counts_table(report: dict[str, Any], title: str) -> Table:

    table = Table(title=title, show_header=False)
    table.add_column("count")
    table.add_column("value", justify="right")
    file_info = report.get("file") or {}
    if file_info:
        table.add_row("file", markup(file_info.get("path")))
        table.add_row("complete records recovered", f"{file_info.get('records', 0):,}"
                      + (" (file cut off mid-record)" if file_info.get("truncated") else ""))
    if report.get("loader"):
        table.add_row("loader", markup(report["loader"]))
    for key, label in (("records", "records read"), ("malformed", "malformed (skipped)"),
                       ("examined", "examined (seeded order)"), ("kept", "kept"),
                       ("prompts_truncated", "prompts truncated (middle)"), ("outputs_capped", "outputs capped"),
                       ("oversampled", "oversampled (repeats)")):
        if report.get(key) is not None:
            table.add_row(label, f"{report[key]:,}")
    for rule, count in (report.get("dropped") or {}).items():
        table.add_row(f"dropped: {markup(rule)}", f"{count:,}")
    return table


def _lengths_table(summary: dict[str, Any]) -> Table:


    table = Table(title="token lengths")
    table.add_column("")
    for p in PERCENTILES:
        table.add_column({0: "min", 100: "max"}.get(p, f"p{p}"), justify="right")
    table.add_column("mean", justify="right")
    for key in ("prompt", "output", "total"):
        stats = summary[key]
        table.add_row(key, *(f"{stats[f'p{p}']:,.0f}" for p in PERCENTILES), f"{stats['mean']:,.1f}")
    return table


def _histogram_table(workload: Workload, key: str) -> Table:


    values = [r.prompt_len if key == "prompt" else r.output_len for r in workload.requests]
    bins = histogram(values)
    peak = max(c for _, _, c in bins) or 1
    table = Table(title=f"{key} length histogram", show_header=False, box=None)
    table.add_column("range", justify="right")
    table.add_column("count", justify="right")
    table.add_column("bar")
    for low, high, count in bins:
        table.add_row(f"{low}-{high}", str(count), "#" * max(0, round(30 * count / peak)))
    return table


def show_workload(workload: Workload, console: Console) -> None:

    summary = summarize(workload)
    arrivals = summary["arrivals"]
    rate = arrivals["rate"]
    console.print(f"[bold]{markup(workload.name)}[/]  source {markup(workload.spec.get('source'))}  "
                  f"seed {workload.spec.get('seed')}  tokenizer {markup(workload.tokenizer)}")
    for line in data_lines(workload):
        console.print(line, highlight=False)
    console.print(f"{summary['num_requests']} requests, fingerprint {summary['fingerprint'][:16]}, "
                  f"online {summary['online']} / offline {summary['num_requests'] - summary['online']}, "
                  f"sources {markup(summary['sources'])}")
    report = workload.load_report
    console.print(_counts_table(report, "load report"))
    for name, sub in (report.get("components") or {}).items():
        console.print(_counts_table(sub, f"component {markup(name)} ({sub.get('requested')} requested)"))
    console.print(_lengths_table(summary))
    rate_text = "-" if rate is None else format_rate(rate)
    eff = arrivals["effective_rate"]
    console.print(f"arrivals: {arrivals['process']} at {rate_text} req/s; span {arrivals['span_s']:.3f} s; "
                  f"effective rate {'inf' if math.isinf(eff) else f'{eff:.3f}'} req/s")
    slo = workload.spec.get("slo") or {}
    if any(slo.values()):
        console.print("SLOs (ms): " + ", ".join(f"{k.removesuffix('_slo')} {markup(v)}" for k, v in slo.items() if v))
    console.print(_histogram_table(workload, "prompt"))
    console.print(_histogram_table(workload, "output"))


@command.command("show", cls=GroupedCommand)
@click.argument("spec_or_name", required=False)
@workload_options
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Write the request list as JSONL (replay later with --workload FILE.jsonl).")
def show(spec_or_name: str | None, save_path: str | None, **kwargs: Any) -> None:
    """Materialise SPEC_OR_NAME (default sharegpt-vllm) and print counts, lengths, arrivals and a histogram."""
    target, overrides = workload_overrides(kwargs)
    if spec_or_name and target and spec_or_name != target:
        raise BsbenchError("give the workload once: as SPEC_OR_NAME or as --workload, not both")

    if save_path:  # checked before the workload is built
        if not save_path.endswith(".jsonl"):
            raise BsbenchError(f"--save needs a .jsonl file name, got {save_path}")
        check_output_file(save_path, "--save")
        check_output_file(meta_path(save_path), "--save")


    workload = load_workload(spec_or_name or target, overrides)
    console = Console()
    show_workload(workload, console)
    if save_path:
        save_workload(workload, save_path)
        console.print(f"saved {len(workload.requests)} requests to {markup(save_path)} "
                      f"(+ {markup(meta_path(save_path))})")
