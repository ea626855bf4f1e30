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

Repeats (several seeds at one scheduler @ rate) are averaged before checking.
Measured (wall-clock) figures are noisy, so ratios and absolute figures are
checked with the intervals compare shows (cell_stats): a regression is flagged
only when the 95% interval lies beyond the baseline by more than the tolerance
(over seeds with repeats, over requests for one run; ratios paired). Counts,
padding and every figure of a virtual-time (simulated) run are exact and are
compared exactly.
The baseline file is plain JSON written by `bsbench gate --update`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bsbench.cell_stats import figure_interval, ratio_interval
from bsbench.errors import BsbenchError
from bsbench.jsonio import decode_inf, write_json_atomic
from bsbench.metrics import NO_SLOS, has_slos
from bsbench.record import RunRecord
from bsbench.safe_json import load_file
from bsbench.stats import Interval
from bsbench.units import format_rate

BASELINE_KIND = "bsbench-gate-baseline"
BASELINE_VERSION = 1
COUNT_METRICS = ("failed", "rejected", "oom_events")
RATIO_METRICS = {"output_throughput": 1, "median_e2el_ms": -1}
ABSOLUTE_METRICS = {
    "request_throughput": 1, "output_throughput": 1, "slo_attainment": 1,
    "median_ttft_ms": -1, "p99_ttft_ms": -1, "median_tpot_ms": -1, "median_e2el_ms": -1,
}
STORED_METRICS = sorted({"num_requests", "completed", "padding_ratio", "num_with_slo", *COUNT_METRICS,
                         *RATIO_METRICS, *ABSOLUTE_METRICS})


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


def summarize_runs(records: Sequence[RunRecord]) -> dict[str, dict[str, Any]]:
    """Records -> {scheduler@rate: {scheduler, rate, seeds, fingerprints, complete, device_name, metrics}}."""
    grouped: dict[str, list[RunRecord]] = {}
    for rec in records:
        grouped.setdefault(run_key(rec.config.scheduler, rec.config.rate), []).append(rec)
    out: dict[str, dict[str, Any]] = {}
    for key, recs in sorted(grouped.items()):
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


def build_baseline(records: Sequence[RunRecord], reference: str | None = None) -> dict[str, Any]:
    runs = summarize_runs(records)
    devices = sorted({d for r in runs.values() for d in r["device_names"]})
    backends = sorted({b for r in runs.values() for b in r["backends"]})
    first = records[0] if records else None
    return {
        "kind": BASELINE_KIND,
        "version": BASELINE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "device_name": devices[0] if len(devices) == 1 else None,
        "backend": backends[0] if len(backends) == 1 else None,
        "timing": (first.config.timing_label() or "measured") if first else None,
        "model": first.config.model if first else None,
        "workload": first.workload.name if first else None,
        "reference": reference or default_reference([r["scheduler"] for r in runs.values()]),
        "runs": runs,
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
    if data.get("version") != BASELINE_VERSION:
        raise BsbenchError(f"{path} has baseline version {data.get('version')!r}; this bsbench reads "
                           f"version {BASELINE_VERSION}")
    if not isinstance(data.get("runs"), dict) or not data["runs"]:
        raise BsbenchError(f"{path} has no runs")
    for key, run in data["runs"].items():
        problem = _baseline_run_problem(run)
        if problem:
            raise BsbenchError(f"{path}: run {key!r} {problem}")
    for key in ("reference", "device_name", "backend"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise BsbenchError(f"{path}: {key} must be a string or null, got {data[key]!r}")
    return decode_inf(data)


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
    return f"has non-numeric metrics: {', '.join(map(str, bad))[:80]}" if bad else None


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
             tol: float, slack: float = 0.0, interval: Interval | None = None) -> Check | None:
    """Higher-is-better (sign 1): cur >= base*(1-tol) - slack; lower-is-better: cur <= base*(1+tol) + slack.
    With the current figure's 95% `interval`, it regressed only when the whole interval is beyond the limit."""
    if base is None:
        return None
    if cur is None:
        return Check(category, run, metric, base, None, None, False, "missing in the records")
    note = "" if interval is None else f"95% interval {interval.low:.4g}..{interval.high:.4g}"
    if sign > 0:
        limit = base * (1 - tol) - slack
        best = cur if interval is None else max(cur, interval.high)
        return Check(category, run, metric, base, cur, limit, best >= limit, note)
    limit = base * (1 + tol) + slack
    best = cur if interval is None else min(cur, interval.low)
    return Check(category, run, metric, base, cur, limit, best <= limit, note)


def _ratios(runs: dict[str, dict[str, Any]], reference: str | None) -> dict[str, dict[str, float | None]]:
    """{'sched/ref@rate': {metric: ratio}} for every scheduler with a reference run at the same rate."""
    out: dict[str, dict[str, float | None]] = {}
    if not reference:
        return out
    for key, run in runs.items():
        if run["scheduler"] == reference:
            continue
        ref = runs.get(run_key(reference, run["rate"]))
        if ref is None:
            continue
        ratios: dict[str, float | None] = {}
        for metric in RATIO_METRICS:
            a, b = run["metrics"].get(metric), ref["metrics"].get(metric)
            ratios[metric] = a / b if a is not None and b not in (None, 0) else None
        out[f"{run['scheduler']}/{reference}@{key.split('@', 1)[1]}"] = ratios
    return out


def check_records(records: Sequence[RunRecord], baseline: dict[str, Any], tolerance: float,
                  reference: str | None = None, *, ratio_tolerance: float | None = None,
                  time_tolerance: float | None = None, absolute: bool = True) -> GateResult:
    """Every check of the gate; see the module docstring.

    `tolerance` applies to counts and padding; `ratio_tolerance` and
    `time_tolerance` (absolute throughput/latency/attainment) default to it.
    `absolute=False` skips absolute times even on the baseline's device (a
    shared or noisy runner, where only counts, padding and ratios mean much).
    """
    ratio_tol = tolerance if ratio_tolerance is None else ratio_tolerance
    time_tol = tolerance if time_tolerance is None else time_tolerance
    result = GateResult()
    current = summarize_runs(records)
    by_key: dict[str, list[RunRecord]] = {}
    for rec in records:
        by_key.setdefault(run_key(rec.config.scheduler, rec.config.rate), []).append(rec)
    # measured figures get intervals; virtual-time (simulated) figures are exact and compared exactly
    noisy = bool(records) and not all(r.config.simulated for r in records)
    base_runs: dict[str, dict[str, Any]] = baseline["runs"]
    reference = reference or baseline.get("reference")

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

    base_ratios = _ratios(base_runs, reference)
    cur_ratios = _ratios(comparable, reference)
    # the records behind each ratio, named as _ratios names it (scheduler names are free text: never parsed back)
    pair_keys = {f"{run['scheduler']}/{reference}@{key.split('@', 1)[1]}": (key, run_key(str(reference), run["rate"]))
                 for key, run in comparable.items()}
    for name, ratios in sorted(base_ratios.items()):
        if name not in cur_ratios:
            continue  # its runs already failed coverage
        runs, refs = (by_key[k] for k in pair_keys[name])
        for metric, sign in RATIO_METRICS.items():
            interval = ratio_interval(runs, refs, metric) if noisy else None
            check = _bounded("ratio", name, metric, ratios.get(metric), cur_ratios[name].get(metric), sign, ratio_tol,
                             interval=interval)
            if check:
                result.checks.append(check)

    base_device = baseline.get("device_name")
    cur_devices = sorted({d for r in current.values() for d in r["device_names"]})
    if not absolute:
        result.notes.append("absolute times not gated (--no-absolute)")
    elif base_device and cur_devices == [base_device]:
        no_slos = sorted(key for key, cur in comparable.items() if cur.get("slos") == NO_SLOS)
        if no_slos:
            result.notes.append(f"SLO attainment not gated for {', '.join(no_slos)}: {NO_SLOS}")
        for key, cur in comparable.items():
            for metric, sign in ABSOLUTE_METRICS.items():
                if metric == "slo_attainment" and key in no_slos:
                    continue
                interval = figure_interval(by_key[key], metric) if noisy else None
                check = _bounded("absolute", key, metric, base_runs[key]["metrics"].get(metric),
                                 cur["metrics"].get(metric), sign, time_tol, interval=interval)
                if check:
                    result.checks.append(check)
    else:
        result.notes.append(
            f"absolute times not gated: baseline device {base_device or 'unknown'}, "
            f"records' device {', '.join(cur_devices) or 'unknown'}"
        )
    return result
