"""`bsbench capacity`: the highest request rate whose SLO attainment stays >= a target."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bsbench.commands._engine_runner import engine_runner_from_cli
from bsbench.commands._executor_options import executor_options
from bsbench.commands._help import GroupedCommand
from bsbench.commands._run_options import run_options
from bsbench.commands._types import param_type
from bsbench.commands._workload_options import workload_options
from bsbench.errors import BsbenchError
from bsbench.experiments.capacity import capacity_search, search_and_confirm
from bsbench.experiments.capacity_probes import probe_round
from bsbench.experiments.capacity_repeats import CapacityOverRepeats, capacity_ratio, capacity_table, slo_text
from bsbench.experiments.run_length import DEFAULT_MAX_REQUESTS, probe_length
from bsbench.experiments.sweep import parse_names
from bsbench.jsonio import write_json_atomic
from bsbench.metrics import steady
from bsbench.record import read_records
from bsbench.safe_text import markup
from bsbench.units import format_percent, format_rate
from bsbench.values import POSITIVE, Integer, Invalid, Real
from bsbench.workloads.build import load_workload


def parse_search_tolerance(text: str) -> tuple[float, bool]:
    """'5%' -> (0.05, relative); '0.25' -> (0.25 req/s, absolute). NaN, inf and <= 0 are refused."""
    raw = text.strip()
    relative = raw.endswith("%")
    try:
        value = POSITIVE.check(raw[:-1] if relative else raw)
    except Invalid:
        raise BsbenchError(f"--tolerance must look like 5% (relative) or 0.25 (req/s), a finite number > 0; "
                           f"got {text!r}") from None
    return (value / 100 if relative else value), relative


@click.command("capacity", cls=GroupedCommand)
@click.option("--schedulers", "--scheduler", "schedulers", default="continuous", show_default=True,
              help="Scheduler, or several comma-separated (each searched on its own, with ratios).")
@click.option("--attainment", "target", type=param_type(Real(low=0, low_open=True, high=1)), default=0.8,
              show_default=True, help="Target SLO attainment (BucketServe: 0.8).")
@click.option("--start-rate", type=param_type(POSITIVE), default=1.0, show_default=True,
              help="First rate probed (req/s); doubled while the target holds, halved while it does not.")
@click.option("--max-rate", type=param_type(POSITIVE), default=256.0, show_default=True,
              help="Stop doubling here (a search still passing here says the SLO is too loose).")
@click.option("--tolerance", default="5%", show_default=True,
              help="Bisection stops when the bracket is this narrow: 5% of the rate, or req/s (0.25).")
@click.option("--reference", default=None, metavar="NAME", help="Scheduler the ratios divide by [default: first].")
@click.option("--max-requests", type=param_type(Integer(2, 10_000_000)), default=DEFAULT_MAX_REQUESTS,
              show_default=True, help="Budget of requests per probe: a probe whose window needs more is refused "
                                      "in one line (runs are sized by time: rate x (warm-up + window + cool-down)).")
@click.option("--html/--no-html", "write_html", default=True, show_default=True,
              help="Write OUT/report.html: one self-contained page (plots embedded) with the capacities, attainment "
                   "at every probe and every group's table and configuration.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@executor_options
@workload_options
@run_options
@click.pass_context
def command(ctx: click.Context, schedulers: str, target: float, start_rate: float, max_rate: float, tolerance: str,
            reference: str | None, max_requests: int, write_html: bool, quiet: bool, repeats: int, executor: str,
            workers: int | None, ray_address: str | None, **kwargs: Any) -> None:
    """Find each scheduler's load capacity: the highest rate with SLO attainment >= --attainment.

    Doubling then bisection, one engine run per probed rate on the same
    seeded request list (arrivals rescaled to the rate). With --repeats K one
    search per seed (SEED, SEED+1, ...): the capacity is the mean with a 95%
    interval over them, each search's bracketing probes shown. A search that
    still passes at --max-rate (or misses at its lowest probe) says the SLO is
    too loose (too tight) and names it. Records go to OUT (--out, default
    results/capacity), with capacity_summary.json.

    Each probe runs arrivals for a measurement window of --duration seconds
    [default: max(60 s, 10 x the TTFT SLO)] after the warm-up, plus a
    cool-down; the request count follows from the rate (--num-requests is
    ignored). A probe passes when the attainment over its window reaches the
    target and its queue did not grow without bound (overloaded). Each found
    capacity is confirmed at twice the window; the table shows the change.
    """

    # lazy: loads pandas, pyarrow
    from bsbench.report.comparison import console as make_console

    tol, relative = parse_search_tolerance(tolerance)
    if max_rate < start_rate:
        raise BsbenchError(f"--max-rate {max_rate:g} is below --start-rate {start_rate:g}")
    engine = engine_runner_from_cli(ctx, kwargs, "capacity", quiet)
    names = engine.check_schedulers(parse_names(schedulers, engine.known_schedulers))
    if reference is not None and reference not in names:
        raise BsbenchError(f"--reference {reference!r} is not one of --schedulers {','.join(names)}")
    reference = reference or names[0]
    runner = engine.executor(executor, workers, ray_address)  # its flags are checked first
    seed = engine.base_seed()
    first = engine.workload(start_rate, seed)
    if all(r.slo.is_empty() for r in first.requests):  # before the model loads and anything runs
        runner.close()
        raise BsbenchError("capacity needs an SLO to attain: set --ttft-slo, --tpot-slo or --e2e-slo (or "
                           "--goodput), or use a workload whose requests carry SLOs")
    length = probe_length(engine.config.window, first, max_requests)
    length.requests_at(start_rate)  # a budget that cannot be met: one line, before anything runs (and at any probe)
    seeds = [seed + i for i in range(repeats)]
    note = engine.timing_note()
    console = make_console()
    plural = f", {repeats} searches (seeds {seeds[0]}..{seeds[-1]})" if repeats > 1 else ""
    console.print(f"{markup(note)}capacity of {', '.join(names)} at SLO attainment >= {100 * target:g}%: "
                  f"one run per probed rate{plural}, "
                  f"doubling from {start_rate:g} req/s (up to {max_rate:g}), then bisection to {tolerance}; "
                  f"each probe a {length.window_s:g} s window after a {length.warmup.text()} warm-up, each "
                  f"capacity confirmed at {2 * length.window_s:g} s -> {engine.out_dir}", highlight=False)
    slo = slo_text(first.spec.get("slo") or {}, target)

    searches = {(name, repeat): capacity_search(target, start_rate, tol, max_rate, relative=relative)
                for name in names for repeat in range(repeats)}

    def show(key: tuple[str, int], outcome: Any, path: Path | None) -> None:
        name = key[0]
        label = f"{markup(note)}{markup(name)} @ {format_rate(outcome.task.rate)} req/s" + (
            f" seed {outcome.task.seed}" if repeats > 1 else "")
        if path is None:
            console.print(f"{label}: [red]failed[/] after {outcome.attempts} tries: {markup(outcome.error)}",
                          highlight=False)
            return
        summary = outcome.record.summary
        att = steady(summary, "slo_attainment")
        overloaded = bool(summary.get("overloaded"))
        passed = att is not None and att >= target and not overloaded
        retried = f", after {outcome.attempts} tries" if outcome.attempts > 1 else ""
        console.print(f"{label}: attainment in window {format_percent(att, '—')}"
                      f"{' [red]overloaded[/]' if overloaded else ''} "
                      f"({'pass' if passed else 'miss'}{retried})", highlight=False)

    def probe_all_at(doubled: bool) -> Any:
        run = length.doubled() if doubled else length
        engine.config = dataclasses.replace(engine.config, window=run.spec())
        task_runner = engine.task_runner(seed)

        def sized(rate: float, repeat_seed: int) -> Any:
            return load_workload(engine.target, {**engine.overrides, "rate": rate, "seed": repeat_seed,
                                                 "num_requests": run.requests_at(rate)})

        def probe_all(rates: dict[Any, float]) -> dict[Any, tuple[float | None, dict[str, Any]]]:
            """One round: every search's next probe, run at once on the executor; the driver writes the records."""
            if doubled:
                console.print(f"confirming at a {run.window_s:g} s window: "
                              + ", ".join(f"{k[0]} @ {format_rate(r)}" for k, r in rates.items()), highlight=False)
            return probe_round(rates, lambda key: (key[0], seeds[key[1]]), sized,
                               lambda name, workload, repeat_seed: engine.planned_config(name, workload,
                                                                                         repeat_seed, seed),
                               runner, task_runner, engine.out_dir, show)
        return probe_all

    try:
        found, confirmed = search_and_confirm(searches, probe_all_at, tol, max_rate, relative)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]", highlight=False)
        raise click.exceptions.Exit(130) from None
    finally:
        runner.close()
    results = {name: CapacityOverRepeats(name, seeds, [found[(name, repeat)] for repeat in range(repeats)], slo,
                                         max_rate, [confirmed[(name, repeat)] for repeat in range(repeats)],
                                         length.window_s) for name in names}

    title = f"{markup(note)}load capacity at SLO attainment >= {100 * target:g}%"
    if repeats > 1:
        title += f": mean and 95% t-interval over {repeats} seeds, ratios paired by seed"
    table = Table(title=title, title_justify="left", header_style="bold")
    header, rows = capacity_table(results, reference)
    for col in header:
        table.add_column(markup(col), justify="left" if col == "scheduler" else "right")
    for row in rows:
        table.add_row(*(markup(cell) for cell in row))
    ratios = {name: capacity_ratio(res, results[reference]) for name, res in results.items()}
    console.print(table)
    for name, res in results.items():
        problem = res.problem()
        if problem:
            console.print(f"[yellow]{markup(name)}[/]: {markup(problem)}", highlight=False)
    summary = {"kind": "bsbench-capacity-summary", "version": 2, "target": target, "reference": reference,
               "timing": note.rstrip(": ") or "measured", "slo": slo,
               "workload": engine.target, "workload_overrides": engine.overrides, "seed": seed, "seeds": seeds,
               "schedulers": {name: res.to_dict() for name, res in results.items()},
               "ratios": {name: ({"text": text, **interval.to_json()} if interval is not None else text)
                          for name, (text, interval) in ratios.items()}}
    path = write_json_atomic(summary, engine.out_dir / "capacity_summary.json")
    console.print(f"records in {markup(engine.out_dir)}; summary {markup(path)}", highlight=False)
    if write_html:
        with engine.progress.task("writing report.html"):
            page = write_capacity_page(engine.out_dir, summary, results, header, rows, target, note.rstrip(": "))
        console.print(f"report: {markup(page)}", highlight=False)


def write_capacity_page(out_dir: Path, summary: dict[str, Any], results: dict[str, Any], header: list[str],
                        rows: list[list[str]], target: float, note: str) -> Path:
    """OUT/report.html: the capacity table, attainment at every probed rate (OUT/attainment_at_probes.png) and
    the probes' records grouped."""
    # lazy: loads pandas, pyarrow
    from bsbench.report.html_report import write_capacity_report

    # lazy: loads matplotlib
    from bsbench.report.plots_sweep import versus_rate

    points = [{"scheduler": name, "rate": p.rate, "slo_attainment": p.attainment,
               "overloaded": bool(p.info.get("overloaded"))}
              for name, res in results.items() for search in res.results for p in search.probes]
    png = versus_rate(points, "slo_attainment", "SLO attainment", out_dir / "attainment_at_probes.png",
                      target=target, note=note)
    paths = list(dict.fromkeys(p.info["path"] for res in results.values() for search in res.results
                               for p in search.probes if p.info.get("path")))
    records = read_records(paths) if paths else []
    return write_capacity_report(out_dir, summary, records, rows, header, png)
