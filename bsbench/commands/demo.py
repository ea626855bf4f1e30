"""`bsbench demo`: the four policies side by side on a paper-scale simulated setup, in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bsbench.commands._types import param_type
from bsbench.errors import BsbenchError
from bsbench.experiments.demo import DemoSetting, run_demo
from bsbench.paths import check_output_dir
from bsbench.progress import Progress
from bsbench.record import RunRecord, read_records
from bsbench.report.steady import overload_cell
from bsbench.safe_text import markup
from bsbench.units import format_rate
from bsbench.values import SEED
from bsbench.workloads.specs import OPTION_RULES

if TYPE_CHECKING:
    from rich.table import Table

    from bsbench.experiments.demo import DemoSetting
    from bsbench.experiments.sweep import SweepResult

# The comparison table's rows the demo shows (report.comparison.METRIC_ROWS keys), in that table's order.
DEMO_ROWS = ("request_throughput", "output_throughput", "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms",
             "p99_tpot_ms", "median_e2el_ms", "p99_e2el_ms", "slo_attainment", "goodput", "steady_slo_attainment",
             "steady_goodput", "padding_ratio", "oom_events", "preemptions", "failed", "rejected")
NEXT_STEPS = (
    "next: bsbench run            the same metrics, measured on the real runner, one policy at a time "
    "(--scheduler): a tiny model on this CPU",
    "next: bsbench sweep --help   every policy at every rate, simulated (--backend sim --gpu ...) or measured",
)


@click.command("demo")
@click.option("--rate", type=param_type(OPTION_RULES["rate"]), default=None,
              help="Request rate in req/s (Poisson arrivals). [default: 2]")
@click.option("--num-requests", "-n", type=param_type(OPTION_RULES["num_requests"]), default=None,
              help="ShareGPT requests replayed by every policy. [default: 400]")
@click.option("--seed", type=param_type(SEED), default=None, help="Seed of sampling and arrivals. [default: 0]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results/demo"),
              show_default=True, help="Folder for the run records (OUT/runs) and the summary.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(rate: float | None, num_requests: int | None, seed: int | None, out_dir: Path, quiet: bool) -> None:
    """Compare static, continuous, uellm and bucket on a simulated A100-40GB serving Llama-2-13B.

    Every policy replays the same ShareGPT requests (sharegpt-vllm, Poisson
    arrivals, TTFT SLO 5 s, E2E SLO 30 s) on the simulated backend: a roofline
    cost model of the GPU on a virtual clock, no torch and no weights, so the
    figures are deterministic and take seconds. They are SIMULATED, not
    measured: `bsbench run` measures a policy on the real model runner.
    Running the same demo again reuses its records (OUT/runs).
    """
    # lazy: loads pandas, pyarrow
    from bsbench.report.comparison import console as make_console

    check_output_dir(out_dir, "--out")
    default = DemoSetting()
    setting = DemoSetting(rate=default.rate if rate is None else rate,
                          num_requests=default.num_requests if num_requests is None else num_requests,
                          seed=default.seed if seed is None else seed)
    console = make_console()
    console.print(f"demo: static, continuous, uellm and bucket on {setting.num_requests} ShareGPT requests at "
                  f"{format_rate(setting.rate)} req/s, [bold magenta]simulated[/] {setting.gpu} serving "
                  f"{setting.model} -> {markup(out_dir)}", highlight=False)
    result = run_demo(setting, out_dir, Progress(enabled=not quiet))
    table, records = demo_table(result, setting)
    console.print(table)
    console.print(markup(paired_note(setting)), highlight=False)
    for record in records:  # a policy whose queue grew without bound: its figures describe a draining queue
        if record.summary.get("overloaded"):
            console.print(f"[bold red]{markup(record.config.scheduler)}[/]: "
                          f"{markup(overload_cell(record.summary))}", highlight=False)
    console.print(f"[dim]records: {markup(out_dir / 'runs')} (bsbench compare {markup(out_dir / 'runs')} adds "
                  f"intervals, ratios and plots); summary {markup(out_dir / 'sweep_summary.json')}[/]",
                  highlight=False)
    for line in NEXT_STEPS:
        console.print(markup(line), highlight=False)


def demo_table(result: SweepResult, setting: DemoSetting) -> tuple[Table, list[RunRecord]]:
    """The comparison table (report.comparison.rich_table) of the demo's runs, its title saying SIMULATED, and
    the runs' records in the table's order."""
    # lazy: loads pandas, pyarrow
    from bsbench.report.comparison import comparison_frame, group_records, rich_table

    records = read_records([r.path for r in result.runs if r.complete and r.path])
    groups, _ = group_records(records)
    if len(groups) != 1:
        raise BsbenchError(f"the demo's records in {result.out_dir} are not one paired comparison")
    group = groups[0]
    first = group.runs[0].record
    title = f"[bold magenta]SIMULATED[/]: {markup(first.config.model)}, {markup(first.config.timing_label())}"
    table = rich_table(group.runs, comparison_frame(group.runs, metrics=DEMO_ROWS), title=title)
    return table, [run.record for run in group.runs]


def paired_note(setting: DemoSetting) -> str:
    """The line under the table: what every policy replayed."""
    return (f"the same {setting.num_requests} {setting.workload} requests at {format_rate(setting.rate)} req/s "
            f"(seed {setting.seed}) for every policy; SLOs: TTFT {setting.ttft_slo_ms / 1000:g} s, "
            f"E2E {setting.e2e_slo_ms / 1000:g} s")
