"""validate-sim's tables: the cost model's per-step error, the end-to-end errors and the rankings of the
schedulers, from the cells of a validation (experiments/validate_sim.py)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bsbench.safe_text import markup
from bsbench.units import format_percent, format_rate

RANK_KEYS = ("output_throughput", "median_e2el_ms")  # the schedulers' order is checked on each
E2E_SHOWN = ("median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_e2el_ms", "p99_e2el_ms",
             "output_throughput", "slo_attainment")


def signed_percent(value: float | None) -> str:
    """0.034 -> '+3.4%'; None -> '—'."""
    return "—" if value is None else f"{100 * value:+.1f}%"


def print_validation_report(console: Console, cells: list[dict[str, Any]], step_stats: dict[str, Any],
                            simulated: str, noise: dict[str, Any], repeats: int) -> None:
    """The per-step table (and the real steps' own noise), the end-to-end table and the ranking table."""
    table = Table(title=f"per-step error of the cost model on the real runs' steps ({markup(simulated)})",
                  title_justify="left", header_style="bold")
    for col in ("layout", "steps", "MAPE", "P90 APE", "bias"):
        table.add_column(col, justify="left" if col == "layout" else "right")
    for layout, s in step_stats.items():
        table.add_row(layout, str(s["n"]), format_percent(s["mape"]), format_percent(s["p90_ape"]),
                      signed_percent(s["bias"]))
    console.print(table)
    if noise["n"]:
        console.print(f"noise of the real steps themselves: one timing of a calibration plan lies "
                      f"{format_percent(noise['mean'])} from the median of its repeats on average "
                      f"(P90 {format_percent(noise['p90'])}, {noise['n']} timings); an exact cost model would err "
                      "by that much per step", highlight=False)
    console.print(_end_to_end_table(cells, repeats))
    console.print(_ranking_table(cells, repeats))


def _end_to_end_table(cells: list[dict[str, Any]], repeats: int) -> Table:
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
                        *(signed_percent(run["errors"].get(k)) for k in E2E_SHOWN),
                        format_percent(spreads.get("output_throughput")),
                        format_percent(spreads.get("median_e2el_ms")), signed_percent(run["step_error"]["bias"]))
    return e2e


def _ranking_table(cells: list[dict[str, Any]], repeats: int) -> Table:
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
    return ranks


def grid_only_line(grid_only_stats: dict[str, Any], step_stats: dict[str, Any]) -> str:
    """How the cost model fitted to the grid alone prices the real steps, beside the one fitted with the runs."""
    return (f"fitted to the grid alone (without the calibration runs' steps), the cost model would "
            f"price these real steps at MAPE {format_percent(grid_only_stats['all']['mape'])}, bias "
            f"{signed_percent(grid_only_stats['all']['bias'])} (with them: "
            f"{format_percent(step_stats['all']['mape'])}, {signed_percent(step_stats['all']['bias'])})")
