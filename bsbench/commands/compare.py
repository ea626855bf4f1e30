"""`bsbench compare PATH...`: side-by-side comparison of run records."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from bsbench.errors import BsbenchError
from bsbench.paths import check_output_dir, check_output_file
from bsbench.record import read_records
from bsbench.safe_text import markup, plain


@click.command("compare")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--reference", metavar="NAME", default=None,
              help="Scheduler (or column label) to divide by: adds each run's ratio to it.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "csv", "json"]), default="table",
              show_default=True, help="Output on stdout.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write PNG plots (latency CDFs, throughput, KV usage and batch size over time) here.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write one self-contained report page (tables + plots embedded) that opens in a browser with "
                   "no server, like the sweep's report.html.")
@click.option("--latency-over", type=click.Choice(["completed", "submitted"]), default="completed",
              show_default=True,
              help="Latency percentiles over completed requests (as vLLM), or over every submitted request with "
                   "failed and rejected ones counted as +inf ('inf' when the percentile falls among them).")
@click.option("--embed-plots/--link-plots", default=True, show_default=True,
              help="Embed the plots in the HTML page (one file), or link the PNGs of --plots DIR from it.")
def command(paths: tuple[Path, ...], reference: str | None, fmt: str, plots_dir: Path | None,
            html_file: Path | None, latency_over: str, embed_plots: bool) -> None:
    """Compare run records (files or folders of them) side by side.

    vLLM benchmark results (`vllm bench serve --save-result` JSON) are read too and shown beside the bsbench
    records of the same workload; what vLLM does not measure shows as n/a.

    Runs are compared only when they replayed the same request list on the
    same model and device; other runs go in separate tables, with the reason.
    Repeats (runs that differ only by the repeat seed) form one column: its
    mean over seeds with a 95% t-interval; a single run gets a bootstrap
    interval over its requests. Ratios to --reference get paired intervals;
    one containing 1 reads "no clear difference".
    """
    if plots_dir is not None:
        check_output_dir(plots_dir, "--plots")  # before reading anything
    if html_file is not None:
        check_output_file(html_file, "--html")
        if not embed_plots and plots_dir is None:
            raise BsbenchError("--link-plots links the PNGs of --plots DIR: give --plots, or embed them (the default)")
    from bsbench.report import breakdown  # pandas and numpy: imported only when records are compared

    # lazy: loads numpy, pandas, pyarrow
    from bsbench.report import comparison as report

    # lazy: loads numpy
    from bsbench.report.cell_stats import group_stats

    # lazy: loads numpy
    from bsbench.report.vllm_result import place_beside, split_inputs

    skipped: list[str] = []
    ours, imported = split_inputs(list(paths))
    loaded = read_records([str(p) for p in ours], skipped=skipped) if ours or not imported else []
    for record in imported:
        place_beside(record, loaded)
    loaded += imported
    seen = {str(r.path) for r in imported}
    skipped = [line for line in skipped if not any(line.startswith(f"skipped {path}:") for path in seen)]
    groups, notes = report.group_records(loaded)
    notes = notes + report.check_reference(groups, reference)
    frames = [report.comparison_frame(g.runs, reference, latency_over=latency_over) for g in groups]
    stats = []
    splits = []
    for group, frame in zip(groups, frames):
        ref = report.find_reference(group.runs, reference)
        found = group_stats([(r.label, r.repeats) for r in group.runs], list(frame.index),
                            ref.label if ref is not None else None)
        if latency_over == "submitted":  # the intervals resample completed requests: not this view's figures
            found = found.without(set(report.SUBMITTED_ROWS))
        report.apply_paired_ratios(frame, group.runs, found)
        stats.append(found)
        splits.append(breakdown.group_breakdown([(r.label, r.record) for r in group.runs],
                                                ref.label if ref else None))
    err = report.console(stderr=True)
    for line in skipped:
        err.print(f"[dim]{markup(line)}[/]", highlight=False)

    if fmt == "table":
        console = report.console()
        for i, (group, frame, found) in enumerate(zip(groups, frames, stats), start=1):
            console.print(report.rich_table(group.runs, frame, title=f"[bold]Group {i}[/]: {markup(group.title())}",
                                            stats=found))
            console.print(f"[dim]{markup(group.details())}[/]", highlight=False)
            console.print(f"[dim]{markup(found.describe())}[/]", highlight=False)
            for run in group.runs:
                more = f" and {len(run.repeats) - 1} more repeats" if len(run.repeats) > 1 else ""
                console.print(f"[dim]  {markup(run.label)}: {markup(run.path)}{more}[/]", highlight=False)
            for note in report.table_notes(group.runs, frame):
                console.print(f"[yellow]{markup(note)}[/]", highlight=False)
            console.print(breakdown.rich_table(splits[i - 1].runs))
            for line in splits[i - 1].lines:
                console.print(markup(line), highlight=False)
            console.print()
        console.print(f"[dim]{report.TABLE_LEGEND}[/]", highlight=False)
        for note in notes:
            console.print(f"[yellow]note:[/] {markup(note)}", highlight=False)
    elif fmt == "markdown":
        chunks = []
        for i, (group, frame, found) in enumerate(zip(groups, frames, stats), start=1):
            chunks.append(f"**Group {i}**: {group.title()}\n\n{report.frame_to_markdown(group.runs, frame, found)}"
                          f"\n\n{found.describe()}")
            chunks += [f"> {n}" for n in report.table_notes(group.runs, frame)]
            chunks.append("\n\n".join([breakdown.markdown(splits[i - 1].runs), *splits[i - 1].lines]))
        chunks += [f"> note: {n}" for n in notes]
        click.echo(plain("\n\n".join(chunks)))
    elif fmt == "csv":
        click.echo(report.groups_to_csv(groups, frames, stats), nl=False)
        for note in notes + [n for g, f in zip(groups, frames) for n in report.table_notes(g.runs, f)]:
            err.print(f"note: {markup(note)}", highlight=False)
    else:
        data = report.groups_to_json(groups, frames, notes, stats)
        for entry, split in zip(data["groups"], splits):
            entry["breakdown"] = split.to_json()
        click.echo(json.dumps(data, indent=2))

    if plots_dir is None and html_file is None:
        return
    # lazy: loads numpy
    from bsbench.report.plot_data import group_plot

    # lazy: loads matplotlib
    from bsbench.report.plot_pool import render_groups

    # without --plots the page's plots are drawn in a temporary folder: embedded, they need no file beside it
    with tempfile.TemporaryDirectory(prefix="bsbench-compare-") as scratch:
        target = plots_dir if plots_dir is not None else Path(scratch)
        plot_sets = render_groups([(group_plot([(r.label, r.record) for r in group.runs]), target,
                                    f"group{i}_" if len(groups) > 1 else "") for i, group in enumerate(groups, 1)])
        if plots_dir is not None:
            err.print(f"plots: {markup(target)}/ ({sum(len(s) for s in plot_sets)} PNG files)", highlight=False)
        if html_file is not None:
            path = report.write_html(html_file, groups, frames, notes, plot_sets, embed=embed_plots, stats=stats)
            err.print(f"report: {markup(path)}" + (" (plots embedded)" if embed_plots else ""), highlight=False)


