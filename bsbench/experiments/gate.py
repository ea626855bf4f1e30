"""Regression gate: compare fresh run records with a committed baseline.

Timings are noisy, so the gate checks first what a noisy machine cannot fake,
and absolute times only on the same hardware:

1. coverage: every run of the baseline (scheduler @ rate) has a fresh record,
   replaying the same request list (workload fingerprint), and it completed;
2. counts: failed, rejected and OOM events may not exceed the baseline's by
   more than tolerance x num_requests (0 with --tolerance 0);
3. padding ratio: at most baseline x (1 + tolerance) + 0.005;
4. ratios between schedulers measured at the same rate in the same sweep
   (each scheduler / the reference scheduler, e.g. bucket / continuous) for
   output throughput (higher is better) and median E2E latency (lower is
   better), within the tolerance of the baseline's ratio;
5. absolute throughput, latency and SLO attainment within the tolerance,
   ONLY when the baseline's device name equals the records' device name.
   On a virtual clock (simulated runs) they are exact, so they are gated even
   with --no-absolute: a ratio alone cannot see a regression of the
   reference scheduler (making it worse makes every other scheduler look
   better), an absolute figure can;
6. on a wall clock without absolute times (--no-absolute, or another device):
   each run's own work figures, which need no absolute time (WORK_METRICS:
   the mean batch size, higher is better), within the ratio tolerance of the
   baseline's, the reference scheduler's included: a reference that batches
   less (--max-num-seqs 8, a higher watermark) fails here. Baselines written
   before this rule lack the figure and are noted, not gated, on it.

Repeats (several seeds at one scheduler @ rate) are averaged before checking.
Measured (wall-clock) figures are noisy, so ratios and absolute figures are
judged two-sample: the baseline stores each figure's and ratio's 95% interval
over seeds (version 2), and a regression is flagged only when the current
interval and the baseline's are separated by more than the tolerance (ratios:
a paired t-interval over seeds, one ratio per repeat). A run-to-run spread is
only seen across runs, so measured timings of single runs (one seed on either
side) are not gated unless `single_runs=True` asks for it; they are then judged
on the bootstrap interval over the run's requests, which is blind to machine
noise. A version-1 baseline stores points only: the current interval is
compared with that point. Counts, padding and every figure of a virtual-time
(simulated) run are exact and are compared exactly.
The baseline file is plain JSON written by `bsbench gate --update`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.jsonio import decode_inf, write_json_atomic
from bsbench.metrics import NO_SLOS, has_slos
from bsbench.record import RunRecord
from bsbench.report.cell_stats import figure_interval, ratio_interval, ratio_over_seeds
from bsbench.safe_json import load_file
from bsbench.stats import Interval
from bsbench.units import format_rate

BASELINE_KIND = "bsbench-gate-baseline"
BASELINE_VERSION = 2
READABLE_VERSIONS = (1, BASELINE_VERSION)  # version 1: points only, no intervals
COUNT_METRICS = ("failed", "rejected", "oom_events")
RATIO_METRICS = {"output_throughput": 1, "median_e2el_ms": -1}
ABSOLUTE_METRICS = {
    "request_throughput": 1, "output_throughput": 1, "slo_attainment": 1,
    "median_ttft_ms": -1, "p99_ttft_ms": -1, "median_tpot_ms": -1, "median_e2el_ms": -1,
}
WORK_METRICS = {"mean_batch_size": 1}  # time-free figures of each run's scheduling, gated without absolute times
STORED_METRICS = sorted({"num_requests", "completed", "padding_ratio", "num_with_slo", *COUNT_METRICS,
                         *RATIO_METRICS, *ABSOLUTE_METRICS, *WORK_METRICS})


def parse_tolerance(text: str | float) -> float:
    """'5%' -> 0.05, '0.05' -> 0.05. A bare number is a fraction and must be below 1."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise BsbenchError(f"tolerance must look like 5% or 0.05, got {text!r}") from None
    if math.isnan(value) or not 0 <= value < 1:
        raise BsbenchError(f"tolerance must be between 0% and 100% (e.g. 5% or 0.05), got {text!r}")
    return value


def run_key(scheduler: str, rate: Any) -> str:
    try:
        return f"{scheduler}@{format_rate(float(rate))}"
    except (TypeError, ValueError):
        return f"{scheduler}@{rate}"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def group_runs(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Records by scheduler@rate (a run's repeats together)."""
    grouped: dict[str, list[RunRecord]] = {}
    for rec in records:
        grouped.setdefault(run_key(rec.config.scheduler, rec.config.rate), []).append(rec)
    return grouped


def is_measured(records: Sequence[RunRecord]) -> bool:
    """Whether any record has wall-clock (noisy) times; virtual-time figures are exact."""
    return any(not r.config.simulated for r in records)


def summarize_runs(records: Sequence[RunRecord]) -> dict[str, dict[str, Any]]:
    """Records -> {scheduler@rate: {scheduler, rate, seeds, fingerprints, complete, device_name, metrics}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, recs in sorted(group_runs(records).items()):
        config = recs[0].config
        out[key] = {
            "scheduler": config.scheduler,
            "rate": config.rate,
            "seeds": sorted({r.config.seed for r in recs}, key=str),
            "fingerprints": sorted({r.workload.fingerprint for r in recs}),
            "complete": all(r.complete for r in recs),
            "device_names": sorted({str(r.environment.get("device_name")) for r in recs}),
            "backends": sorted({r.config.backend_id() for r in recs}),
            "metrics": {m: _mean([_num(r.summary.get(m)) for r in recs]) for m in STORED_METRICS},
        }
        if not any(has_slos(r.summary) for r in recs):  # attainment would only repeat the completion share
            out[key]["metrics"]["slo_attainment"] = None
            out[key]["slos"] = NO_SLOS
    return out


def default_reference(schedulers: Sequence[str]) -> str | None:
    names = sorted(set(schedulers))
    if not names:
        return None
    return "continuous" if "continuous" in names else names[0]


def _interval_json(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else interval.to_json()


def _gate_ratio_interval(runs: Sequence[RunRecord], refs: Sequence[RunRecord], metric: str) -> Interval | None:
    """A measured ratio's 95% interval: over seeds with repeats on both sides, else over one run's requests."""
    if min(len(runs), len(refs)) >= 2:
        return ratio_over_seeds(runs, refs, metric)
    return ratio_interval(runs, refs, metric)


def build_baseline(records: Sequence[RunRecord], reference: str | None = None) -> dict[str, Any]:
    """The baseline of `records`: per run its metrics (means over repeats) and, for measured runs, each absolute
    figure's 95% interval; per ratio to `reference` its interval too (`ratios`)."""
    runs = summarize_runs(records)
    devices = sorted({d for r in runs.values() for d in r["device_names"]})
    backends = sorted({b for r in runs.values() for b in r["backends"]})
    first = records[0] if records else None
    reference = reference or default_reference([r["scheduler"] for r in runs.values()])
    ratios: dict[str, dict[str, Any]] = {}
    if is_measured(records):
        grouped = group_runs(records)
        for key, run in runs.items():
            run["intervals"] = {m: _interval_json(figure_interval(grouped[key], m)) for m in ABSOLUTE_METRICS
                                if run["metrics"].get(m) is not None}
        for name, (key, ref_key) in _ratio_pairs(runs, reference).items():
            ratios[name] = {m: _interval_json(_gate_ratio_interval(grouped[key], grouped[ref_key], m))
                            for m in RATIO_METRICS}
    return {
        "kind": BASELINE_KIND,
        "version": BASELINE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device_name": devices[0] if len(devices) == 1 else None,
        "backend": backends[0] if len(backends) == 1 else None,
        "timing": (first.config.timing_label() or "measured") if first else None,
        "model": first.config.model if first else None,
        "workload": first.workload.name if first else None,
        "reference": reference,
        "runs": runs,
        "ratios": ratios,
    }


def write_baseline(records: Sequence[RunRecord], path: str | Path, reference: str | None = None) -> Path:
    if not records:
        raise BsbenchError("no run records to build a baseline from")
    return write_json_atomic(build_baseline(records, reference), Path(path))


def load_baseline(path: str | Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise BsbenchError(f"no such baseline: {path} (write one with: bsbench gate RECORDS... --baseline {path} "
                           f"--update)")
    data = load_file(Path(path), "gate baseline")
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise BsbenchError(f"{path} is not a bsbench gate baseline (write one with: bsbench gate RECORDS... "
                           f"--baseline {path} --update)")
    if data.get("version") not in READABLE_VERSIONS:
        raise BsbenchError(f"{path} has baseline version {data.get('version')!r}; this bsbench reads "
                           f"versions {', '.join(map(str, READABLE_VERSIONS))}")
    if not isinstance(data.get("runs"), dict) or not data["runs"]:
        raise BsbenchError(f"{path} has no runs")
    for key, run in data["runs"].items():
        problem = _baseline_run_problem(run)
        if problem:
            raise BsbenchError(f"{path}: run {key!r} {problem}")
    for key in ("reference", "device_name", "backend"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise BsbenchError(f"{path}: {key} must be a string or null, got {data[key]!r}")
    ratios = data.get("ratios", {})
    if not isinstance(ratios, dict):
        raise BsbenchError(f"{path}: ratios must be an object")
    for name, intervals in ratios.items():
        problem = _intervals_problem(intervals)
        if problem:
            raise BsbenchError(f"{path}: ratio {name!r} {problem}")
    return decode_inf(data)


def _intervals_problem(intervals: Any) -> str | None:
    """What is wrong with a {metric: {low, high, ...} or null} object of a baseline, or None."""
    if not isinstance(intervals, dict):
        return "has intervals that are not an object"
    for metric, interval in intervals.items():
        if interval is None:
            continue
        if not isinstance(interval, dict) or _num(interval.get("low")) is None or _num(interval.get("high")) is None:
            return f"has an interval for {str(metric)[:40]} without numeric low and high"
        if interval["low"] > interval["high"]:
            return f"has an interval for {str(metric)[:40]} whose low is above its high"
    return None


def _stored_interval(intervals: dict[str, Any] | None, metric: str) -> Interval | None:
    """A baseline's stored interval of `metric` (checked by load_baseline), or None (version 1, or none)."""
    got = (intervals or {}).get(metric)
    if got is None:
        return None
    return Interval(float(got.get("point", got["low"])), float(got["low"]), float(got["high"]),
                    float(got.get("level", 0.95)), str(got.get("method", "")), int(got.get("n", 0)))


def _baseline_run_problem(run: Any) -> str | None:
    """What is wrong with one run of a baseline file (a hand-edited or foreign file), or None."""
    if not isinstance(run, dict):
        return "is not an object"
    if not isinstance(run.get("scheduler"), str):
        return "has no scheduler name"
    fingerprints = run.get("fingerprints", [])
    if not isinstance(fingerprints, list) or not all(isinstance(f, str) for f in fingerprints):
        return "has fingerprints that are not a list of strings"
    metrics = run.get("metrics")
    if not isinstance(metrics, dict):
        return "has no metrics object"
    bad = [m for m, v in metrics.items() if v is not None and _num(v) is None]
    if bad:
        return f"has non-numeric metrics: {', '.join(map(str, bad))[:80]}"
    return _intervals_problem(run.get("intervals", {}))


# ----------------------------------------------------------------------------- checks


@dataclass(slots=True)
class Check:
    category: str          # coverage | counts | padding | ratio | absolute
    run: str               # scheduler@rate, or 'a/b@rate' for ratios
    metric: str
    baseline: float | None
    current: float | None
    limit: float | None
    passed: bool
    note: str = ""


@dataclass(slots=True)
class GateResult:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def passed(self) -> bool:
        return not self.failures


def _bounded(category: str, run: str, metric: str, base: float | None, cur: float | None, sign: int,
             tol: float, slack: float = 0.0, interval: Interval | None = None,
             base_interval: Interval | None = None) -> Check | None:
    """Higher-is-better (sign 1): cur >= base*(1-tol) - slack; lower-is-better: cur <= base*(1+tol) + slack.

    Measured figures compare intervals (two-sample): `interval` is the current 95% interval, `base_interval` the
    baseline's; it regressed only when the whole current interval lies beyond the baseline interval's far end by
    more than the tolerance. Without `base_interval` (a version-1 baseline) the baseline is its point."""
    if base is None:
        return None
    if cur is None:
        return Check(category, run, metric, base, None, None, False, "missing in the records")
    note = "" if interval is None else f"95% interval {interval.low:.4g}..{interval.high:.4g}"
    if base_interval is not None:
        note += f"; baseline {base_interval.low:.4g}..{base_interval.high:.4g}"
    if sign > 0:
        base_end = base if base_interval is None else min(base, base_interval.low)
        limit = base_end * (1 - tol) - slack
        best = cur if interval is None else max(cur, interval.high)
        return Check(category, run, metric, base, cur, limit, best >= limit, note)
    base_end = base if base_interval is None else max(base, base_interval.high)
    limit = base_end * (1 + tol) + slack
    best = cur if interval is None else min(cur, interval.low)
    return Check(category, run, metric, base, cur, limit, best <= limit, note)


def _ratio_pairs(runs: dict[str, dict[str, Any]], reference: str | None) -> dict[str, tuple[str, str]]:
    """{'sched/ref@rate': (run key, reference run key)} for every scheduler with a reference run at the same rate.
    Scheduler names are free text: a ratio's name is never parsed back."""
    out: dict[str, tuple[str, str]] = {}
    if not reference:
        return out
    for key, run in runs.items():
        ref_key = run_key(reference, run["rate"])
        if run["scheduler"] != reference and ref_key in runs:
            out[f"{run['scheduler']}/{reference}@{key.split('@', 1)[1]}"] = (key, ref_key)
    return out


def _ratios(runs: dict[str, dict[str, Any]], reference: str | None) -> dict[str, dict[str, float | None]]:
    """{'sched/ref@rate': {metric: ratio of the runs' (mean) figures}}."""
    out: dict[str, dict[str, float | None]] = {}
    for name, (key, ref_key) in _ratio_pairs(runs, reference).items():
        ratios: dict[str, float | None] = {}
        for metric in RATIO_METRICS:
            a, b = runs[key]["metrics"].get(metric), runs[ref_key]["metrics"].get(metric)
            ratios[metric] = a / b if a is not None and b not in (None, 0) else None
        out[name] = ratios
    return out


def _one_run_note(names: Sequence[str]) -> str:
    return (f"measured timings not gated for {', '.join(names)}: one run, no interval over seeds (sweep with "
            f"--repeats 3, or gate with --single-runs to judge them on intervals over requests)")


def check_records(records: Sequence[RunRecord], baseline: dict[str, Any], tolerance: float,
                  reference: str | None = None, *, ratio_tolerance: float | None = None,
                  time_tolerance: float | None = None, absolute: bool = True,
                  single_runs: bool = False) -> GateResult:
    """Every check of the gate; see the module docstring.

    `tolerance` applies to counts and padding; `ratio_tolerance` and
    `time_tolerance` (absolute throughput/latency/attainment) default to it.
    `absolute=False` skips absolute times even on the baseline's device (a
    shared or noisy runner, where only counts, padding and ratios mean much).
    `single_runs=True` judges measured timings of single runs too (else they
    are not gated: one run shows no run-to-run spread).
    """
    ratio_tol = tolerance if ratio_tolerance is None else ratio_tolerance
    time_tol = tolerance if time_tolerance is None else time_tolerance
    result = GateResult()
    current = summarize_runs(records)
    by_key = group_runs(records)
    # measured figures get intervals; virtual-time (simulated) figures are exact and compared exactly
    noisy = is_measured(records)
    base_runs: dict[str, dict[str, Any]] = baseline["runs"]
    reference = reference or baseline.get("reference")

    def repeated(*keys: str) -> bool:
        """Whether these runs have repeats (>= 2 seeds) in the records and in the baseline, or are judged anyway."""
        return single_runs or all(len(by_key[k]) >= 2 and len(base_runs[k].get("seeds", [])) >= 2 for k in keys)

    for key in sorted(set(current) - set(base_runs)):
        result.notes.append(f"{key} is not in the baseline: not gated")
    base_backend = baseline.get("backend") or "real"  # baselines written before the sim backend: measured
    cur_backends = sorted({b for r in current.values() for b in r["backends"]})
    if cur_backends and cur_backends != [base_backend]:
        result.checks.append(Check("coverage", "all", "backend", None, None, None, False,
                                   f"records from {', '.join(cur_backends)}; the baseline is {base_backend}"))
    comparable: dict[str, dict[str, Any]] = {}
    for key, base in sorted(base_runs.items()):
        cur = current.get(key)
        if cur is None:
            result.checks.append(Check("coverage", key, "run", None, None, None, False, "no record for this run"))
            continue
        if sorted(cur["fingerprints"]) != sorted(base.get("fingerprints", [])):
            result.checks.append(Check("coverage", key, "workload", None, None, None, False,
                                       "different request list (workload fingerprint) than the baseline"))
            continue
        if not cur["complete"]:
            result.checks.append(Check("coverage", key, "complete", None, None, None, False,
                                       "a record of this run is incomplete (interrupted)"))
            continue
        comparable[key] = cur
        n = cur["metrics"].get("num_requests") or base["metrics"].get("num_requests") or 0
        allowance = math.floor(tolerance * n)
        for metric in COUNT_METRICS:
            b, c = base["metrics"].get(metric), cur["metrics"].get(metric)
            if b is None:
                continue
            if c is None:
                result.checks.append(Check("counts", key, metric, b, None, None, False, "missing in the records"))
            else:
                result.checks.append(Check("counts", key, metric, b, c, b + allowance, c <= b + allowance))
        check = _bounded("padding", key, "padding_ratio", base["metrics"].get("padding_ratio"),
                         cur["metrics"].get("padding_ratio"), -1, tolerance, slack=0.005)
        if check:
            result.checks.append(check)

    one_run: list[str] = []
    base_ratios = _ratios(base_runs, reference)
    cur_ratios = _ratios(comparable, reference)
    pair_keys = _ratio_pairs(comparable, reference)
    # stored ratio intervals are over the baseline's own reference
    base_ratio_intervals = baseline.get("ratios", {}) if reference == baseline.get("reference") else {}
    for name, ratios in sorted(base_ratios.items()):
        if name not in cur_ratios:
            continue  # its runs already failed coverage
        if noisy and not repeated(*pair_keys[name]):
            one_run.append(name)
            continue
        runs, refs = (by_key[k] for k in pair_keys[name])
        for metric, sign in RATIO_METRICS.items():
            interval = _gate_ratio_interval(runs, refs, metric) if noisy else None
            base_interval = _stored_interval(base_ratio_intervals.get(name), metric) if noisy else None
            check = _bounded("ratio", name, metric, ratios.get(metric), cur_ratios[name].get(metric), sign, ratio_tol,
                             interval=interval, base_interval=base_interval)
            if check:
                result.checks.append(check)

    base_device = baseline.get("device_name")
    cur_devices = sorted({d for r in current.values() for d in r["device_names"]})
    same_device = bool(base_device) and cur_devices == [base_device]
    gate_absolute = same_device and (absolute or not noisy)  # virtual-clock figures are exact: always gated
    if not gate_absolute:
        _check_work(result, comparable, base_runs, by_key, ratio_tol, noisy, repeated, one_run)
    if not absolute:
        result.notes.append("virtual clock: absolute figures are exact and gated despite --no-absolute"
                            if gate_absolute else "absolute times not gated (--no-absolute)")
    if not gate_absolute and not absolute:
        pass
    elif gate_absolute:
        no_slos = sorted(key for key, cur in comparable.items() if cur.get("slos") == NO_SLOS)
        if no_slos:
            result.notes.append(f"SLO attainment not gated for {', '.join(no_slos)}: {NO_SLOS}")
        for key, cur in comparable.items():
            if noisy and not repeated(key):
                one_run.append(key)
                continue
            for metric, sign in ABSOLUTE_METRICS.items():
                if metric == "slo_attainment" and key in no_slos:
                    continue
                interval = figure_interval(by_key[key], metric) if noisy else None
                base_interval = _stored_interval(base_runs[key].get("intervals"), metric) if noisy else None
                check = _bounded("absolute", key, metric, base_runs[key]["metrics"].get(metric),
                                 cur["metrics"].get(metric), sign, time_tol, interval=interval,
                                 base_interval=base_interval)
                if check:
                    result.checks.append(check)
    else:
        result.notes.append(
            f"absolute times not gated: baseline device {base_device or 'unknown'}, "
            f"records' device {', '.join(cur_devices) or 'unknown'}"
        )
    if one_run:
        result.notes.append(_one_run_note(sorted(set(one_run))))
    return result


def _check_work(result: GateResult, comparable: dict[str, dict[str, Any]], base_runs: dict[str, dict[str, Any]],
                by_key: dict[str, list[RunRecord]], tol: float, noisy: bool, repeated: Any, one_run: list[str]
                ) -> None:
    """Rule 6 of the module docstring: each run's WORK_METRICS against the baseline's, every scheduler's."""
    missing = sorted(key for key in comparable
                     if any(base_runs[key]["metrics"].get(m) is None for m in WORK_METRICS))
    if missing:
        result.notes.append(f"{', '.join(WORK_METRICS)} not in the baseline for {', '.join(missing)}: not gated "
                            f"(regenerate the baseline with --update to gate it)")
    for key, cur in comparable.items():
        if noisy and not repeated(key):
            one_run.append(key)
            continue
        for metric, sign in WORK_METRICS.items():
            interval = figure_interval(by_key[key], metric) if noisy else None
            base_interval = _stored_interval(base_runs[key].get("intervals"), metric) if noisy else None
            check = _bounded("work", key, metric, base_runs[key]["metrics"].get(metric), cur["metrics"].get(metric),
                             sign, tol, interval=interval, base_interval=base_interval)
            if check:
                result.checks.append(check)
