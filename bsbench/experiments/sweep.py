"""A grid of runs: schedulers x rates x repeats, paired and resumable.

At each (rate, seed) the workload is built once and every scheduler replays
that same request list (same ids, tokens and arrival times: one workload
fingerprint), so the comparison is paired. Each finished run is identified by
a deterministic key (scheduler, rate, seed, workload fingerprint); a sweep run
again into the same folder skips the runs whose complete record is already
there. Layout of the output folder:

    OUT/runs/*.json          one run record per run (a damaged one is renamed *.json.damaged and its run redone)
    OUT/runs/*.rows/         each record's rows (Parquet: record/store.py)
    OUT/sweep_summary.json   the grid, each run's key, record path and headline metrics
    OUT/*.png                plots against the rate (bsbench.report.plots_sweep)
    OUT/report.html          the self-contained report page (bsbench.report.html_report)

`sweep_summary.json` keys: "runs" (one entry per run: key, scheduler, rate, seed, path, complete, resumed and
the HEADLINE metrics of its record) and "points" (one entry per (scheduler, rate), over its complete runs):
"scheduler", "rate", "repeats" (K, the complete runs), "seeds", and per headline metric M the mean M over the
repeats; with K >= 2 also "M_low" and "M_high", the 95% t-interval over the K seeds (cell_stats.across_seeds:
clipped at 0, and at 1 for shares), null when a run lacks M. With K = 1 there is no M_low / M_high.

The engine is reached through callables (`make_workload`, `run_one`), so the
logic is tested with fakes and the CLI plugs in `run_benchmark`; an executor
(bsbench.experiments.executors: serial, process, ray) spreads the runs, and the driver
alone writes their records. "retries" counts second tries of runs whose first
died, "failed_runs" lists the runs that failed twice, with their reasons.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bsbench.errors import BsbenchError, did_you_mean
from bsbench.experiments.executors.base import Executor, RunOne, RunTask, Watch
from bsbench.experiments.executors.serial import SerialExecutor
from bsbench.jsonio import to_jsonable, write_json_atomic
from bsbench.metrics import NO_SLOS, SLO_KEYS, STEADY, has_slos
from bsbench.record import RecordConfig, RunRecord, read_records, save_record
from bsbench.report.cell_stats import across_seeds
from bsbench.report.steady import OVERLOADED
from bsbench.safe_json import load_file
from bsbench.units import format_percent, format_rate
from bsbench.values import parse_rate

SUMMARY_KIND = "bsbench-sweep-summary"
SUMMARY_FILE = "sweep_summary.json"
RUNS_DIR = "runs"
HEADLINE = ("offered_rate", "completed", "failed", "rejected", "oom_events", "preemptions", "request_throughput",
            "output_throughput", "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "median_e2el_ms",
            "p99_e2el_ms", "slo_attainment", "goodput", "padding_ratio", "peak_kv_usage")


class SweepWorkload(Protocol):
    """What a sweep needs of a workload: its request list's fingerprint and its spec (how it was made)."""

    spec: dict[str, Any]

    def fingerprint(self) -> str: ...


def parse_rates(text: str) -> list[float]:
    """'1,2,4' | 'inf' | '1:16:x2' (geometric: 1 2 4 8 16) | '2:10:+2' or '2:10:2' (arithmetic: 2 4 6 8 10)."""
    rates: list[float] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        if ":" not in part:
            rates.append(parse_rate(part))
            continue
        match = re.fullmatch(r"([0-9.eE+-]+):([0-9.eE+-]+):([x*+]?)([0-9.eE+-]+)", part)
        if not match:
            raise BsbenchError(f"cannot read rate range {part!r}; use START:STOP:xFACTOR or START:STOP:+STEP")
        start, stop = parse_rate(match.group(1)), parse_rate(match.group(2))
        op, step = match.group(3) or "+", float(match.group(4))
        if math.isinf(start) or math.isinf(stop) or stop < start:
            raise BsbenchError(f"rate range {part!r} needs finite START <= STOP")
        if (op in "x*" and step <= 1) or (op == "+" and step <= 0):
            raise BsbenchError(f"rate range {part!r}: the factor must be > 1 (x2) or the step > 0 (+2)")
        value = start
        while value <= stop * (1 + 1e-9):
            rates.append(round(value, 10))
            value = value * step if op in "x*" else value + step
            if len(rates) > 1000:
                raise BsbenchError(f"rate range {part!r} has more than 1000 rates")
    if not rates:
        raise BsbenchError(f"no rates in {text!r}")
    return sorted(set(rates))


def parse_names(text: str, known: Sequence[str] | None = None) -> list[str]:
    """'static,continuous' -> ['static', 'continuous'], unknown names are a user error."""
    names = list(dict.fromkeys(n.strip() for n in str(text).split(",") if n.strip()))
    if not names:
        raise BsbenchError("--schedulers needs at least one scheduler name")
    if known is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            hint = did_you_mean(unknown[0], known)
            raise BsbenchError(f"unknown scheduler {unknown[0]!r}{f' ({hint})' if hint else ''} (choose from "
                               f"{', '.join(sorted(known))})")
    return names


# Fields of RecordConfig that vary within one sweep (per run); the rest, with the workload's spec, is the sweep's
# setting, which every run in one output folder shares (`check_same_setting`).
PER_RUN_FIELDS = ("scheduler", "scheduler_options", "rate", "seed", "repeat")
# Fields of the backend part that belong to a scheduler within one sweep: distserve always runs disaggregated
# (backend kind cluster) beside single-instance schedulers (kind sim), so the topology, link and kind are compared
# per scheduler, with its options, not across the folder.
PER_SCHEDULER_FIELDS = ("instances", "link", "kind")
# Fields that do not change a run's results on a virtual clock (host threads: times come from the cost model).
HOST_ONLY_FIELDS = ("threads",)


def run_identity(config: RecordConfig, fingerprint: str) -> dict[str, Any]:
    """A run's full effective configuration in canonical JSON form (+-inf as strings, tuples as lists): every
    RecordConfig field (scheduler options after defaults, model, weights, dtype, device, KV budget and block
    size, backend, clock, GPU preset, cost-model tier and calibration hash, ...) and the request list's
    fingerprint. Host threads count on the wall clock only."""
    identity = config.to_json()
    if config.simulated:
        for name in HOST_ONLY_FIELDS:
            identity.pop(name, None)
    identity["workload_fingerprint"] = fingerprint
    return to_jsonable(identity)


def run_key(config: RecordConfig, fingerprint: str) -> str:
    """The identity of one run of a sweep: equal keys = the same work, done once. The one function that keys a
    planned run (bench.planned_record_config) and a finished record (`record_key`), so they cannot drift:
    a readable prefix 'scheduler|rate|seed N|backend id|' and a hash of `run_identity`."""
    text = json.dumps(run_identity(config, fingerprint), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return f"{config.scheduler}|{format_rate(float(config.rate))}|seed {config.seed}|{config.backend_id()}|{digest}"


def record_key(record: RunRecord) -> str:
    return run_key(record.config, record.workload.fingerprint)


def sweep_setting(config: RecordConfig, workload_spec: dict[str, Any]) -> dict[str, Any]:
    """What every run in one sweep folder shares: `run_identity` without the per-run fields and the request
    list's fingerprint, plus the workload's spec without its rate and seed (source, filters, SLOs, -n, ...)."""
    identity = run_identity(config, "")
    setting = {k: v for k, v in identity.items() if k not in PER_RUN_FIELDS and k not in ("workload_fingerprint",
                                                                                          "backend")}
    backend = {f"backend {k}": v for k, v in identity["backend"].items() if k not in PER_SCHEDULER_FIELDS}
    workload = {k: v for k, v in workload_spec.items() if k not in ("rate", "seed")}
    return {**setting, **backend, **{f"workload {k}": v for k, v in to_jsonable(workload).items()}}


def _first_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    for name in [*new, *(k for k in old if k not in new)]:  # field order: a cause before what derives from it
        if old.get(name) != new.get(name):
            return f"{name.replace('_', ' ')}: {old.get(name)!r:.60} there, {new.get(name)!r:.60} now"
    return ""


def scheduler_setting(config: RecordConfig) -> dict[str, Any]:
    """What one scheduler's runs share within a sweep folder: its options, topology, link and backend kind."""
    part = config.backend.to_json()
    return to_jsonable({**config.scheduler_options, **{name: part.get(name) for name in PER_SCHEDULER_FIELDS}})


def check_same_setting(out_dir: Path, existing: Sequence[RunRecord], planned: dict[str, tuple[RecordConfig, dict]]
                       ) -> None:
    """Refuse (BsbenchError) when OUT/runs holds a run whose setting differs from this sweep's, or whose
    scheduler is in this sweep with other options: one folder, one configuration, so its summary and
    `compare OUT/runs` never mix them. `planned`: scheduler -> (its planned RecordConfig, the workload's spec)."""
    if not planned:
        return
    config, spec = next(iter(planned.values()))
    new = sweep_setting(config, spec)
    for record in existing:
        why = _first_difference(sweep_setting(record.config, record.workload.spec), new)
        if not why and record.config.scheduler in planned:
            diff = _first_difference(scheduler_setting(record.config),
                                     scheduler_setting(planned[record.config.scheduler][0]))
            why = f"{record.config.scheduler} option {diff}" if diff else ""
        if why:
            raise BsbenchError(f"{out_dir / RUNS_DIR} holds runs of another configuration ({why}; e.g. "
                               f"{record.path}); use another --out, or empty that folder")


@dataclass(slots=True)
class SweepPlan:
    schedulers: list[str]
    rates: list[float]
    seeds: list[int]
    backend: str = "real"  # RecordConfig.backend_id() of the runs

    @property
    def size(self) -> int:
        return len(self.schedulers) * len(self.rates) * len(self.seeds)


@dataclass(slots=True)
class SweepRun:
    key: str
    scheduler: str
    rate: float
    seed: int
    fingerprint: str
    path: str
    complete: bool
    resumed: bool
    summary: dict[str, Any]
    this_sweep: bool = True  # False: a finished run already in the folder that this sweep did not (yet) plan

    @classmethod
    def of_record(cls, record: RunRecord, *, resumed: bool, this_sweep: bool = True) -> SweepRun:
        config = record.config
        return cls(record_key(record), config.scheduler, config.rate, int(config.seed or 0),
                   record.workload.fingerprint, str(record.path or ""), record.complete, resumed, record.summary,
                   this_sweep)

    def to_dict(self, root: Path) -> dict[str, Any]:
        path = Path(self.path)
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            pass
        return {"key": self.key, "scheduler": self.scheduler, "rate": self.rate, "seed": self.seed,
                "fingerprint": self.fingerprint, "path": path.as_posix(), "complete": self.complete,
                "resumed": self.resumed, "this_sweep": self.this_sweep, **headline(self.summary)}


@dataclass(slots=True)
class FailedRun:
    """A run that failed on both tries: why (the last try's reason) and how many tries it had."""

    key: str
    scheduler: str
    rate: float
    seed: int
    reason: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "scheduler": self.scheduler, "rate": self.rate, "seed": self.seed,
                "reason": self.reason, "attempts": self.attempts}


@dataclass(slots=True)
class SweepResult:
    plan: SweepPlan
    out_dir: Path
    runs: list[SweepRun] = field(default_factory=list)
    interrupted: bool = False
    earlier: dict[str, RunRecord] = field(default_factory=dict)  # finished runs found in OUT/runs, by key
    order: dict[str, int] = field(default_factory=dict)  # run key -> its place in the plan's grid order
    failures: list[FailedRun] = field(default_factory=list)  # runs that failed twice (none had a record)
    retries: int = 0  # second tries of runs whose first try died

    def add(self, run: SweepRun) -> None:
        """Keep `runs` in grid order, whatever order an executor ends them in (a stable summary)."""
        self.runs.append(run)
        self.runs.sort(key=lambda r: self.order.get(r.key, len(self.order)))

    @property
    def executed(self) -> int:
        return sum(1 for r in self.runs if not r.resumed)

    @property
    def resumed(self) -> int:
        return sum(1 for r in self.runs if r.resumed)

    def others(self) -> list[SweepRun]:
        """Finished runs in the folder (same setting: check_same_setting) that this sweep did not plan."""
        planned = {r.key for r in self.runs}
        return [SweepRun.of_record(rec, resumed=False, this_sweep=False)
                for key, rec in self.earlier.items() if key not in planned]


def folder_records(out_dir: Path, report: Callable[[str], None] | None = None) -> list[RunRecord]:
    """Every run record in OUT/runs, complete or not. A damaged one (a truncated write: not valid JSON, or a
    malformed record) is renamed to '<name>.json.damaged', so that its run is done again and the bad file is
    neither read again nor lost; `report` gets one line for each."""
    runs = Path(out_dir) / RUNS_DIR
    if not runs.is_dir() or not any(runs.rglob("*.json")):
        return []
    damaged: list[tuple[Path, str]] = []
    records = read_records([str(runs)], skipped=[], damaged=damaged)
    for path, reason in damaged:
        aside = set_aside(path)
        if report is not None:
            report(f"damaged run file set aside as {aside.name} (its run is done again): {reason}")
    return records


def set_aside(path: Path) -> Path:
    """Rename `path` to '<name>.damaged' (or '<name>.damaged-N' when taken) and return the new path."""
    for n in range(10_000):
        target = path.with_name(f"{path.name}.damaged" + (f"-{n}" if n else ""))
        if not target.exists():
            try:
                path.rename(target)
            except OSError as exc:
                raise BsbenchError(f"cannot set damaged run file {path} aside: {exc.strerror or exc}") from None
            return target
    raise BsbenchError(f"too many damaged copies of {path}")


def finished_runs(records: Sequence[RunRecord]) -> dict[str, RunRecord]:
    """The complete records by run key (the newest wins)."""
    return {record_key(r): r for r in records if r.complete}


def write_summary(result: SweepResult, extra: dict[str, Any] | None = None) -> Path:
    """OUT/sweep_summary.json: this sweep's grid, and every finished run in the folder (`this_sweep` says which
    this sweep planned), so a smaller re-run never hides the runs of a larger one."""
    plan = result.plan
    runs = result.runs + result.others()
    pairing: dict[str, str] = {}
    for run in runs:
        pairing.setdefault(f"{format_rate(run.rate)}|{run.seed}", run.fingerprint)
    summary = {
        "kind": SUMMARY_KIND,
        "version": 1,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "schedulers": plan.schedulers,
        "rates": plan.rates,
        "seeds": plan.seeds,
        "backend": plan.backend,
        "planned_runs": plan.size,
        "finished_runs": sum(1 for r in runs if r.complete),
        "interrupted": result.interrupted,
        "retries": result.retries,
        "failed_runs": [f.to_dict() for f in result.failures],
        "workload_by_rate_seed": pairing,
        "runs": [r.to_dict(result.out_dir) for r in runs],
        "points": summary_points(runs),
        **(extra or {}),
    }
    return write_json_atomic(summary, result.out_dir / SUMMARY_FILE)


def summary_points(runs: Sequence[SweepRun]) -> list[dict[str, Any]]:
    """One point per (scheduler, rate) over its complete runs: mean of each HEADLINE metric over the repeats and,
    with two or more, its 95% interval across seeds as M_low / M_high (see the module docstring)."""

    cells: dict[tuple[str, float], list[SweepRun]] = {}
    for run in runs:
        if run.complete:
            cells.setdefault((run.scheduler, float(run.rate)), []).append(run)
    points = []
    for (scheduler, rate), members in cells.items():
        point: dict[str, Any] = {"scheduler": scheduler, "rate": rate, "repeats": len(members),
                                 "seeds": [r.seed for r in members]}
        for metric in HEADLINE:
            values = [r.summary.get(metric) for r in members]
            numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            point[metric] = sum(numbers) / len(numbers) if numbers and len(numbers) == len(values) else None
            if len(members) >= 2:
                interval = across_seeds([r.summary for r in members], metric)
                point[f"{metric}_low"] = interval.low if interval is not None else None
                point[f"{metric}_high"] = interval.high if interval is not None else None
        points.append(point)
    return points


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    data = load_file(Path(out_dir) / SUMMARY_FILE, "sweep summary")
    if not isinstance(data, dict) or data.get("kind") != SUMMARY_KIND:
        raise BsbenchError(f"{Path(out_dir) / SUMMARY_FILE} is not a bsbench sweep summary")
    return data


def run_sweep(
    plan: SweepPlan,
    make_workload: Callable[[float, int], SweepWorkload],
    run_one: RunOne,
    out_dir: str | Path,
    *,
    config_of: Callable[[str, SweepWorkload, float, int], RecordConfig],
    executor: Executor | None = None,
    watch: Watch | None = None,
    extra_summary: dict[str, Any] | None = None,
    report: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run the grid (seed, then rate, then scheduler), skipping runs whose complete record exists.

    `make_workload(rate, seed)` is called once per (rate, seed), on the driver, and its result goes to every
    scheduler (paired); `config_of(scheduler, workload, rate, seed)` is the RecordConfig that run will carry
    (its key: `run_key`). The runs left are RunTasks for `executor` (default serial), one per key;
    `run_one(task)` runs one and returns its record unsaved, and this driver writes it under OUT/runs; the
    executor is closed when the sweep ends. Before
    anything runs, a folder holding runs of another setting is refused (check_same_setting). A run that failed
    twice is in `result.failures` with its reason, and the sweep goes on; `result.retries` counts the second
    tries. The summary file is rewritten after every run, so an interrupted sweep (KeyboardInterrupt) leaves
    a valid summary, keeps every finished record, and is resumed by running the same sweep again. A damaged
    run file in OUT/runs is set aside (folder_records) and `report`ed in one line before anything runs.
    """

    out = Path(out_dir)
    runs_dir = out / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    existing = folder_records(out, report)
    result = SweepResult(plan, out, earlier=finished_runs(existing))
    tasks: list[RunTask] = []
    for seed in plan.seeds:
        for rate in plan.rates:
            workload = make_workload(rate, seed)
            fingerprint = workload.fingerprint()
            configs = {s: config_of(s, workload, rate, seed) for s in plan.schedulers}
            check_same_setting(out, existing, {s: (c, workload.spec) for s, c in configs.items()})
            for scheduler in plan.schedulers:
                key = run_key(configs[scheduler], fingerprint)
                result.order[key] = len(result.order)
                if key in result.earlier:
                    result.add(SweepRun.of_record(result.earlier[key], resumed=True))
                else:
                    tasks.append(RunTask(len(result.order) - 1, key, scheduler, rate, seed, workload, fingerprint))
    write_summary(result, extra_summary)
    if watch is not None:
        watch.planned(result.resumed)
    executor = executor or SerialExecutor()
    outcomes = executor.run(tasks, run_one, watch)
    try:
        for outcome in outcomes:
            result.retries += outcome.attempts - 1
            if outcome.record is None:
                task = outcome.task
                result.failures.append(FailedRun(task.key, task.scheduler, task.rate, task.seed,
                                                 outcome.error or "", outcome.attempts))
                write_summary(result, extra_summary)
                if watch is not None:
                    watch.ended(outcome.task.key, failed=True)
                continue
            record = outcome.record
            got = record_key(record)
            if got != outcome.task.key:
                raise BsbenchError(f"run {outcome.task.key} produced a record with key {got}: the engine did not "
                                   f"run the sweep's workload and configuration")
            save_record(record, runs_dir, encoded=outcome.encoded)
            run = SweepRun.of_record(record, resumed=False)
            result.add(run)
            write_summary(result, extra_summary)
            if watch is not None:
                watch.ended(run.key)
    except KeyboardInterrupt as exc:
        unfinished = getattr(exc, "record", None)  # bench.InterruptedRun: the serial run Ctrl-C ended
        if isinstance(unfinished, RunRecord) and unfinished.path is None:
            save_record(unfinished, runs_dir)
        result.interrupted = True
        write_summary(result, extra_summary)
        raise
    finally:
        outcomes.close()  # closed early (Ctrl-C, an error), an executor's generator stops its workers
        executor.close()
    return result


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The HEADLINE metrics of a run summary; attainment and goodput are None, and `slos` says NO_SLOS, when
    no request carried an SLO (they would only repeat the completion share and the throughput)."""
    values = {k: summary.get(k) for k in HEADLINE}
    if not has_slos(summary):
        values.update({k: None for k in SLO_KEYS & set(HEADLINE)}, slos=NO_SLOS)
    return values


def mean_over_repeats(runs: Sequence[SweepRun], scheduler: str, rate: float, key: str) -> float | None:
    """The mean of summary `key` over the finished runs (repeats) of one (scheduler, rate); None when none."""
    values = [float(r.summary[key]) for r in runs
              if r.complete and r.scheduler == scheduler and r.rate == rate and r.summary.get(key) is not None]
    return sum(values) / len(values) if values else None


GRID_KEYS = ("slo_attainment", "output_throughput", "p99_ttft_ms")


def grid(result: SweepResult) -> tuple[str, list[str], list[list[str]]]:
    """The sweep as text: what a cell shows, a header (rate, then the schedulers) and a row per rate whose
    cells read 'attainment · output tok/s · p99 TTFT' over the measurement window (mean over repeats; records
    without a window: over every request), then '· overloaded' (or 'overloaded k/n' of n repeats) when the
    queue grew without bound; without SLOs, no attainment."""
    finished = [r for r in result.runs if r.complete]
    with_slos = any(has_slos(r.summary) for r in finished)
    windowed = bool(finished) and all(r.summary.get(STEADY + "output_throughput") is not None for r in finished)
    prefix = STEADY if windowed else ""
    rows = []
    for rate in result.plan.rates:
        cells = [format_rate(rate)]
        for scheduler in result.plan.schedulers:
            att, tput, ttft = (mean_over_repeats(result.runs, scheduler, rate, prefix + key) for key in GRID_KEYS)
            parts = [format_percent(att, "—")] if with_slos else []
            parts += ["—" if tput is None else f"{tput:,.1f} tok/s", "—" if ttft is None else f"{ttft:,.0f} ms"]
            repeats = [r for r in finished if r.scheduler == scheduler and r.rate == rate]
            overloaded = sum(bool(r.summary.get("overloaded")) for r in repeats)
            if overloaded:
                parts.append(OVERLOADED if overloaded == len(repeats) else f"{OVERLOADED} {overloaded}/{len(repeats)}")
            cells.append(" · ".join(parts))
        rows.append(cells)
    what = ("SLO attainment · " if with_slos else "") + "output tokens/s · p99 TTFT (mean over repeats"
    what += ", requests arriving in the measurement window)" if windowed else ", every request)"
    if not with_slos:
        what += "; no SLOs set"
    return what, ["rate (req/s)", *result.plan.schedulers], rows


def sweep_points(runs: Sequence[SweepRun]) -> list[dict[str, Any]]:
    """Plot points (scheduler, rate, headline metrics) from SweepRun objects."""
    return [{"scheduler": run.scheduler, "rate": float(run.rate), **headline(run.summary)} for run in runs]


def sweep_plots(result: SweepResult, target: float | None = None, note: str = "",
                points: Sequence[dict[str, Any]] | None = None) -> list[Path]:
    """The sweep's plots into OUT: attainment vs rate (only when some request carries an SLO: without SLOs
    attainment is vacuous), throughput vs rate, p50/p99 latency vs load, the throughput-latency Pareto view.
    `points` default to one per finished run (sweep_points); points carrying `<key>_low/_high` get bands.
    `note` headlines them (RecordConfig.timing_label of simulated runs)."""
    # lazy: loads matplotlib
    from bsbench.report import plots_sweep

    complete = [r for r in result.runs + result.others() if r.complete]
    points = list(points) if points is not None else sweep_points(complete)
    out = result.out_dir
    pngs = []
    if any(has_slos(r.summary) for r in complete):
        pngs.append(plots_sweep.versus_rate(points, "slo_attainment", "SLO attainment",
                                            out / "attainment_vs_rate.png", target=target, note=note))
    pngs += [
        plots_sweep.versus_rate(points, "output_throughput", "output tokens/s", out / "throughput_vs_rate.png",
                                note=note),
        plots_sweep.latency_vs_load(points, out / "latency_vs_rate.png", note=note),
        plots_sweep.pareto_view(points, out / "pareto_throughput_latency.png", note=note),
    ]
    return pngs
