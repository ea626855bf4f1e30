"""`bsbench validate-sim`: replay held-out workloads with the real runner and with the simulator calibrated on
this device, and print how far the simulator is: per step, end to end, and in the ranking of the schedulers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from bsbench.commands._types import param_type
from bsbench.commands.calibrate import real_config, real_model_options, residuals_table
from bsbench.paths import check_output_dir
from bsbench.safe_text import markup
from bsbench.units import format_percent, format_rate
from bsbench.values import Integer

RANK_KEYS = ("output_throughput", "median_e2el_ms")  # the schedulers' order is checked on each
E2E_SHOWN = ("median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_e2el_ms", "p99_e2el_ms",
             "output_throughput", "slo_attainment")
TARGET = 0.10  # issue 10's accuracy targets: per-step MAPE, throughput and median E2E within 10%


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"


@click.command("validate-sim")
@real_model_options
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Calibration of this device for the model [default: calibrate here, between the real runs, and "
                   "save it under --out].")
@click.option("--calibration-repeats", type=param_type(Integer(1, 1000)), default=12, show_default=True,
              help="Measured passes over the grid when no --calibration is given: taken between the real runs, "
                   "spread evenly over them plan by plan (a few plans before each run).")
@click.option("--calibrate-with-runs", is_flag=True,
              help="When calibrating here, also fit synthetic engine runs (as `calibrate --with-runs`), spread "
                   "between the real runs too.")
@click.option("--workloads", default="sharegpt-vllm,mixed-longtail", show_default=True,
              help="Comma-separated held-out workloads (spec names or files); never the calibration grid, and "
                   "distinct (two that give the same requests with these flags are refused).")
@click.option("--schedulers", default="static,continuous,uellm,bucket", show_default=True)
@click.option("--rates", default="4,inf", show_default=True, help="Request rates (as sweep --rates).")
@click.option("--real-repeats", type=param_type(Integer(1, 100)), default=3, show_default=True,
              help="Real runs of every (workload, rate, scheduler), taken in rounds (each round runs every "
                   "workload, rate and scheduler once); the simulator is compared with their median (one run of a "
                   "shared machine can land in a slow spell).")
@click.option("--num-requests", "-n", type=param_type(Integer(1, 100000)), default=24, show_default=True)
@click.option("--max-output-len", type=param_type(Integer(1, 100000)), default=16, show_default=True)
@click.option("--max-prompt-len", type=param_type(Integer(1, 100000)), default=256, show_default=True)
@click.option("--e2e-slo", default=None, help="End-to-end SLO in ms for every request (attainment then varies).")
@click.option("--seed", type=param_type(Integer(0, 2**31 - 1)), default=0, show_default=True)
@click.option("--targets", is_flag=True, help="Also print PASS/MISS against the accuracy targets of issue 10.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results") / "validate-sim", show_default=True,
              help="Records (real/ and sim/), the calibration and validation.json.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(calibration: Path | None, calibration_repeats: int, calibrate_with_runs: bool, workloads: str,
            schedulers: str, rates: str, real_repeats: int, num_requests: int, max_output_len: int, max_prompt_len: int,
            e2e_slo: str | None, seed: int, targets: bool, out_dir: Path, quiet: bool, **kwargs: Any) -> None:
    """How close is the simulator to this device? Every (workload, rate, scheduler) runs on the same request
    list on the real runner (wall clock; --real-repeats rounds, each of every workload, rate and scheduler, so that
    a drift of the machine over minutes weighs on every cell alike), whose every step is
    also priced by the calibrated cost model, and once on the simulated backend with that calibration, the same
    KV budget and block size. Simulated figures are compared with the median of the real runs. Without
    --calibration, the device is calibrated here, its grid passes spread plan by plan between the real runs (a
    machine's slow spell then weighs on both sides alike), and the simulator runs after the last real run.

    Prints the per-step error by layout (MAPE, P90, bias) beside the noise of the real steps themselves, the
    end-to-end errors (TTFT, TPOT, E2E median and p99, throughput, SLO attainment) beside the real runs' spread,
    whether the simulator orders the schedulers as the real runs do, and how many of the pairs of schedulers
    that every real run orders alike it orders so (the other pairs are ties within the machine's noise).
    """
    from bsbench.backends.run import open_session, run_benchmark
    from bsbench.experiments.calib_between_runs import CalibrationBetweenRuns
    from bsbench.experiments.calib_runs import calibration_workloads, check_held_out
    from bsbench.experiments.real_run_order import real_run_order
    from bsbench.experiments.sweep import parse_names, parse_rates
    from bsbench.jsonio import write_json_atomic
    from bsbench.model.shape import model_shape
    from bsbench.model.source import check_model_source
    from bsbench.progress import Progress
    from bsbench.report.comparison import console as make_console
    from bsbench.schedulers.registry import all_schedulers
    from bsbench.sim.accuracy import errors_by_layout, repeat_noise
    from bsbench.sim.calibration import load_calibration
    from bsbench.sim.shadow import TimedRunner
    from bsbench.workloads.build import load_workload

    names = parse_names(schedulers, sorted(all_schedulers()))
    rate_list = parse_rates(rates)
    workload_names = [w.strip() for w in workloads.split(",") if w.strip()]
    out = check_output_dir(out_dir, "--out")
    config = real_config(kwargs)
    check_model_source(config.model)
    calibration_file = calibration
    calibration_runs: list[dict[str, Any]] = []
    calibration_points: list[dict[str, Any]] = []
    if calibration_file is not None:  # a bad file, or one of another model: exit 2 before the model loads
        given = load_calibration(calibration_file)
        given.check_applies(model_shape(config.model, given.dtype), given.dtype, config.block_size)
        calibration_runs = given.settings.get("runs") or []
        calibration_points = given.points
    run_workloads = calibration_workloads() if calibration_file is None and calibrate_with_runs else None
    if run_workloads is not None:
        calibration_runs = [{"workload": w.name, "fingerprint": w.fingerprint()} for w in run_workloads]
    cells_in: list[tuple[str, float, Any]] = []
    progress = Progress(enabled=not quiet)
    for workload_name in workload_names:
        for rate in rate_list:
            overrides = {"num_requests": num_requests, "max_output_len": max_output_len, "seed": seed, "rate": rate,
                         "max_prompt_len": max_prompt_len, "e2e_slo": e2e_slo}
            with progress.task("loading the workload"):
                cells_in.append((workload_name, rate, load_workload(workload_name, overrides)))
    check_held_out(calibration_runs, [workload for _, _, workload in cells_in])
    _check_distinct(cells_in)
    console = make_console()
    real = open_session(config, progress)
    interleaved = None if calibration_file is not None else CalibrationBetweenRuns(
        config, real, calibration_repeats, run_workloads, len(cells_in) * real_repeats * len(names), progress)
    timed = TimedRunner(real.runner, real.block_size)
    watched = dataclasses.replace(real, runner=timed)
    console.print(f"validating the simulator against {markup(real.describe())}: {len(workload_names)} workloads x "
                  f"{len(rate_list)} rates x {len(names)} schedulers x {real_repeats} real runs, {num_requests} "
                  "requests each" + ("; calibrating between the real runs" if interleaved else ""), highlight=False)
    real_runs: list[dict[str, list[Any]]] = [{name: [] for name in names} for _ in cells_in]
    steps: list[dict[str, list[tuple[Any, float]]]] = [{name: [] for name in names} for _ in cells_in]
    for slot, run in enumerate(real_run_order(len(cells_in), real_repeats, names)):
        if interleaved is not None:
            interleaved.before_run(slot)
        first_step = len(timed.steps)
        real_runs[run.cell][run.scheduler].append(
            run_benchmark(cells_in[run.cell][2], dataclasses.replace(config, scheduler=run.scheduler,
                                                                     out_dir=out / "real"),
                          progress=progress, session=watched))
        steps[run.cell][run.scheduler].extend(timed.steps[first_step:])
    if interleaved is not None:
        fitted, calibration_file = interleaved.finish(out / "calibration.json")
        calibration_points = fitted.points
        console.print(residuals_table(fitted.points, "calibration (taken between the real runs): fit residuals"))
    sim_config = dataclasses.replace(config, backend="sim", clock="virtual", calibration=calibration_file,
                                     dtype=real.dtype, kv_memory=real.kv_budget_bytes, device="auto")
    sim = open_session(sim_config, progress)
    cells = [_cell(workload_name, rate, workload, real_runs[c], steps[c], sim, sim_config, out, progress,
                   real_repeats)
             for c, (workload_name, rate, workload) in enumerate(cells_in)]

    step_stats = errors_by_layout(row for cell in cells for run in cell["runs"].values() for row in run["steps"])
    noise = repeat_noise(p for p in calibration_points if p.get("source", "grid") == "grid")
    _print_report(console, cells, step_stats, sim.describe(), noise, real_repeats)
    grid_only = interleaved.grid_only_model() if interleaved is not None else None
    grid_only_stats = None
    if grid_only is not None:  # the same real steps priced without the calibration runs: which fit generalises?
        grid_only_stats = errors_by_layout((work.layout, measured, grid_only.step_time(work)) for by_name in steps
                                           for rows in by_name.values() for work, measured in rows)
        console.print(f"fitted to the grid alone (without the calibration runs' steps), the cost model would "
                      f"price these real steps at MAPE {format_percent(grid_only_stats['all']['mape'])}, bias "
                      f"{_pct(grid_only_stats['all']['bias'])} (with them: "
                      f"{format_percent(step_stats['all']['mape'])}, {_pct(step_stats['all']['bias'])})",
                      highlight=False)
    verdicts = _targets(cells, step_stats) if targets else []
    if targets:
        for label, passed, figure in verdicts:
            console.print(f"{'[bold green]PASS[/]' if passed else '[bold red]MISS[/]'} {label}: {figure}",
                          highlight=False)
    decided = sum(c["decisive_pairs"][k]["decided"] for c in cells for k in RANK_KEYS)
    kept = sum(c["decisive_pairs"][k]["kept"] for c in cells for k in RANK_KEYS)
    console.print(f"pairs of schedulers every real run orders alike (the rest are ties within this machine's noise): "
                  f"the simulator orders {kept} of {decided} the same way", highlight=False)
    report = {"kind": "bsbench-sim-validation", "version": 4, "calibration": str(calibration_file),
              "calibration_between_real_runs": interleaved is not None,
              "simulated": sim.describe(), "real": real.describe(), "real_repeats": real_repeats,
              "per_step": step_stats, "per_step_grid_only": grid_only_stats, "step_repeat_noise": noise,
              "cells": [{**c, "runs": {n: {k: v for k, v in r.items() if k != "steps"} for n, r in c["runs"].items()}}
                        for c in cells],
              "targets": [{"target": label, "passed": passed, "measured": figure}
                          for label, passed, figure in verdicts]}
    path = write_json_atomic(report, out / "validation.json")
    console.print(f"records in {markup(out)}/real and /sim; report {markup(path)}", highlight=False)


def _check_distinct(cells: list[tuple[str, float, Any]]) -> None:
    """BsbenchError when two named workloads give the same requests at a rate (a ranking "kept on two workloads"
    would then be one workload counted twice)."""
    from bsbench.errors import BsbenchError

    seen: dict[tuple[float, str], str] = {}
    for name, rate, workload in cells:
        first = seen.setdefault((rate, workload.fingerprint()), name)
        if first != name:
            raise BsbenchError(f"workloads {first!r} and {name!r} give the same requests with these flags: "
                               "validate on distinct workloads")


def _cell(workload_name: str, rate: float, workload: Any, real_runs: dict[str, list[Any]],
          steps: dict[str, list[tuple[Any, float]]], sim: Any, sim_config: Any, out: Path, progress: Any,
          real_repeats: int) -> dict[str, Any]:
    """One (workload, rate): the simulated run of every scheduler against the median of its real runs, the real
    steps priced by the simulator's cost model, and the rankings."""
    from bsbench.backends.run import run_benchmark
    from bsbench.sim.accuracy import (
        decisive_pairs,
        end_to_end_errors,
        error_stats,
        median_summary,
        ranking,
        ranking_preserved,
        spread,
    )

    runs: dict[str, dict[str, Any]] = {}
    for name, real_list in real_runs.items():
        sim_record = run_benchmark(workload, dataclasses.replace(sim_config, scheduler=name, out_dir=out / "sim"),
                                   progress=progress, session=sim)
        repeats = [r.summary for r in real_list]
        real_median = median_summary(repeats)
        priced = [(work.layout, measured, sim.cost_model.step_time(work)) for work, measured in steps[name]]
        runs[name] = {"real": real_median, "sim": sim_record.summary,
                      "errors": end_to_end_errors(real_median, sim_record.summary),
                      "real_spread": {key: spread(repeats, key) for key in E2E_SHOWN},
                      "real_repeats": [{k: r.get(k) for k in E2E_SHOWN} for r in repeats],
                      "steps": priced,
                      "step_error": error_stats([m for _, m, _ in priced], [p for _, _, p in priced]),
                      "records": [*(str(r.path) for r in real_list), str(sim_record.path)]}
    preserved = {key: ranking_preserved({n: r["real"][key] for n, r in runs.items()},
                                        {n: r["sim"][key] for n, r in runs.items()}, key) for key in RANK_KEYS}
    return {"workload": workload_name, "rate": rate, "runs": runs, "ranking_preserved": preserved,
            "ranking": {key: {"real": ranking({n: r["real"][key] for n, r in runs.items()}, key),
                              "sim": ranking({n: r["sim"][key] for n, r in runs.items()}, key)}
                        for key in RANK_KEYS},
            "real_repeats_agreeing": {key: _repeats_agreeing(runs, key, real_repeats) for key in RANK_KEYS},
            "decisive_pairs": {key: dict(zip(("decided", "kept"), decisive_pairs(
                {n: [rep[key] for rep in r["real_repeats"]] for n, r in runs.items()},
                {n: r["sim"][key] for n, r in runs.items()}))) for key in RANK_KEYS}}


def _repeats_agreeing(runs: dict[str, dict[str, Any]], key: str, repeats: int) -> int:
    """How many real repeats, on their own, order the schedulers on `key` as the median of the repeats does."""
    from bsbench.sim.accuracy import ranking

    median_order = ranking({n: r["real"][key] for n, r in runs.items()}, key)
    return sum(ranking({n: r["real_repeats"][i][key] for n, r in runs.items()}, key) == median_order
               for i in range(repeats))


def _print_report(console: Any, cells: list[dict[str, Any]], step_stats: dict[str, Any], simulated: str,
                  noise: dict[str, Any], repeats: int) -> None:
    from rich.table import Table

    table = Table(title=f"per-step error of the cost model on the real runs' steps ({markup(simulated)})",
                  title_justify="left", header_style="bold")
    for col in ("layout", "steps", "MAPE", "P90 APE", "bias"):
        table.add_column(col, justify="left" if col == "layout" else "right")
    for layout, s in step_stats.items():
        table.add_row(layout, str(s["n"]), format_percent(s["mape"]), format_percent(s["p90_ape"]), _pct(s["bias"]))
    console.print(table)
    if noise["n"]:
        console.print(f"noise of the real steps themselves: one timing of a calibration plan lies "
                      f"{format_percent(noise['mean'])} from the median of its repeats on average "
                      f"(P90 {format_percent(noise['p90'])}, {noise['n']} timings); an exact cost model would err "
                      "by that much per step", highlight=False)
    e2e = Table(title=f"end-to-end error, simulated vs the median of {repeats} real run(s) ((sim - real) / real); "
                      "spread: (max - min) / median over the real runs; step bias: the cost model's mean error on "
                      "their steps", title_justify="left", header_style="bold")
    for col in ("workload", "rate", "scheduler", *E2E_SHOWN, "spread thr", "spread p50 e2el", "step bias"):
        e2e.add_column(col.replace("_ms", "").replace("median_", "p50 ").replace("_", " "),
                       justify="left" if col in ("workload", "scheduler") else "right")
    for cell in cells:
        for name, run in cell["runs"].items():
            spreads = run["real_spread"]
            e2e.add_row(markup(cell["workload"]), format_rate(cell["rate"]), markup(name),
                        *(_pct(run["errors"].get(k)) for k in E2E_SHOWN),
                        format_percent(spreads.get("output_throughput")),
                        format_percent(spreads.get("median_e2el_ms")), _pct(run["step_error"]["bias"]))
    console.print(e2e)
    ranks = Table(title="ranking of the schedulers, real (median of the runs) vs simulated; agreeing: real runs that "
                        "alone give the real order; decisive pairs: pairs of schedulers every real run orders alike, "
                        "and how many of them the simulator orders so", title_justify="left", header_style="bold")
    for col in ("workload", "rate", *RANK_KEYS):
        ranks.add_column(col)
    for cell in cells:
        shown = []
        for key in RANK_KEYS:
            order = cell["ranking"][key]
            mark = "[green]same[/]" if cell["ranking_preserved"][key] else "[red]differs[/]"
            pairs = cell["decisive_pairs"][key]
            shown.append(f"{mark}: real {' > '.join(order['real'])}; sim {' > '.join(order['sim'])} "
                         f"(agreeing {cell['real_repeats_agreeing'][key]}/{repeats}; decisive pairs kept "
                         f"{pairs['kept']}/{pairs['decided']})")
        ranks.add_row(markup(cell["workload"]), format_rate(cell["rate"]), *shown)
    console.print(ranks)


def _targets(cells: list[dict[str, Any]], step_stats: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, passed, measured figure) for issue 10's accuracy targets."""
    out = []
    mape = step_stats["all"]["mape"]
    out.append((f"per-step MAPE <= {TARGET:.0%} on held-out workloads", mape is not None and mape <= TARGET,
                f"{format_percent(mape)} over {step_stats['all']['n']} steps"))
    for key, label in (("output_throughput", "throughput"), ("median_e2el_ms", "median E2E")):
        errors = {f"{c['workload']}@{format_rate(c['rate'])}/{n}": r["errors"].get(key)
                  for c in cells for n, r in c["runs"].items()}
        worst = max(errors.items(), key=lambda kv: abs(kv[1]) if kv[1] is not None else float("inf"))
        passed = all(e is not None and abs(e) <= TARGET for e in errors.values())
        within = sum(1 for e in errors.values() if e is not None and abs(e) <= TARGET)
        figure = f"worst {worst[0]} {_pct(worst[1])}; {within}/{len(errors)} within"
        out.append((f"{label} within {TARGET:.0%} of the real run for each scheduler", passed, figure))
    by_workload: dict[str, int] = {}
    for cell in cells:
        if all(cell["ranking_preserved"].values()):
            by_workload[cell["workload"]] = by_workload.get(cell["workload"], 0) + 1
    good = [w for w, n in by_workload.items() if n >= 2]
    figure = (f"preserved (both {' and '.join(RANK_KEYS)}) in {sum(by_workload.values())}/{len(cells)} "
              f"(workload, rate) cells; workloads with >= 2 rates: {', '.join(good) or 'none'}")
    out.append(("four-scheduler ranking preserved on >= 2 workloads at >= 2 rates", len(good) >= 2, figure))
    return out
