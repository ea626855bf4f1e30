"""A grid of runs: schedulers x rates x repeats, paired and resumable.

At each (rate, seed) the workload is built once and every scheduler replays
that same request list (same ids, tokens and arrival times: one workload
fingerprint), so the comparison is paired. Each finished run is identified by
a deterministic key (scheduler, rate, seed, workload fingerprint); a sweep run
again into the same folder skips the runs whose complete record is already
there. Layout of the output folder:

    OUT/runs/*.json          one run record per run
    OUT/sweep_summary.json   the grid, each run's key, record path and headline metrics
    OUT/*.png                plots against the rate (bsbench.plots_sweep)
    OUT/report.html          the self-contained report page (bsbench.html_report)

The engine is reached through callables (`make_workload`, `run_one`), so the
logic is tested with fakes and the CLI plugs in `run_benchmark`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bsbench.errors import BsbenchError
from bsbench.jsonio import write_json_atomic
from bsbench.record import RunRecord, read_records
from bsbench.safe_json import load_file
from bsbench.units import format_percent, format_rate
from bsbench.values import parse_rate

SUMMARY_KIND = "bsbench-sweep-summary"
SUMMARY_FILE = "sweep_summary.json"
RUNS_DIR = "runs"
HEADLINE = ("completed", "failed", "rejected", "oom_events", "preemptions", "request_throughput",
            "output_throughput", "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "median_e2el_ms",
            "p99_e2el_ms", "slo_attainment", "goodput", "padding_ratio", "peak_kv_usage")


class HasFingerprint(Protocol):
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
            raise BsbenchError(f"unknown scheduler {unknown[0]!r} (choose from {', '.join(sorted(known))})")
    return names


def run_key(scheduler: str, rate: float, seed: Any, fingerprint: str, backend: str = "real") -> str:
    """The identity of one run of a sweep: equal keys = the same work, done once. `backend` is
    RecordConfig.backend_id(): a simulated run never stands in for a real one, nor one cost model for another."""
    rate_text = format_rate(float(rate)) if math.isinf(float(rate)) else repr(float(rate))
    key = f"{scheduler}|{rate_text}|{seed}|{fingerprint}"
    return key if backend == "real" else f"{key}|{backend}"


def record_key(record: RunRecord) -> str:
    config = record.config
    return run_key(config.scheduler, config.rate, config.seed, record.workload.fingerprint, config.backend_id())


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

    def to_dict(self, root: Path) -> dict[str, Any]:
        path = Path(self.path)
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            pass
        return {"key": self.key, "scheduler": self.scheduler, "rate": self.rate, "seed": self.seed,
                "fingerprint": self.fingerprint, "path": path.as_posix(), "complete": self.complete,
                "resumed": self.resumed, **{k: self.summary.get(k) for k in HEADLINE}}


@dataclass(slots=True)
class SweepResult:
    plan: SweepPlan
    out_dir: Path
    runs: list[SweepRun] = field(default_factory=list)
    interrupted: bool = False

    @property
    def executed(self) -> int:
        return sum(1 for r in self.runs if not r.resumed)

    @property
    def resumed(self) -> int:
        return sum(1 for r in self.runs if r.resumed)


def finished_runs(out_dir: Path) -> dict[str, RunRecord]:
    """Complete run records already in OUT/runs, by run key (the newest wins)."""
    runs = Path(out_dir) / RUNS_DIR
    if not runs.is_dir() or not any(runs.rglob("*.json")):
        return {}
    found: dict[str, RunRecord] = {}
    for record in read_records([str(runs)], skipped=[]):
        if record.complete:
            found[record_key(record)] = record
    return found


def write_summary(result: SweepResult, extra: dict[str, Any] | None = None) -> Path:
    plan = result.plan
    pairing: dict[str, str] = {}
    for run in result.runs:
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
        "finished_runs": sum(1 for r in result.runs if r.complete),
        "interrupted": result.interrupted,
        "workload_by_rate_seed": pairing,
        "runs": [r.to_dict(result.out_dir) for r in result.runs],
        **(extra or {}),
    }
    return write_json_atomic(summary, result.out_dir / SUMMARY_FILE)


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    data = load_file(Path(out_dir) / SUMMARY_FILE, "sweep summary")
    if not isinstance(data, dict) or data.get("kind") != SUMMARY_KIND:
        raise BsbenchError(f"{Path(out_dir) / SUMMARY_FILE} is not a bsbench sweep summary")
    return data


def run_sweep(
    plan: SweepPlan,
    make_workload: Callable[[float, int], HasFingerprint],
    run_one: Callable[[str, HasFingerprint, float, int], RunRecord],
    out_dir: str | Path,
    *,
    on_run: Callable[[SweepRun, int, int], None] | None = None,
    extra_summary: dict[str, Any] | None = None,
) -> SweepResult:
    """Run the grid (seed, then rate, then scheduler), skipping runs whose complete record exists.

    `make_workload(rate, seed)` is called once per (rate, seed) and its result
    goes to every scheduler (paired); `run_one(scheduler, workload, rate, seed)`
    runs and saves one record under OUT/runs and returns it (with its "path").
    The summary file is rewritten after every run, so an interrupted sweep
    (KeyboardInterrupt from run_one) leaves a valid summary and is resumed by
    running the same sweep again.
    """
    out = Path(out_dir)
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    done = finished_runs(out)
    result = SweepResult(plan, out)
    index = 0
    try:
        for seed in plan.seeds:
            for rate in plan.rates:
                workload = make_workload(rate, seed)
                fingerprint = workload.fingerprint()
                for scheduler in plan.schedulers:
                    index += 1
                    key = run_key(scheduler, rate, seed, fingerprint, plan.backend)
                    if key in done:
                        record = done[key]
                        run = SweepRun(key, scheduler, rate, seed, fingerprint, str(record.path), True, True,
                                       record.summary)
                    else:
                        record = run_one(scheduler, workload, rate, seed)
                        got = record_key(record)
                        if got != key:
                            raise BsbenchError(f"run {key} produced a record with key {got}: the engine did not "
                                               f"replay the sweep's workload")
                        run = SweepRun(key, scheduler, rate, seed, fingerprint, str(record.path or ""),
                                       record.complete, False, record.summary)
                    result.runs.append(run)
                    write_summary(result, extra_summary)
                    if on_run is not None:
                        on_run(run, index, plan.size)
    except KeyboardInterrupt:
        result.interrupted = True
        write_summary(result, extra_summary)
        raise
    return result


def mean_over_repeats(runs: Sequence[SweepRun], scheduler: str, rate: float, key: str) -> float | None:
    """The mean of summary `key` over the finished runs (repeats) of one (scheduler, rate); None when none."""
    values = [float(r.summary[key]) for r in runs
              if r.complete and r.scheduler == scheduler and r.rate == rate and r.summary.get(key) is not None]
    return sum(values) / len(values) if values else None


def grid(result: SweepResult) -> tuple[str, list[str], list[list[str]]]:
    """The sweep as text: what a cell shows, a header (rate, then the schedulers) and a row per rate whose
    cells read 'attainment · output tok/s · p99 TTFT' (mean over repeats); without SLOs, no attainment."""
    with_slos = slos_set([r for r in result.runs if r.complete])
    rows = []
    for rate in result.plan.rates:
        cells = [format_rate(rate)]
        for scheduler in result.plan.schedulers:
            att, tput, ttft = (mean_over_repeats(result.runs, scheduler, rate, key)
                               for key in ("slo_attainment", "output_throughput", "p99_ttft_ms"))
            parts = [format_percent(att, "—")] if with_slos else []
            parts += ["—" if tput is None else f"{tput:,.1f} tok/s", "—" if ttft is None else f"{ttft:,.0f} ms"]
            cells.append(" · ".join(parts))
        rows.append(cells)
    what = ("SLO attainment · " if with_slos else "") + "output tokens/s · p99 TTFT (mean over repeats)"
    if not with_slos:
        what += "; no SLOs set"
    return what, ["rate (req/s)", *result.plan.schedulers], rows


def sweep_points(runs: Sequence[SweepRun]) -> list[dict[str, Any]]:
    """Plot points (scheduler, rate, headline metrics) from SweepRun objects."""
    return [{"scheduler": run.scheduler, "rate": float(run.rate), **{k: run.summary.get(k) for k in HEADLINE}}
            for run in runs]


def sweep_plots(result: SweepResult, target: float | None = None, note: str = "",
                points: Sequence[dict[str, Any]] | None = None) -> list[Path]:
    """The sweep's plots into OUT: attainment vs rate (only when some request carries an SLO: without SLOs
    attainment is vacuous), throughput vs rate, p50/p99 latency vs load, the throughput-latency Pareto view.
    `points` default to one per finished run (sweep_points); points carrying `<key>_low/_high` get bands.
    `note` headlines them (RecordConfig.timing_label of simulated runs)."""
    from bsbench import plots_sweep

    complete = [r for r in result.runs if r.complete]
    points = list(points) if points is not None else sweep_points(complete)
    out = result.out_dir
    pngs = []
    if slos_set(complete):
        pngs.append(plots_sweep.versus_rate(points, "slo_attainment", "SLO attainment",
                                            out / "attainment_vs_rate.png", target=target, note=note))
    pngs += [
        plots_sweep.versus_rate(points, "output_throughput", "output tokens/s", out / "throughput_vs_rate.png",
                                note=note),
        plots_sweep.latency_vs_load(points, out / "latency_vs_rate.png", note=note),
        plots_sweep.pareto_view(points, out / "pareto_throughput_latency.png", note=note),
    ]
    return pngs


def slos_set(runs: Sequence[SweepRun]) -> bool:
    """True when some request of some run carried an SLO (summary `num_with_slo`)."""
    return any(run.summary.get("num_with_slo") for run in runs)
