"""`bsbench validate-sim`: replay held-out workloads with the real runner and with the simulator calibrated on
this device, and print how far the simulator is: per step, end to end, and in the ranking of the schedulers
(experiments/validate_sim.py runs it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bsbench.commands._types import param_type
from bsbench.commands.calibrate import real_config, real_model_options
from bsbench.paths import check_output_dir
from bsbench.progress import Progress
from bsbench.report.validation_tables import grid_only_line, print_validation_report
from bsbench.safe_text import markup
from bsbench.schedulers.registry import all_schedulers
from bsbench.values import Integer


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
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results") / "validate-sim", show_default=True,
              help="Records (real/ and sim/), the calibration and validation.json.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(calibration: Path | None, calibration_repeats: int, calibrate_with_runs: bool, workloads: str,
            schedulers: str, rates: str, real_repeats: int, num_requests: int, max_output_len: int, max_prompt_len: int,
            e2e_slo: str | None, seed: int, out_dir: Path, quiet: bool, **kwargs: Any) -> None:
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
    # the experiment loads torch and the model stack: imported here, so that --help stays quick
    from bsbench.experiments.sweep import parse_names, parse_rates

    # lazy: loads torch, transformers, numpy
    from bsbench.experiments.validate_sim import ValidationSetting, run_validation

    # lazy: loads numpy
    from bsbench.report.calibration_tables import residuals_table

    # lazy: loads numpy, pandas, pyarrow
    from bsbench.report.comparison import console as make_console

    names = parse_names(schedulers, sorted(all_schedulers()))
    rate_list = parse_rates(rates)
    workload_names = [w.strip() for w in workloads.split(",") if w.strip()]
    out = check_output_dir(out_dir, "--out")
    setting = ValidationSetting(
        real_config(kwargs), tuple(workload_names), tuple(rate_list), tuple(names), out,
        real_repeats=real_repeats, num_requests=num_requests, max_output_len=max_output_len,
        max_prompt_len=max_prompt_len, e2e_slo=e2e_slo, seed=seed, calibration=calibration,
        calibration_repeats=calibration_repeats, calibrate_with_runs=calibrate_with_runs)
    console = make_console()

    def started(real: str, calibrating: bool) -> None:
        console.print(f"validating the simulator against {markup(real)}: {len(workload_names)} workloads x "
                      f"{len(rate_list)} rates x {len(names)} schedulers x {real_repeats} real runs, {num_requests} "
                      "requests each" + ("; calibrating between the real runs" if calibrating else ""), highlight=False)

    result = run_validation(setting, Progress(enabled=not quiet), started, lambda points: console.print(
        residuals_table(points, "calibration (taken between the real runs): fit residuals")))
    print_validation_report(console, result.cells, result.step_stats, result.simulated, result.noise, real_repeats)
    if result.grid_only_stats is not None:
        console.print(grid_only_line(result.grid_only_stats, result.step_stats), highlight=False)
    kept, decided = result.decisive_pairs()
    console.print(f"pairs of schedulers every real run orders alike (the rest are ties within this machine's noise): "
                  f"the simulator orders {kept} of {decided} the same way", highlight=False)
    console.print(f"records in {markup(out)}/real and /sim; report {markup(result.path)}", highlight=False)
