"""`bsbench run`: one scheduler, one workload, one run record."""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from bsbench.backends.factory import cluster_setting_of
from bsbench.backends.fit_checks import check_workload_fits
from bsbench.backends.openai import OpenAIBackend
from bsbench.backends.policy_build import build_policy
from bsbench.backends.run import open_session, run_benchmark
from bsbench.backends.words import VLLM_CLIENT_WORDS, is_remote, remote_endpoint
from bsbench.commands._help import GroupedCommand
from bsbench.commands._openai_options import (
    client_options,
    openai_options,
    pop_openai_values,
    refuse_engine_flags,
    refuse_openai_values,
)
from bsbench.commands._run_options import (
    parse_percentiles,
    run_config_from_cli,
    run_options,
    scheduler_values,
    window_spec,
)
from bsbench.commands._types import param_type
from bsbench.commands._vllm_options import (
    VllmSave,
    VllmWorkload,
    take_vllm_run,
    take_vllm_workload,
    vllm_run_options,
    vllm_workload_options,
)
from bsbench.commands._workload_options import workload_options, workload_overrides
from bsbench.errors import BsbenchError
from bsbench.interrupts import InterruptedRun
from bsbench.jsonio import write_json_atomic
from bsbench.metrics import NO_SLOS, has_slos, rescore, steady
from bsbench.model.source import check_model_source
from bsbench.openai_client.run import require_httpx
from bsbench.paths import check_output_dir
from bsbench.progress import Progress
from bsbench.record import RunRecord, save_record
from bsbench.record.backend_part import OpenAIPart
from bsbench.record.window import SECONDS, WindowSpec
from bsbench.report.breakdown import run_breakdown, table_rows
from bsbench.report.failures import failure_text, failure_verdict
from bsbench.report.steady import overload_cell, window_cell
from bsbench.report.vllm_result import vllm_result_file, vllm_result_name
from bsbench.safe_text import markup
from bsbench.units import format_percent, format_rate
from bsbench.values import Real
from bsbench.workloads.build import load_workload, with_ramp

if TYPE_CHECKING:
    from rich.table import Table

    from bsbench.openai_client import ClientOptions
    from bsbench.workloads.workload import Workload


_SUMMARY_ROWS = [
    ("requests completed / failed / rejected", lambda s: f"{s['completed']} / {s['failed']} / {s['rejected']}"),
    ("failures by kind", None),  # from the request rows (report.failures), on every backend
    ("offered rate (req/s)", lambda s: _num(s.get("offered_rate")) if s.get("offered_rate") else "all at once"),
    ("request throughput (req/s)", lambda s: _num(s.get("request_throughput"))),
    ("output throughput (tok/s)", lambda s: _num(s.get("output_throughput"))),
    ("total token throughput (tok/s)", lambda s: _num(s.get("total_token_throughput"))),
    ("TTFT median / p99 (ms)", None),  # from the origin --ttft-origin names (TTFT_ORIGINS)
    ("TPOT median / p99 (ms)", lambda s: f"{_num(s.get('median_tpot_ms'))} / {_num(s.get('p99_tpot_ms'))}"),
    ("ITL median / p99 (ms)", lambda s: f"{_num(s.get('median_itl_ms'))} / {_num(s.get('p99_itl_ms'))}"),
    ("E2E median / p99 (ms)", lambda s: f"{_num(s.get('median_e2el_ms'))} / {_num(s.get('p99_e2el_ms'))}"),
    ("SLO attainment", lambda s: format_percent(s.get("slo_attainment")) if has_slos(s) else NO_SLOS),
    ("goodput (req/s)", lambda s: _num(s.get("goodput")) if has_slos(s) else NO_SLOS),
    ("measurement window", window_cell),
    ("SLO attainment in window", lambda s: format_percent(steady(s, "slo_attainment")) if has_slos(s) else NO_SLOS),
    ("goodput in window (req/s)", lambda s: _num(steady(s, "goodput")) if has_slos(s) else NO_SLOS),
    ("TTFT median / p99 in window (ms)",
     lambda s: f"{_num(steady(s, 'median_ttft_ms'))} / {_num(steady(s, 'p99_ttft_ms'))}"),
    ("output throughput in window (tok/s)", lambda s: _num(steady(s, "output_throughput"))),
    ("overloaded", overload_cell),
    ("padding ratio", lambda s: format_percent(s.get("padding_ratio"))),
    ("KV usage mean / peak",
     lambda s: f"{format_percent(s.get('mean_kv_usage'))} / {format_percent(s.get('peak_kv_usage'))}"),
    ("OOM events / preemptions", lambda s: f"{s.get('oom_events', 0)} / {s.get('preemptions', 0)}"),
]
_COUNTED_BY: dict[str, str] = {"server": "server usage", "workload": "workload", "client": "counted by the client",
                               "mixed": "mixed"}
_STEP_LABELS = ("padding ratio", "KV usage mean / peak", "OOM events / preemptions")
NO_STEPS = "n/a (remote server: no step rows)"
# the client's own figures of an openai-backend run (metrics._client_metrics)
_CLIENT_ROWS = [
    ("requests sent late (> 1 ms)", lambda s: f"{s.get('late_requests', 0)}"),
    ("client lateness p99 / max (ms)",
     lambda s: f"{_num(s.get('p99_lateness_ms'))} / {_num(s.get('max_lateness_ms'))}"),
    ("not submitted (--duration)", lambda s: f"{s.get('unsent_requests', 0)}"),
    ("token counts: input / output", lambda s: " / ".join(_COUNTED_BY.get(v, v) for v in
                                                         (s.get("token_counts") or {}).values()) or "-"),
]
# --ttft-origin: the summary key of the TTFT shown, and the table's caption saying where it counts from
TTFT_ORIGINS = {"scheduled": ("ttft", "TTFT counts from each request's scheduled arrival (--ttft-origin scheduled)"),
                "sent": ("ttft_sent", "TTFT counts from when the client sent each request (--ttft-origin sent)")}


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def run_summary_table(record: RunRecord, ttft_origin: str = "scheduled") -> Table:
    """The end-of-run table: the headline figures of one record, then where its time went (bsbench.report.breakdown).
    TTFT counts from `ttft_origin` (TTFT_ORIGINS; 'sent' needs a client run's record), named in the caption."""

    summary = record.summary
    title = f"{markup(record.config.scheduler)} - {summary['duration_s']:.2f} s"
    if record.config.simulated:
        title = f"[bold magenta]{markup(record.config.timing_label())}[/]: {title}"
    if not summary.get("counts_add_up", True):
        title += " [red](counts do not add up!)[/]"
    ttft_key, caption = TTFT_ORIGINS[ttft_origin]
    table = Table(title=title, show_header=False, caption=caption)
    table.add_column("metric")
    table.add_column("value", justify="right")
    remote = isinstance(record.config.backend, OpenAIPart)
    for label, cell in _SUMMARY_ROWS:
        if cell is None and label.startswith("TTFT"):
            table.add_row(label, f"{_num(summary.get(f'median_{ttft_key}_ms'))} / "
                                 f"{_num(summary.get(f'p99_{ttft_key}_ms'))}")
            continue
        if cell is None:
            table.add_row(label, markup(failure_text(record)))
            continue
        table.add_row(label, NO_STEPS if remote and label in _STEP_LABELS else cell(summary))
    for label, cell in _CLIENT_ROWS if remote else []:
        table.add_row(label, cell(summary))

    for label, cells in [] if remote else table_rows([run_breakdown(record.config.scheduler, record)]):
        table.add_row(label, *cells)  # a remote server's queueing and prefill are not visible to the client
    return table


@click.command("run", cls=GroupedCommand)
@click.option("--scheduler", default="continuous", show_default=True,
              help="Batching policy: static, continuous, uellm, bucket, distserve (or any registered one).")
@workload_options
@functools.partial(run_options, backends=("real", "sim", "openai", *VLLM_CLIENT_WORDS))
@openai_options
@vllm_workload_options
@vllm_run_options
@click.option("--max-failure-ratio", type=param_type(Real(low=0, high=1)), default=None, metavar="R",
              help="Exit 1 when more than this share of requests did not complete [default: exit 1 only when "
                   "none completed].")
@click.option("--ttft-origin", type=click.Choice(list(TTFT_ORIGINS)), default="scheduled", show_default=True,
              help="Where the table's TTFT counts from: each request's scheduled arrival, or when the client "
                   "sent it (--backend openai; GuideLLM's origin). The record keeps both.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.pass_context
def command(ctx: click.Context, scheduler: str, quiet: bool, repeats: int, max_failure_ratio: float | None,
            ttft_origin: str, **kwargs) -> None:
    """Replay a workload through one scheduler on the shared model runner and write a run record.

    What can be checked is checked before the model loads (the scheduler, its
    flags, the model source, the workload options) or at least before the run
    (the workload fits the model). Progress goes to stderr: a bar on a
    terminal, one line every few seconds elsewhere (BSBENCH_PROGRESS_INTERVAL).
    With --repeats K it runs K times, repeat i on the workload with seed SEED + i, one record each.
    With --backend openai the same workload is replayed against an OpenAI-compatible server (--base-url).
    vLLM's `bench serve` flags are accepted in vLLM's spelling (docs/http.md, "Coming from vLLM").
    """
    vllm = take_vllm_workload(ctx, kwargs)
    openai_values = pop_openai_values(kwargs)
    remote = is_remote(kwargs["backend"])
    implied = remote_endpoint(kwargs["backend"])
    if implied is not None:  # vLLM's --backend openai-chat
        if openai_values.setdefault("endpoint", implied) != implied:
            raise BsbenchError(f"--backend {kwargs['backend']} sends to the {implied} endpoint; drop --endpoint "
                               f"{openai_values['endpoint']}")
    save = take_vllm_run(ctx, kwargs, openai_values, remote, vllm)
    if remote:
        refuse_engine_flags(ctx, scheduler_values(kwargs))
        window = window_spec(kwargs.pop("warmup"), kwargs.pop("duration"))
        submit_for = submission_seconds(window)
        records = _run_openai(client_options({**openai_values, **({"duration": submit_for} if submit_for else {})}),
                              kwargs, repeats, quiet, vllm, save, ttft_origin, window)
        _exit_on_failures(records, max_failure_ratio)
        return
    refuse_openai_values(openai_values, kwargs["backend"])
    if ttft_origin == "sent":
        raise BsbenchError("--ttft-origin sent applies to --backend openai (in process a request is admitted at "
                           "its arrival: both origins are the same)")


    # an unknown scheduler, a flag it lacks, a bad value or an unwritable --out: exit 2 now
    config = run_config_from_cli(kwargs, scheduler, scheduler_values(kwargs))
    cluster = cluster_setting_of(config)  # a disaggregated run (--instances, or distserve): checked now, exit 2
    check_model_source(config.model)  # a hub id while offline and not cached: exit 2 in a moment
    progress = Progress(enabled=not quiet)
    target, overrides = workload_overrides(kwargs)
    with progress.task("loading the workload"):
        workload = _load(target, overrides, vllm)
    base_seed = int(workload.spec.get("seed") or 0)
    session = open_session(config, progress)
    policy = None if cluster else build_policy(config, session, progress)  # a cluster builds its own per instance
    if policy is not None:
        check_workload_fits(workload, session.info, policy)
    console = Console(stderr=False)
    rate = workload.spec.get("rate", float("inf"))
    console.print(
        f"[bold]{markup(scheduler)}[/] on [bold]{markup(workload.name)}[/]: {len(workload.requests)} requests at "
        f"{format_rate(rate)} req/s; model {markup(session.info.name)} "
        f"({session.part.model_weights() or 'no'} weights, {session.dtype}) on "
        f"{markup(session.describe())}; KV {session.num_blocks * session.block_size:,} tokens"
        + (f" per instance; instances {cluster.topology}, KV over {cluster.link.name}" if cluster else "")
    )
    records = []
    for repeat in range(repeats):
        if repeat:
            with progress.task("loading the workload"):
                workload = _load(target, {**overrides, "seed": base_seed + repeat}, vllm)
            config = dataclasses.replace(config, seed=config.seed + 1)
            if policy is not None:
                policy = build_policy(config, session, progress)
                check_workload_fits(workload, session.info, policy)
            console.print(f"repeat {repeat + 1}/{repeats}: workload seed {base_seed + repeat}")
        config = dataclasses.replace(config, repeat=repeat, base_seed=base_seed)
        try:
            record = run_benchmark(workload, config, progress=progress, session=session, policy=policy)
        except InterruptedRun as stop:
            console.print(f"[yellow]interrupted[/]: incomplete record written to {markup(stop.record.path)}")
            sys.exit(130)
        _report(console, record, save, config.out_dir, repeat, ttft_origin)
        records.append(record)
    if repeats > 1:
        console.print(f"{repeats} repeats: compare them (mean and 95% interval over seeds) with "
                      f"bsbench compare {markup(config.out_dir)}", highlight=False)
    _exit_on_failures(records, max_failure_ratio)


def submission_seconds(window: WindowSpec | None) -> float | None:
    """How long an openai run submits: to the end of a window given in seconds (warm-up + duration), else
    the whole workload (None)."""
    if window is None or window.duration is None or window.duration.unit != SECONDS:
        return None
    return window.duration.value + (window.warmup.value if window.warmup.unit == SECONDS else 0.0)


def _exit_on_failures(records: list[RunRecord], max_ratio: float | None) -> None:
    """A run whose failures pass --max-failure-ratio ends with exit 1 and one line on stderr saying why."""
    for record in records:
        verdict = failure_verdict(record, max_ratio)
        if verdict is not None:
            click.echo(f"bsbench: run failed: {verdict}", err=True)
            sys.exit(1)


def _load(target: str | None, overrides: dict[str, Any], vllm: VllmWorkload) -> Workload:
    """The workload of the flags, with vLLM's ramp-up arrivals when asked for."""
    workload = load_workload(target, overrides)
    return with_ramp(workload, *vllm.ramp) if vllm.ramp else workload


def _report(console: Console, record: RunRecord, save: VllmSave, out_dir: Any, repeat: int,
            ttft_origin: str) -> None:
    """The summary table, the record's path and, with --save-result, vLLM's result file."""
    console.print(run_summary_table(record, ttft_origin))
    console.print(f"record: {markup(record.path)}")
    if save.save:
        result = vllm_result_file(record, label=save.label, metadata=save.metadata, detailed=save.detailed,
                                  percentile_metrics=save.percentile_metrics)
        name = save.filename or vllm_result_name(result)
        if repeat and save.filename:
            name = name.removesuffix(".json") + f"-repeat{repeat}.json"
        elif repeat:
            name = vllm_result_name(result, repeat)
        path = write_json_atomic(result, (save.result_dir or out_dir) / name)
        console.print(f"vLLM result: {markup(path)}")


def _run_openai(options: ClientOptions, kwargs: dict[str, Any], repeats: int, quiet: bool, vllm: VllmWorkload,
                save: VllmSave, ttft_origin: str, window: WindowSpec | None = None) -> list[RunRecord]:
    """`run --backend openai`: the workload (and its repeats) replayed against the server, one record each; a
    window given by --warmup/--duration rescores each record (metrics.rescore) before it is shown."""


    require_httpx()  # before the workload loads
    out_dir = check_output_dir(kwargs.pop("out_dir"), "--out")
    percentiles = parse_percentiles(kwargs.pop("percentiles"))
    record_tokens = bool(kwargs.pop("record_tokens"))
    progress = Progress(enabled=not quiet)
    target, overrides = workload_overrides(kwargs)
    with progress.task("loading the workload"):
        workload = _load(target, overrides, vllm)
    base_seed = int(workload.spec.get("seed") or 0)
    console = Console(stderr=False)
    backend = OpenAIBackend(options)
    console.print(f"[bold]{markup(workload.name)}[/]: {len(workload.requests)} requests at "
                  f"{format_rate(workload.spec.get('rate', float('inf')))} req/s against "
                  f"[bold]{markup(backend.describe())}[/]", highlight=False)
    records = []
    for repeat in range(repeats):
        if repeat:
            with progress.task("loading the workload"):
                workload = _load(target, {**overrides, "seed": base_seed + repeat}, vllm)
            console.print(f"repeat {repeat + 1}/{repeats}: workload seed {base_seed + repeat}")
        try:
            record = backend.run(workload, out_dir=out_dir, record_tokens=record_tokens, percentiles=percentiles,
                                 repeat=repeat, base_seed=base_seed, progress=progress,
                                 notify=lambda text: console.print(f"[yellow]{markup(text)}[/]", highlight=False))
            if window is not None:
                path = record.path
                record = rescore(record, window)
                save_record(record, out_dir, path.name if path is not None else None)
        except InterruptedRun as stop:
            console.print(f"[yellow]interrupted[/]: incomplete record written to {markup(stop.record.path)}")
            sys.exit(130)
        _report(console, record, save, out_dir, repeat, ttft_origin)
        records.append(record)
    return records
