"""A grid of runs: schedulers x rates x repeats, paired and resumable.

At each (rate, seed) the workload is built once and every scheduler replays
that same request list (same ids, tokens and arrival times: one workload
fingerprint), so the comparison is paired. Each finished run is identified by
a deterministic key (scheduler, rate, seed, workload fingerprint); a sweep run
again into the same folder skips the runs whose complete record is already
there. Layout of the output folder:

    OUT/runs/*.json          one run record per run
    OUT/sweep_summary.json   the grid, each run's key, record path and headline metrics
    OUT/attainment_vs_rate.png, OUT/throughput_vs_rate.png

`sweep_summary.json` keys: "runs" (one entry per run: key, scheduler, rate, seed, path, complete, resumed and
the HEADLINE metrics of its record) and "points" (one entry per (scheduler, rate), over its complete runs):
"scheduler", "rate", "repeats" (K, the complete runs), "seeds", and per headline metric M the mean M over the
repeats; with K >= 2 also "M_low" and "M_high", the 95% t-interval over the K seeds (cell_stats.across_seeds:
clipped at 0, and at 1 for shares), null when a run lacks M. With K = 1 there is no M_low / M_high.

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
from bsbench.units import format_rate
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
        "points": summary_points(result.runs),
        **(extra or {}),
    }
    return write_json_atomic(summary, result.out_dir / SUMMARY_FILE)


def summary_points(runs: Sequence[SweepRun]) -> list[dict[str, Any]]:
    """One point per (scheduler, rate) over its complete runs: mean of each HEADLINE metric over the repeats and,
    with two or more, its 95% interval across seeds as M_low / M_high (see the module docstring)."""
    from bsbench.cell_stats import across_seeds

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


def sweep_points(runs: Sequence[SweepRun]) -> list[dict[str, Any]]:
    """Plot points (scheduler, rate, headline metrics) from SweepRun objects."""
    return [{"scheduler": run.scheduler, "rate": float(run.rate), **{k: run.summary.get(k) for k in HEADLINE}}
            for run in runs]


def sweep_plots(result: SweepResult, target: float | None = None, note: str = "") -> list[Path]:
    """The versus-rate plots; `note` headlines them (RecordConfig.timing_label of simulated runs)."""
    from bsbench import plots

    points = sweep_points([r for r in result.runs if r.complete])
    return [
        plots.versus_rate(points, "slo_attainment", "SLO attainment", result.out_dir / "attainment_vs_rate.png",
                          target=target, note=note),
        plots.versus_rate(points, "output_throughput", "output tokens/s", result.out_dir / "throughput_vs_rate.png",
                          note=note),
    ]
