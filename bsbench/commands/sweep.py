"""`bsbench sweep`: schedulers x rates x repeats on paired workloads, resumable, with plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from bsbench.commands._engine_runner import engine_runner_from_cli
from bsbench.commands._executor_options import executor_options
from bsbench.commands._help import GroupedCommand
from bsbench.commands._run_options import run_options
from bsbench.commands._types import param_type
from bsbench.commands._vllm_options import PERCENTILE_METRICS, take_vllm_workload, vllm_workload_options
from bsbench.commands._workload_options import workload_options
from bsbench.errors import BsbenchError
from bsbench.experiments.sweep import (
    RUNS_DIR,
    SweepPlan,
    grid,
    load_summary,
    parse_names,
    parse_rates,
    run_sweep,
    sweep_plots,
)
from bsbench.experiments.sweep_progress import SweepWatch
from bsbench.metrics import has_slos
from bsbench.paths import check_output_dir
from bsbench.record import read_records
from bsbench.safe_text import markup
from bsbench.units import format_rate
from bsbench.values import SHARE

if TYPE_CHECKING:
    pass


def sweep_table(result: Any, note: str = ""):
    """Rates as rows, schedulers as columns (sweep.grid); `note` heads the title ('simulated (...): ')."""


    what, header, rows = grid(result)
    table = Table(title=f"{markup(note)}{markup(what)}", title_justify="left", header_style="bold")
    for name in header:
        table.add_column(markup(name), justify="right")
    for row in rows:
        table.add_row(*(markup(cell) for cell in row))
    return table


def write_sweep_page(result: Any, pngs: list[Path]) -> Path:
    """OUT/report.html from the sweep's summary file, its finished records and its plots."""
    # lazy: loads pandas, pyarrow
    from bsbench.report.html_report import write_sweep_report

    records = read_records([r.path for r in result.runs if r.complete and r.path]) if result.runs else []
    what, header, rows = grid(result)
    return write_sweep_report(result.out_dir, load_summary(result.out_dir), records, pngs, what, header, rows)


@click.command("sweep", cls=GroupedCommand)
@click.option("--schedulers", required=True, help="Comma-separated schedulers, e.g. static,continuous,uellm,bucket.")
@click.option("--rates", required=True,
              help="Request rates: a list (1,2,4,inf) or ranges START:STOP:xFACTOR (1:16:x2) or START:STOP:+STEP.")
@click.option("--attainment", "target", type=param_type(SHARE), default=0.8, show_default=True,
              help="Target line drawn on the attainment plot.")
@click.option("--html/--no-html", "write_html", default=True, show_default=True,
              help="Write OUT/report.html: one self-contained page (plots embedded) with the sweep, its plots and "
                   "every group's table and configuration.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@executor_options
@workload_options
@run_options
@vllm_workload_options
@click.pass_context
def command(ctx: click.Context, schedulers: str, rates: str, repeats: int, target: float, write_html: bool,
            quiet: bool, executor: str, workers: int | None, ray_address: str | None, **kwargs: Any) -> None:
    """Run every scheduler at every rate on the same request list, resumably.

    At each rate (and seed) every scheduler replays the identical requests and
    arrival times. Records go to OUT/runs/, the grid to OUT/sweep_summary.json,
    plots to OUT/*.png (OUT: --out, default results/sweep). Run the same
    command again to resume an interrupted sweep: finished runs are skipped.
    """
    # lazy: loads pandas, pyarrow
    from bsbench.report.comparison import console as make_console

    vllm = take_vllm_workload(ctx, kwargs)  # vLLM's dataset and percentile spellings
    if vllm.ramp:
        raise BsbenchError("--ramp-up-strategy does not apply to sweep: --rates sets the rates")
    if vllm.percentile_metrics != PERCENTILE_METRICS:
        raise BsbenchError("--percentile-metrics chooses what run --save-result writes; sweep writes no vLLM file")
    engine = engine_runner_from_cli(ctx, kwargs, "sweep", quiet)
    check_output_dir(engine.out_dir / RUNS_DIR, "--out")
    plan = SweepPlan(engine.check_schedulers(parse_names(schedulers, engine.known_schedulers)), parse_rates(rates), [])
    base = engine.base_seed()
    plan.seeds = [base + i for i in range(repeats)]
    runner = engine.executor(executor, workers, ray_address)
    note = engine.timing_note()
    plan.backend = engine.open().backend_id()
    console = make_console()
    console.print(f"{markup(note)}sweep: {len(plan.schedulers)} schedulers x {len(plan.rates)} rates x "
                  f"{repeats} repeats = "
                  f"{plan.size} runs -> {markup(engine.out_dir)}"
                  + (f" ({runner.name} executor, {runner.workers} workers)" if runner.name != "serial" else ""),
                  highlight=False)

    try:
        with engine.progress.task(f"{note}sweep", total=plan.size, unit="runs") as progress:
            watch = SweepWatch(progress)
            result = run_sweep(
                plan,
                make_workload=lambda rate, seed: engine.workload(rate, seed),
                run_one=engine.task_runner(base),
                out_dir=engine.out_dir,
                config_of=lambda sched, wl, rate, seed: engine.planned_config(sched, wl, seed, base),
                executor=runner,
                watch=watch,
                report=lambda line: click.echo(f"warning: {line}", err=True),
                extra_summary={"workload": engine.target, "workload_overrides": engine.overrides,
                               "model": engine.config.model, "timing": note.rstrip(": ") or "measured",
                               "executor": runner.name, "workers": runner.workers},
            )
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: finished runs are kept in {markup(engine.out_dir)}; "
                      "run the same command again to resume", highlight=False)
        raise click.exceptions.Exit(130) from None
    for failure in result.failures:
        console.print(f"[red]failed[/] {markup(failure.scheduler)} @ {format_rate(failure.rate)} req/s seed "
                      f"{failure.seed} after {failure.attempts} tries: {markup(failure.reason)}", highlight=False)
    console.print(sweep_table(result, note))
    # per-(scheduler, rate) points with their intervals across repeats when the summary has them, else per run
    points = load_summary(engine.out_dir).get("points")
    pngs = sweep_plots(result, target=target, note=note.rstrip(": "),
                       points=points if isinstance(points, list) else None)
    if not any(has_slos(r.summary) for r in result.runs if r.complete):
        console.print("[yellow]no SLOs set[/]: no attainment plot (set --ttft-slo / --tpot-slo / --e2e-slo)",
                      highlight=False)
    retried = f", {result.retries} retried" if result.retries else ""
    failed = f", {len(result.failures)} failed" if result.failures else ""
    console.print(f"{result.executed} runs done, {result.resumed} resumed{retried}{failed}; summary "
                  f"{markup(engine.out_dir / 'sweep_summary.json')}; plots {markup(', '.join(str(p) for p in pngs))}",
                  highlight=False)
    if write_html:
        with engine.progress.task("writing report.html"):
            page = write_sweep_page(result, pngs)
        console.print(f"report: {markup(page)}", highlight=False)
    console.print(f"compare one rate: bsbench compare {markup(engine.out_dir / RUNS_DIR)}", highlight=False)

