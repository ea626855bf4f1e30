"""`bsbench run`: one scheduler, one workload, one run record."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from bsbench.bench import InterruptedRun, build_scheduler_options, open_session, run_benchmark
from bsbench.commands._run_options import run_config_from_cli, run_options, scheduler_values
from bsbench.commands._workload_options import workload_from_cli, workload_options
from bsbench.safe_text import markup
from bsbench.schedulers.registry import get_scheduler
from bsbench.units import format_percent, format_rate

_SUMMARY_ROWS = [
    ("requests completed / failed / rejected", lambda s: f"{s['completed']} / {s['failed']} / {s['rejected']}"),
    ("request throughput (req/s)", lambda s: _num(s.get("request_throughput"))),
    ("output throughput (tok/s)", lambda s: _num(s.get("output_throughput"))),
    ("total token throughput (tok/s)", lambda s: _num(s.get("total_token_throughput"))),
    ("TTFT median / p99 (ms)", lambda s: f"{_num(s.get('median_ttft_ms'))} / {_num(s.get('p99_ttft_ms'))}"),
    ("TPOT median / p99 (ms)", lambda s: f"{_num(s.get('median_tpot_ms'))} / {_num(s.get('p99_tpot_ms'))}"),
    ("ITL median / p99 (ms)", lambda s: f"{_num(s.get('median_itl_ms'))} / {_num(s.get('p99_itl_ms'))}"),
    ("E2E median / p99 (ms)", lambda s: f"{_num(s.get('median_e2el_ms'))} / {_num(s.get('p99_e2el_ms'))}"),
    ("SLO attainment", lambda s: format_percent(s.get("slo_attainment")) if s.get("num_with_slo") else _NO_SLO),
    ("goodput (req/s)", lambda s: _num(s.get("goodput")) if s.get("num_with_slo") else _NO_SLO),
    ("padding ratio", lambda s: format_percent(s.get("padding_ratio"))),
    ("KV usage mean / peak",
     lambda s: f"{format_percent(s.get('mean_kv_usage'))} / {format_percent(s.get('peak_kv_usage'))}"),
    ("OOM events / preemptions", lambda s: f"{s.get('oom_events', 0)} / {s.get('preemptions', 0)}"),
]


_NO_SLO = "no SLOs set"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def run_summary_table(record: dict) -> Table:
    """The end-of-run table: the headline figures of one record."""
    summary = record["summary"]
    title = f"{markup(record['config']['scheduler'])} - {summary['duration_s']:.2f} s"
    if not summary.get("counts_add_up", True):
        title += " [red](counts do not add up!)[/]"
    table = Table(title=title, show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, cell in _SUMMARY_ROWS:
        table.add_row(label, cell(summary))
    return table


@click.command("run")
@click.option("--scheduler", default="continuous", show_default=True,
              help="Batching policy: static, continuous, uellm, bucket (or any registered one).")
@workload_options
@run_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(scheduler: str, quiet: bool, **kwargs) -> None:
    """Replay a workload through one scheduler on the shared model runner and write a run record."""
    console = Console(stderr=False)
    config = run_config_from_cli(kwargs, scheduler, scheduler_values(kwargs))
    build_scheduler_options(get_scheduler(scheduler), config.scheduler_options)  # bad flags fail before any work
    workload = workload_from_cli(kwargs)
    rate = workload.spec.get("rate", float("inf"))
    session = open_session(config)
    console.print(
        f"[bold]{markup(scheduler)}[/] on [bold]{markup(workload.name)}[/]: {len(workload.requests)} requests at "
        f"{format_rate(rate)} req/s; model {markup(session.info.name)} ({config.weights} weights, {session.dtype}) on "
        f"{session.device}; KV {session.num_blocks * session.block_size:,} tokens"
    )
    try:
        record = run_benchmark(workload, config, progress=not quiet, session=session)
    except InterruptedRun as stop:
        console.print(f"[yellow]interrupted[/]: incomplete record written to {markup(stop.record['path'])}")
        sys.exit(130)
    console.print(run_summary_table(record))
    console.print(f"record: {markup(record['path'])}")
