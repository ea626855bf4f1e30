"""`bsbench gate RECORDS... --baseline FILE`: fail (exit 1) when fresh runs regressed against a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from rich.table import Table

from bsbench.paths import check_output_file
from bsbench.record import read_records
from bsbench.safe_text import markup
from bsbench.units import format_percent

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from bsbench.experiments import gate as gating


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if metric in ("failed", "rejected", "oom_events"):
        return f"{value:g}"
    if metric in ("padding_ratio", "slo_attainment"):
        return format_percent(value)
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def _change(check: gating.Check) -> str:
    if check.baseline is None or check.current is None:
        return ""
    if check.baseline == 0:
        return f"{check.current - check.baseline:+g}" if check.current != 0 else "0"
    return f"{100 * (check.current - check.baseline) / abs(check.baseline):+.1f}%"


@click.command("gate")
@click.argument("records", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Baseline JSON (e.g. baselines/cpu-tiny.json).")
@click.option("--tolerance", default="5%", show_default=True,
              help="Allowed relative regression (5% or 0.05); counts may grow by tolerance x num_requests.")
@click.option("--ratio-tolerance", default=None,
              help="Tolerance for ratios between schedulers [default: --tolerance].")
@click.option("--time-tolerance", default=None,
              help="Tolerance for absolute throughput, latency and attainment (same device only) "
                   "[default: --tolerance].")
@click.option("--absolute/--no-absolute", default=True, show_default=True,
              help="Gate absolute throughput and latency when the baseline's device name matches; "
                   "--no-absolute on a shared or noisy runner (counts, padding and ratios are still gated).")
@click.option("--single-runs", is_flag=True,
              help="Judge measured (wall-clock) ratios and times of single runs too, on intervals over their "
                   "requests, which cannot see run-to-run noise [default: not gated; sweep with --repeats].")
@click.option("--reference", default=None, metavar="NAME",
              help="Scheduler the ratios divide by [default: the baseline's, else continuous].")
@click.option("--update", is_flag=True, help="Write the baseline from RECORDS instead of checking.")
@click.option("--show-all", is_flag=True, help="List passing checks too.")
def command(records: tuple[Path, ...], baseline_path: Path, tolerance: str, ratio_tolerance: str | None,
            time_tolerance: str | None, absolute: bool, single_runs: bool, reference: str | None,
            update: bool, show_all: bool) -> None:
    """Check run records against a baseline; exit 1 with a table of what regressed.

    Gates first on what a noisy machine cannot fake (OOM/failed/rejected
    counts, padding ratio, throughput and latency ratios between schedulers
    at the same rate), and on absolute times only when the baseline was
    taken on the same device. Measured ratios and times are judged two-sample
    (the current 95% interval against the baseline's) and only over repeats.
    """

    from bsbench.experiments import gate as gating  # numpy and the record reader: imported only when records are gated

    # lazy: loads numpy, pandas, pyarrow
    from bsbench.report.comparison import console as make_console

    if update:
        check_output_file(baseline_path, "--baseline")  # before reading anything
    tol = gating.parse_tolerance(tolerance)
    ratio_tol = gating.parse_tolerance(ratio_tolerance) if ratio_tolerance is not None else tol
    time_tol = gating.parse_tolerance(time_tolerance) if time_tolerance is not None else tol
    skipped: list[str] = []
    loaded = read_records([str(p) for p in records], skipped=skipped)
    console = make_console()
    if update:
        path = gating.write_baseline(loaded, baseline_path, reference)
        runs = gating.build_baseline(loaded, reference)["runs"]
        timing = gating.build_baseline(loaded, reference)["timing"]
        console.print(f"baseline written: {markup(path)} ({len(runs)} runs: {markup(', '.join(runs))}; times "
                      f"{markup(timing)})", highlight=False)
        return
    baseline = gating.load_baseline(baseline_path)
    timing = sorted({r.config.timing_label() for r in loaded if r.config.simulated})
    if timing:
        console.print(f"[bold magenta]{markup('; '.join(timing))}[/]: gating simulated figures", highlight=False)
    result = gating.check_records(loaded, baseline, tol, reference, ratio_tolerance=ratio_tol,
                                  time_tolerance=time_tol, absolute=absolute, single_runs=single_runs)
    shown = result.checks if show_all else result.failures
    if shown:
        table = Table(title="regressions" if not show_all else "gate checks", title_justify="left",
                      header_style="bold")
        for col, justify in (("check", "left"), ("run", "left"), ("metric", "left"), ("baseline", "right"),
                             ("now", "right"), ("change", "right"), ("limit", "right"), ("result", "left")):
            table.add_column(col, justify=cast("JustifyMethod", justify), overflow="fold")
        for c in shown:
            status = "[green]ok[/]" if c.passed else "[bold red]REGRESSED[/]"
            if c.note:
                status += f" [dim]{markup(c.note)}[/]"
            table.add_row(c.category, markup(c.run), markup(c.metric), _fmt(c.baseline, c.metric),
                          _fmt(c.current, c.metric), _change(c), _fmt(c.limit, c.metric), status)
        console.print(table)
    for note in result.notes:
        console.print(f"[dim]note: {markup(note)}[/]", highlight=False)
    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    console.print(f"gate {verdict}: {len(result.checks)} checks, {len(result.failures)} regressed "
                  f"(tolerance {100 * tol:g}%, ratios {100 * ratio_tol:g}%, times {100 * time_tol:g}%; "
                  f"baseline {markup(baseline_path)})", highlight=False)
    if not result.passed:
        raise click.exceptions.Exit(1)
