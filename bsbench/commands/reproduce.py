"""`bsbench reproduce bucketserve|uellm`: a paper's experiments on its setup, each claim with a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bsbench.backends.config import RunConfig
from bsbench.backends.words import is_simulated
from bsbench.commands._executor_options import executor_options
from bsbench.commands._types import param_type
from bsbench.experiments.executors import make_executor
from bsbench.paths import check_output_dir
from bsbench.safe_text import markup
from bsbench.values import Integer

PAPERS = ("bucketserve", "uellm")


@click.command("reproduce")
@click.argument("paper", type=click.Choice(PAPERS))
@click.option("--quick", is_flag=True, help="A small version of every experiment (fewer requests, rates and "
                                            "probes): a smoke test that runs in about a minute; its verdicts are "
                                            "not the papers' verdict.")
@click.option("--repeats", type=param_type(Integer(1, 100)), default=None,
              help="Seeds per experiment; the intervals are over them [default: 3; --quick 2].")
@click.option("--seed", type=param_type(Integer(0, 2**31 - 1)), default=0, show_default=True,
              help="Workload seed of the first repeat (repeat i: SEED + i).")
@click.option("--backend", type=click.Choice(["sim", "real"]), default="sim", show_default=True,
              help="sim: the paper's model and GPU in simulation; real: the same experiments at a small scale on "
                   "the real runner (tiny model): the direction of each figure on real compute.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: results/reproduce-PAPER]. Run again into it to resume the sweeps.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@executor_options
def command(paper: str, quick: bool, repeats: int | None, seed: int, backend: str, out_dir: Path | None,
            quiet: bool, executor: str, workers: int | None, ray_address: str | None) -> None:
    """Run PAPER's experiments and print each claim beside the measured figure, its 95% interval and a verdict.

    bucketserve: LLaMA-2-13B on an A100-40GB, simulated; sweeps over the rate and load-capacity searches on
    the Alpaca, LongBench and Mixed stand-ins. uellm: 100 requests at t = 0 with SLOs in blocks of 20.
    Every unknown of the setup is a named parameter, printed with its value and reason. Writes
    OUT/reproduce_summary.json and OUT/report.html.
    """

    # lazy: loads numpy
    from bsbench.experiments.reproduce import experiments_bucketserve, experiments_uellm

    # lazy: loads numpy
    from bsbench.experiments.reproduce.engine_runs import Bench

    # lazy: loads numpy
    from bsbench.experiments.reproduce.outcome import CLAIM_HEADER

    # lazy: loads matplotlib, numpy
    from bsbench.experiments.reproduce.report import PARAM_HEADER, SMOKE_TEST_NOTE, write_outputs

    # lazy: loads numpy, pandas, pyarrow
    from bsbench.report.comparison import console as make_console

    experiments: Any = experiments_bucketserve if paper == "bucketserve" else experiments_uellm
    out = check_output_dir(out_dir or Path("results") / f"reproduce-{paper}", "--out")
    repeats = repeats or (2 if quick else 3)
    params = experiments.params(quick, backend)
    if is_simulated(backend):
        config = RunConfig(model=params["model"], backend="sim", clock="virtual", gpu=params["gpu"], out_dir=out)
    else:
        config = RunConfig(model=params["model"], weights="dummy", out_dir=out)
    console = make_console()
    say = (lambda text: None) if quiet else (lambda text: console.print(markup(text), highlight=False))
    runner = make_executor(executor, workers, ray_address,
                           gpu_tasks=executor == "ray" and not is_simulated(backend))
    bench = Bench(config, experiments.scheduler_options(params), [seed + i for i in range(repeats)], runner, say)
    timing = bench.timing_label()
    console.print(f"reproduce {paper}{' --quick' if quick else ''}: {timing or 'measured on the real runner'}; "
                  f"{repeats} seeds -> {markup(out)}", highlight=False)
    if quick:
        console.print(f"[bold yellow]{markup(SMOKE_TEST_NOTE)}[/]", highlight=False)
    try:
        result = experiments.run(bench, params, out)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: run the same command again to resume", highlight=False)
        raise click.exceptions.Exit(130) from None
    finally:
        runner.close()
    for title, header, rows in (("parameters of the paper setup (value and reason)", PARAM_HEADER,
                                 result.params.rows()),
                                (f"{paper}: claims and verdicts" + (" (--quick: SMOKE TEST, not the papers' "
                                                                     "verdict)" if quick else ""),
                                 CLAIM_HEADER, [r.row() for r in result.results])):
        table = Table(title=markup(title), title_justify="left", header_style="bold", show_lines=True)
        for column in header:
            table.add_column(markup(column))
        for row in rows:
            table.add_row(*(markup(cell) for cell in row))
        console.print(table)
    json_path, page = write_outputs(result, out, backend, timing, repeats, quick)
    if quick:
        console.print(f"[bold yellow]{markup(SMOKE_TEST_NOTE)}[/]", highlight=False)
    console.print(f"summary {markup(json_path)}; report {markup(page)}", highlight=False)
