"""Per-request and aggregate metrics: pure functions over the typed rows of a run record.

The per-request functions take one RequestRow (reports use them); the summary computes from the rows by column
(record/columns.py: `summarize` converts once, `summarize_columns` does the work with numpy), through a column
twin of each per-request formula (`*_column`) that tests/test_metrics_columns.py holds to the same result.

Definitions (key names and conventions follow vLLM's benchmarks/benchmark_serving.py; TPOT as vLLM and
SGLang compute it; goodput as DistServe and vLLM's --goodput define it):

- TTFT   = first_token_s - arrival_s, from the SCHEDULED arrival (queueing included). A client run (openai
           backend) also has `ttft_sent` = first_token_s - sent_s, from when the client sent the request
           (GuideLLM's origin): `*_ttft_sent_ms`, and `ttft_origins` names both.
- Tokens = `input_tokens`: the server's usage.prompt_tokens when the row has it, else the workload's prompt_len;
           output: `num_output` (the server's usage when believed, see openai_client). Throughputs use these;
           a client run's summary says which it used (`token_counts`).
- E2EL   = finish_s - arrival_s.
- TPOT   = (E2EL - TTFT) / (num_output - 1), vLLM/SGLang convention, only num_output > 1.
- tpot_incl_first = E2EL / num_output, GuideLLM's "TPOT" (named distinctly here).
- ITL    = every gap between consecutive token times of a request, pooled over requests.
- queue  = first_scheduled_s - arrival_s (every request that was ever scheduled).

Latency distributions (TTFT, TPOT, ITL, E2EL) are over COMPLETED requests, as
vLLM reports them over successful requests; failed and rejected requests show
up in the counts, in SLO attainment (as misses) and in the throughput
denominators' absence. Any statistic over an empty set is None (never NaN).
The "per submitted request" view (`submitted_latency_ms`) counts a request that
did not complete as +inf instead (`censored_percentile`).

SLOs: a request with an SLO meets it when its measured value is <= the SLO.
A TPOT SLO is met vacuously by a completed single-token request (TPOT is
undefined there). Joint `slo_attainment` is over ALL submitted requests: a
request counts as met when it completed and met every SLO it has (a completed
request without SLOs counts as met). Per-SLO attainment is over the requests
that carry that SLO (failed/rejected ones are misses). `goodput` is completed
requests meeting every SLO they have, per second of run duration.

Sustained load (record/window.py): the keys `steady_<key>` are the same figures over the requests that ARRIVE
inside the run's measurement window (warm-up and cool-down left out), and throughput over the window's time:
`steady_request_throughput` counts the requests that ended completed inside the window, and
`steady_output_throughput` the output tokens produced inside it, per second of the window; `steady_goodput`
the window's requests that met their SLOs per second of the window. `window` says where the window lies and
why; `overloaded` (and `overload`, its evidence: stats/saturation.py) whether the queue grew without bound.
The keys without the prefix keep their meaning: every request of the run.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bsbench.record.columns import COMPLETED, FAILED, REJECTED, RequestColumns, StepColumns
from bsbench.record.reasons import EndKind
from bsbench.record.rows import EventKind, EventRow, Outcome, RequestRow, StepRow
from bsbench.record.schema import RecordConfig, RunRecord, WorkloadInfo
from bsbench.record.window import Window, WindowSpec, resolve_window
from bsbench.stats.saturation import backlog_evidence, is_overloaded
from bsbench.workloads.arrivals import realised_rate

DEFAULT_PERCENTILES: tuple[float, ...] = (50, 90, 99)


# ----------------------------------------------------------------------------- helpers


def percentile_key(p: float) -> str:
    """90 -> 'p90', 99.9 -> 'p99.9'."""
    return f"p{float(p):g}"


def _clean(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def distribution(
    values: Sequence[float] | np.ndarray, percentiles: Iterable[float] = DEFAULT_PERCENTILES, *, scratch: bool = False
) -> dict[str, float | None]:
    """mean, median, std and pXX of `values` (linear interpolation, as numpy/vLLM); all None if empty. `scratch`:
    `values` is a float64 array its caller no longer needs, which may be reordered instead of copied (the
    pooled ITLs of a big run: a copy of every token gap)."""
    percentiles = [float(p) for p in percentiles]
    keys = ["mean", "median", "std"] + [percentile_key(p) for p in percentiles]
    if len(values) == 0:
        return dict.fromkeys(keys)
    arr = np.asarray(values, dtype=float)
    mean, std = arr.mean(), arr.std()  # before the percentiles, which may reorder a scratch array
    median, *points = np.percentile(arr, [50.0, *percentiles], overwrite_input=scratch).tolist()  # one partial sort
    out: dict[str, float | None] = {"mean": _clean(mean), "median": _clean(median), "std": _clean(std)}
    for p, value in zip(percentiles, points):
        out[percentile_key(p)] = _clean(value)
    return out


def censored_percentile(values: Sequence[float], n_censored: int, p: float) -> float | None:
    """The p-th percentile of `values` plus `n_censored` values at +inf (requests that never finished: failed or
    rejected), by numpy's linear interpolation over all len(values) + n_censored of them. +inf when the
    percentile falls in, or interpolates into, the censored tail; None when there is nothing at all. The one
    censoring rule of every "per submitted request" view (tables, CDFs)."""
    total = len(values) + n_censored
    if total == 0:
        return None
    position = (total - 1) * float(p) / 100.0
    if position > len(values) - 1:
        return math.inf
    ordered = np.sort(np.asarray(values, dtype=float))
    low, high = math.floor(position), math.ceil(position)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _sum_in_order(values: np.ndarray) -> float:
    """Python's sum of `values`, in their order: the float sums of a summary (forward_s, busy time) keep the
    result they had when computed over rows; numpy's pairwise sum may differ in the last bit."""
    return sum(values.tolist())  # 0 (an int) when empty, as before


def time_weighted_mean(values: Sequence[float] | np.ndarray, durations: Sequence[float] | np.ndarray) -> float | None:
    """The mean of a quantity that holds `values[i]` for `durations[i]` seconds; None when no time passed."""
    value, duration = np.asarray(values, dtype=float), np.asarray(durations, dtype=float)
    if value.shape != duration.shape:
        raise ValueError(f"{len(value)} values for {len(duration)} durations")
    total = _sum_in_order(duration)
    if total <= 0:
        return None
    return _clean(_sum_in_order(value * duration) / total)


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _per_second(count: float, duration_s: float) -> float | None:
    return count / duration_s if duration_s and duration_s > 0 else None


# ----------------------------------------------------------------------------- per-request


def ttft_s(req: RequestRow) -> float | None:
    return None if req.first_token_s is None else req.first_token_s - req.arrival_s


def ttft_sent_s(req: RequestRow) -> float | None:
    """TTFT from when the client sent the request (client runs only; None without `sent_s`)."""
    return None if req.first_token_s is None or req.sent_s is None else req.first_token_s - req.sent_s


def input_tokens(req: RequestRow) -> int:
    """The prompt length to account: the server's count when it reported one, else the workload's."""
    return req.prompt_len if req.server_prompt_tokens is None else req.server_prompt_tokens


def e2el_s(req: RequestRow) -> float | None:
    return None if req.finish_s is None else req.finish_s - req.arrival_s


def num_output(req: RequestRow) -> int:
    return req.num_output


def tpot_s(req: RequestRow) -> float | None:
    """vLLM convention: (E2EL - TTFT) / (n - 1), only for n > 1."""
    n, ttft, e2e = num_output(req), ttft_s(req), e2el_s(req)
    if n <= 1 or ttft is None or e2e is None:
        return None
    return (e2e - ttft) / (n - 1)


def tpot_incl_first_s(req: RequestRow) -> float | None:
    """GuideLLM's convention: E2EL / n (the first token included), for n >= 1."""
    n, e2e = num_output(req), e2el_s(req)
    if n < 1 or e2e is None:
        return None
    return e2e / n


def itls_s(req: RequestRow) -> list[float]:
    times = req.token_times
    return [b - a for a, b in zip(times, times[1:])]


def queue_s(req: RequestRow) -> float | None:
    return None if req.first_scheduled_s is None else req.first_scheduled_s - req.arrival_s


def slo_checks(req: RequestRow) -> dict[str, bool]:
    """For each SLO the request has ('ttft', 'tpot', 'e2e'): whether it was met. Unfinished = missed."""
    done = req.status is Outcome.COMPLETED
    checks: dict[str, bool] = {}
    if req.slo_ttft_ms is not None:
        v = ttft_s(req)
        checks["ttft"] = done and v is not None and _ms(v) <= req.slo_ttft_ms
    if req.slo_tpot_ms is not None:
        v = tpot_s(req)
        checks["tpot"] = done and (v is None or _ms(v) <= req.slo_tpot_ms)
    if req.slo_e2e_ms is not None:
        v = e2el_s(req)
        checks["e2e"] = done and v is not None and _ms(v) <= req.slo_e2e_ms
    return checks


NO_SLOS = "no SLOs set"  # what every report shows for attainment and goodput of a run whose requests carry no SLO
SLO_KEYS = frozenset(prefix + key for prefix in ("", "steady_")
                     for key in ("slo_attainment", "slo_attainment_ttft", "slo_attainment_tpot",
                                 "slo_attainment_e2e", "goodput"))


def has_slos(summary: dict[str, Any]) -> bool:
    """Whether any request of the run carried an SLO; without one, attainment and goodput say nothing."""
    return bool(summary.get("num_with_slo"))


def submitted_latency_ms(requests: Sequence[RequestRow], name: str, p: float) -> float | None:
    """The p-th percentile of latency `name` (ttft, tpot, e2el, queue) over every submitted request, in ms:
    a request that did not complete counts as +inf (censored_percentile); a completed one without the
    measure (TPOT of a single-token output) is left out."""
    measure = {"ttft": ttft_s, "tpot": tpot_s, "e2el": e2el_s, "queue": queue_s}[name]
    done = [measure(r) for r in requests if r.status is Outcome.COMPLETED]
    censored = sum(1 for r in requests if r.status is not Outcome.COMPLETED)
    return censored_percentile([_ms(v) for v in done if v is not None], censored, p)


def meets_slos(req: RequestRow) -> bool:
    """Completed and met every SLO it has (a completed request without SLOs meets them)."""
    return req.status is Outcome.COMPLETED and all(slo_checks(req).values())


def lateness_s(req: RequestRow) -> float | None:
    """How long after its scheduled arrival the client really sent the request (openai backend; None elsewhere)."""
    return None if req.sent_s is None else max(0.0, req.sent_s - req.arrival_s)


def departure_s(req: RequestRow) -> float:
    """When a request left the system, whatever its outcome: its finish, else its last known time."""
    if req.finish_s is not None:
        return req.finish_s
    known = [t for t in (req.first_token_s, req.first_scheduled_s, *req.token_times[-1:]) if t is not None]
    return max([req.arrival_s, *known])


def left_queue_s(req: RequestRow) -> float:
    """When a request left the waiting queue: its first scheduling (a remote server's first token when no
    scheduling is recorded), else when it ended (never scheduled). Preemptions back into the queue are not
    counted."""
    for moment in (req.first_scheduled_s, req.first_token_s):
        if moment is not None:
            return moment
    return departure_s(req)


def wait_s(req: RequestRow) -> float:
    """How long a request waited to be scheduled; one never scheduled waited until it ended."""
    wait = queue_s(req)
    return wait if wait is not None else departure_s(req) - req.arrival_s


# ----------------------------------------------------------------------------- per-request, by column
# The same definitions as the per-request functions above (their docstrings are the contract), over every request
# of a RequestColumns at once: one float64 value per request, NaN where the row function gives None.
# tests/test_metrics_columns.py checks that both agree on random rows.


def ttft_s_column(requests: RequestColumns) -> np.ndarray:
    """ttft_s of every request."""
    return requests.first_token_s - requests.arrival_s


def ttft_sent_s_column(requests: RequestColumns) -> np.ndarray:
    """ttft_sent_s of every request."""
    return requests.first_token_s - requests.sent_s


def e2el_s_column(requests: RequestColumns) -> np.ndarray:
    """e2el_s of every request."""
    return requests.finish_s - requests.arrival_s


def tpot_s_column(requests: RequestColumns) -> np.ndarray:
    """tpot_s of every request."""
    n = requests.num_output
    spread = e2el_s_column(requests) - ttft_s_column(requests)
    return np.divide(spread, n - 1, out=np.full(len(n), np.nan), where=n > 1)


def tpot_incl_first_s_column(requests: RequestColumns) -> np.ndarray:
    """tpot_incl_first_s of every request."""
    n = requests.num_output
    return np.divide(e2el_s_column(requests), n, out=np.full(len(n), np.nan), where=n >= 1)


def queue_s_column(requests: RequestColumns) -> np.ndarray:
    """queue_s of every request."""
    return requests.first_scheduled_s - requests.arrival_s


def lateness_s_column(requests: RequestColumns) -> np.ndarray:
    """lateness_s of every request."""
    late = requests.sent_s - requests.arrival_s
    return np.where(np.isnan(late), np.nan, np.maximum(0.0, late))


def itls_s_pooled(requests: RequestColumns, which: np.ndarray, *, release_tokens: bool = False) -> np.ndarray:
    """itls_s of the requests selected by the boolean mask `which`, pooled in request order. `release_tokens`:
    the columns' token times are not read again, so they are let go once the gaps are taken (a run's largest
    array: at 100k requests three copies of it were the run's peak memory)."""
    times, offsets = requests.token_times, requests.token_offsets
    if len(times) < 2:
        return np.empty(0)
    keep = np.repeat(which, np.diff(offsets))[1:]  # gap k ends at token k + 1: kept when its request is selected
    starts = offsets[1:-1]
    keep[starts[(starts > 0) & (starts < len(times))] - 1] = False  # a gap from one request's tokens to the next's
    gaps = np.diff(times)
    if release_tokens:
        del times
        requests.token_times = np.empty(0)
    return gaps[keep]


def _last_token_s(requests: RequestColumns) -> np.ndarray:
    """Each request's last token time; NaN for one without tokens."""
    offsets = requests.token_offsets
    has = offsets[1:] > offsets[:-1]
    last = np.full(len(requests), np.nan)
    last[has] = requests.token_times[offsets[1:][has] - 1]
    return last


def departure_s_column(requests: RequestColumns) -> np.ndarray:
    """departure_s of every request."""
    known = np.fmax(np.fmax(requests.arrival_s, requests.first_token_s),
                    np.fmax(requests.first_scheduled_s, _last_token_s(requests)))
    return np.where(np.isnan(requests.finish_s), known, requests.finish_s)


def left_queue_s_column(requests: RequestColumns) -> np.ndarray:
    """left_queue_s of every request."""
    left = np.where(np.isnan(requests.first_token_s), departure_s_column(requests), requests.first_token_s)
    return np.where(np.isnan(requests.first_scheduled_s), left, requests.first_scheduled_s)


def wait_s_column(requests: RequestColumns) -> np.ndarray:
    """wait_s of every request."""
    queue = queue_s_column(requests)
    return np.where(np.isnan(queue), departure_s_column(requests) - requests.arrival_s, queue)


@dataclass(slots=True)
class SloColumns:
    """slo_checks and meets_slos of every request: `has[slo]` whether it carries that SLO ('ttft', 'tpot',
    'e2e'), `met[slo]` whether it met it (meaningful where `has`), `meets` meets_slos."""

    has: dict[str, np.ndarray]
    met: dict[str, np.ndarray]
    meets: np.ndarray

    @property
    def with_slo(self) -> np.ndarray:
        """The requests with at least one SLO (slo_checks not empty)."""
        return self.has["ttft"] | self.has["tpot"] | self.has["e2e"]


def slo_columns(requests: RequestColumns) -> SloColumns:
    """slo_checks and meets_slos of every request (SloColumns)."""
    done = requests.status == COMPLETED
    tpot = tpot_s_column(requests)
    # NaN compares False: an undefined TTFT or E2E misses its SLO, an undefined TPOT meets it vacuously
    met = {"ttft": done & (_ms_column(ttft_s_column(requests)) <= requests.slo_ttft_ms),
           "tpot": done & (np.isnan(tpot) | (_ms_column(tpot) <= requests.slo_tpot_ms)),
           "e2e": done & (_ms_column(e2el_s_column(requests)) <= requests.slo_e2e_ms)}
    has = {"ttft": ~np.isnan(requests.slo_ttft_ms), "tpot": ~np.isnan(requests.slo_tpot_ms),
           "e2e": ~np.isnan(requests.slo_e2e_ms)}
    meets = done & (~has["ttft"] | met["ttft"]) & (~has["tpot"] | met["tpot"]) & (~has["e2e"] | met["e2e"])
    return SloColumns(has, met, meets)


def _ms_column(seconds: np.ndarray) -> np.ndarray:
    return seconds * 1000.0


def _defined(values: np.ndarray, which: np.ndarray) -> np.ndarray:
    """values[which], NaN (undefined) left out, in request order."""
    return values[which & ~np.isnan(values)]


# ----------------------------------------------------------------------------- aggregate


def offered_rate(arrivals_s: Sequence[float]) -> float | None:
    """The load a run whose requests arrived at `arrivals_s` was offered: (n - 1) / (last arrival - first arrival)
    in req/s (arrivals.realised_rate); None for fewer than two requests and when they all arrived at once (rate
    inf)."""
    return _clean(realised_rate(arrivals_s))


def _latency_block(name: str, values_s: np.ndarray, percentiles: Sequence[float]) -> dict[str, float | None]:
    dist = distribution(_ms_column(values_s), percentiles)
    return {f"{stat}_{name}_ms": value for stat, value in dist.items()}


def _slo_metrics(slos: SloColumns, which: np.ndarray, duration_s: float) -> dict[str, Any]:
    """Attainment and goodput of the requests selected by `which` (module docstring)."""
    out: dict[str, Any] = {}
    submitted = int(np.count_nonzero(which))
    met = int(np.count_nonzero(slos.meets & which))
    out["slo_attainment"] = met / submitted if submitted else None
    for slo in ("ttft", "tpot", "e2e"):
        carried = slos.has[slo] & which
        checked = int(np.count_nonzero(carried))
        out[f"slo_attainment_{slo}"] = int(np.count_nonzero(slos.met[slo] & carried)) / checked if checked else None
    out["num_with_slo"] = int(np.count_nonzero(slos.with_slo & which))
    out["goodput"] = _per_second(met, duration_s)
    return out


def _client_metrics(requests: RequestColumns, percentiles: Sequence[float]) -> dict[str, Any]:
    """The client's own punctuality (openai backend): requests flagged late, and the lateness distribution.
    Empty for engine runs, whose requests are admitted at their arrival by construction."""
    everyone = np.ones(len(requests), dtype=bool)
    late = _defined(lateness_s_column(requests), everyone)
    if not len(late):
        return {}
    completed = requests.status == COMPLETED
    return {"late_requests": int(np.count_nonzero(requests.late)), "max_lateness_ms": _ms(float(late.max())),
            **_latency_block("lateness", late, percentiles),
            **_latency_block("ttft_sent", _defined(ttft_sent_s_column(requests), completed), percentiles),
            "ttft_origins": {"ttft": "scheduled arrival", "ttft_sent": "sent"},
            "token_counts": token_counts(requests.has_server_prompt[completed], requests.usage_counted[completed])}


def token_counts(server_input: np.ndarray, server_output: np.ndarray) -> dict[str, str]:
    """Whose token counts the throughputs of some (completed) requests used, from one flag per request each:
    whether its input count is the server's (`server_input`) and its output count the server's usage
    (`server_output`). 'server' for all of them, 'workload' (input) / 'client' (output, counted from the stream)
    for none, else 'mixed'."""

    def who(flags: np.ndarray, otherwise: str) -> str:
        return "server" if len(flags) and bool(flags.all()) else "mixed" if bool(flags.any()) else otherwise

    return {"input": who(server_input, "workload"), "output": who(server_output, "client")}


def _step_metrics(steps: StepColumns, duration_s: float, percentiles: Sequence[float]) -> dict[str, Any]:
    n = len(steps)
    out: dict[str, Any] = {"num_steps": n}
    total_tokens = int(steps.num_tokens.sum())
    pad_tokens = int(steps.pad_tokens.sum())
    out["computed_tokens"] = total_tokens
    out["pad_tokens"] = pad_tokens
    out["padding_ratio"] = pad_tokens / total_tokens if total_tokens else None
    out["mean_kv_usage"] = _mean_kv_usage(steps, duration_s)
    out["peak_kv_usage"] = float(steps.kv_usage.max()) if n else None
    out["peak_kv_blocks"] = int(steps.kv_blocks_used.max()) if n else None
    dist = distribution(steps.num_seqs, percentiles)
    out["mean_batch_size"] = dist["mean"]
    out["median_batch_size"] = dist["median"]
    for p in percentiles:
        out[f"{percentile_key(p)}_batch_size"] = dist[percentile_key(p)]
    out["max_batch_size"] = int(steps.num_seqs.max()) if n else None
    sizes, counts = np.unique(steps.num_seqs, return_counts=True)
    out["batch_size_histogram"] = {str(int(k)): int(v) for k, v in zip(sizes, counts)}
    out["mean_step_ms"] = _clean(_ms(float(np.mean(steps.duration_s)))) if n else None
    forward = _sum_in_order(steps.forward_s)
    out["forward_s"] = forward
    instances = len(steps.instance_groups()) or 1  # a disaggregated run: its instances' mean busy share
    out["forward_share"] = forward / (duration_s * instances) if n and duration_s and duration_s > 0 else None
    layouts, counts = np.unique(steps.layout, return_counts=True)
    out["steps_by_layout"] = {str(k): int(v) for k, v in zip(layouts, counts)}
    return out


def _mean_kv_usage(steps: StepColumns, duration_s: float) -> float | None:
    """KV usage averaged over the run's time. Blocks change only between steps, so a step's usage holds for its
    whole duration; the time outside steps counts as empty, since the engine is then either choosing the next
    plan (microseconds) or idle with nothing to run, and a policy with nothing to run holds no KV. A disaggregated
    run (steps of several instances): the mean over its instances of each one's own figure."""
    if not len(steps):
        return None
    means = []
    for own in steps.instance_groups():
        durations = steps.duration_s[own]
        idle = max(0.0, (duration_s or 0.0) - _sum_in_order(durations))
        means.append(time_weighted_mean(np.append(steps.kv_usage[own], 0.0), np.append(durations, idle)))
    if len(means) == 1:
        return means[0]
    known = [m for m in means if m is not None]
    return sum(known) / len(known) if known else None


def _event_metrics(requests: RequestColumns, events: Sequence[EventRow]) -> dict[str, Any]:
    kinds = Counter(e.kind for e in events)
    reasons, counts = np.unique(requests.reason_kind, return_counts=True)
    ended = {str(kind): int(count) for kind, count in zip(reasons, counts)}
    failed = requests.status == FAILED
    return {
        "oom_events": kinds.get(EventKind.OOM.value, 0),
        "oom_failed": int(np.count_nonzero(failed & (requests.reason_kind == EndKind.OOM.value))),
        "ended_by_reason": {kind.value: ended.get(kind.value, 0) for kind in EndKind},
        "preemptions": int(requests.preemptions.sum()),
        "preemption_events": kinds.get(EventKind.PREEMPTION.value, 0),
        "rejection_events": kinds.get(EventKind.REJECTION.value, 0),
        "truncation_events": kinds.get(EventKind.TRUNCATION.value, 0),
        "events_by_kind": dict(sorted((str(k), v) for k, v in kinds.items())),
    }


STEADY = "steady_"  # prefix of the figures over the measurement window


def window_metrics(requests: Sequence[RequestRow], window: Window | None,
                   percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, Any]:
    """The `steady_*` figures, `window`, `overloaded` and `overload` of the module docstring."""
    return window_metrics_columns(RequestColumns.from_rows(requests), window, percentiles)


def _inside(values: np.ndarray, window: Window) -> np.ndarray:
    """Window.contains of every value (NaN: outside)."""
    return (values >= window.start_s) & (values <= window.end_s)


def window_metrics_columns(requests: RequestColumns, window: Window | None,
                           percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                           slos: SloColumns | None = None) -> dict[str, Any]:
    """window_metrics over columns; `slos`: slo_columns(requests) when the caller has it already."""
    if window is None:
        return {"window": None, "overloaded": False, "overload": None}
    scored = _inside(requests.arrival_s, window)
    completed = requests.status == COMPLETED
    done = scored & completed
    length = window.length_s
    out: dict[str, Any] = {"window": window.to_json()}
    out[STEADY + "num_requests"] = int(np.count_nonzero(scored))
    out[STEADY + "completed"] = int(np.count_nonzero(done))
    ended = int(np.count_nonzero(completed & _inside(requests.finish_s, window)))
    tokens = int(np.count_nonzero(_inside(requests.token_times, window)))
    out[STEADY + "request_throughput"] = _per_second(ended, length)
    out[STEADY + "output_throughput"] = _per_second(tokens, length)
    blocks: dict[str, Any] = {}
    blocks.update(_latency_block("ttft", _defined(ttft_s_column(requests), done), percentiles))
    blocks.update(_latency_block("tpot", _defined(tpot_s_column(requests), done), percentiles))
    blocks.update(_latency_block("e2el", _defined(e2el_s_column(requests), done), percentiles))
    blocks.update(_latency_block("queue", _defined(queue_s_column(requests), scored), percentiles))
    blocks.update(_slo_metrics(slo_columns(requests) if slos is None else slos, scored, length))
    out.update({STEADY + k: v for k, v in blocks.items() if not k.startswith("std_")})
    waits = np.column_stack((requests.arrival_s[scored], wait_s_column(requests)[scored]))
    evidence = backlog_evidence(requests.arrival_s, left_queue_s_column(requests), waits,
                                window.start_s, window.end_s)
    out["overloaded"] = is_overloaded(evidence)
    out["overload"] = evidence
    return out


def steady(summary: dict[str, Any], key: str) -> Any:
    """The sustained-load figure of `key` (its `steady_` key) when the summary has one (schema 6), else the
    all-requests figure of older records."""
    return summary[STEADY + key] if STEADY + key in summary else summary.get(key)


def summarize(
    requests: Sequence[RequestRow],
    steps: Sequence[StepRow],
    events: Sequence[EventRow],
    duration_s: float,
    num_kv_blocks: int | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    window: WindowSpec | None = None,
) -> dict[str, Any]:
    """The summary of one run. Every value is JSON-safe: numbers, None, strings, small dicts. `window`: how
    the measurement window is chosen (record/window.py; None: the default)."""
    return summarize_columns(RequestColumns.from_rows(requests), StepColumns.from_rows(steps), events, duration_s,
                             num_kv_blocks=num_kv_blocks, percentiles=percentiles, window=window,
                             release_tokens=True)


def summarize_columns(
    requests: RequestColumns,
    steps: StepColumns,
    events: Sequence[EventRow],
    duration_s: float,
    num_kv_blocks: int | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    window: WindowSpec | None = None,
    release_tokens: bool = False,
) -> dict[str, Any]:
    """summarize over the rows by column. `release_tokens`: `requests` were made for this summary alone, and their
    token times may be let go once read (itls_s_pooled)."""
    percentiles = tuple(float(p) for p in percentiles)
    n = len(requests)
    completed = requests.status == COMPLETED
    everyone = np.ones(n, dtype=bool)
    n_completed = int(np.count_nonzero(completed))
    n_failed = int(np.count_nonzero(requests.status == FAILED))
    n_rejected = int(np.count_nonzero(requests.status == REJECTED))
    prompt_tokens = int(requests.input_tokens[completed].sum())
    output_tokens = int(requests.num_output[completed].sum())
    generated = int(requests.num_output.sum())
    arrivals = requests.arrival_s.tolist()

    s: dict[str, Any] = {
        "num_requests": n,
        "completed": n_completed,
        "failed": n_failed,
        "rejected": n_rejected,
        "counts_add_up": n_completed + n_failed + n_rejected == n,
        "truncated": int(np.count_nonzero(requests.truncated)),
        "duration_s": duration_s,
        "total_input_tokens": prompt_tokens,
        "total_output_tokens": output_tokens,
        "generated_tokens": generated,
        "offered_rate": offered_rate(arrivals),
        "request_throughput": _per_second(n_completed, duration_s),
        "output_throughput": _per_second(output_tokens, duration_s),
        "total_token_throughput": _per_second(prompt_tokens + output_tokens, duration_s),
        "generated_token_throughput": _per_second(generated, duration_s),
    }
    slos = slo_columns(requests)
    # before the ITLs, which may let the token times go
    steady_block = window_metrics_columns(requests, resolve_window(arrivals, window), percentiles, slos)
    s.update(_latency_block("ttft", _defined(ttft_s_column(requests), completed), percentiles))
    s.update(_latency_block("tpot", _defined(tpot_s_column(requests), completed), percentiles))
    itl_ms = itls_s_pooled(requests, completed, release_tokens=release_tokens)
    itl_ms *= 1000.0  # in place, as _ms_column: the run's largest array is not copied
    s.update({f"{stat}_itl_ms": value for stat, value in distribution(itl_ms, percentiles, scratch=True).items()})
    del itl_ms
    s.update(_latency_block("e2el", _defined(e2el_s_column(requests), completed), percentiles))
    incl = _ms_column(_defined(tpot_incl_first_s_column(requests), completed))
    s["mean_tpot_incl_first_ms"] = _clean(float(np.mean(incl))) if len(incl) else None
    s["median_tpot_incl_first_ms"] = _clean(float(np.median(incl))) if len(incl) else None
    s.update(_latency_block("queue", _defined(queue_s_column(requests), everyone), percentiles))
    s.update(_slo_metrics(slos, everyone, duration_s))
    s.update(_step_metrics(steps, duration_s, percentiles))
    s.update(_event_metrics(requests, events))
    s.update(_client_metrics(requests, percentiles))
    s.update(steady_block)
    s["num_kv_blocks"] = num_kv_blocks
    s["percentiles"] = list(percentiles)
    return s


# Direction of each headline metric, for reports and gates: +1 higher is better, -1 lower is better.
HIGHER_IS_BETTER = {
    "request_throughput", "output_throughput", "total_token_throughput", "generated_token_throughput",
    "slo_attainment", "slo_attainment_ttft", "slo_attainment_tpot", "slo_attainment_e2e", "goodput",
    "completed", "mean_batch_size",
}


def direction(key: str) -> int:
    """+1 if a higher value of summary key `key` is better, -1 if lower is better, 0 if neither."""
    key = key.removeprefix(STEADY)
    if key in HIGHER_IS_BETTER:
        return 1
    if key.endswith("_ms") or key in {
        "failed", "rejected", "oom_events", "oom_failed", "preemptions", "preemption_events",
        "padding_ratio", "truncated", "rejection_events", "truncation_events", "pad_tokens",
    }:
        return -1
    return 0


def build_record(*, config: RecordConfig, environment: dict[str, Any], workload: WorkloadInfo,
                 requests: Sequence[RequestRow], steps: Sequence[StepRow], events: Sequence[EventRow],
                 scheduler: dict[str, Any], duration_s: float, complete: bool,
                 percentiles: Sequence[float] | None = None, window: WindowSpec | None = None) -> RunRecord:
    """A run record from its rows, with its summary computed by `summarize` (the record never computes its own)."""
    summary = summarize(requests, steps, events, duration_s, num_kv_blocks=config.num_kv_blocks,
                        percentiles=DEFAULT_PERCENTILES if percentiles is None else percentiles, window=window)
    return RunRecord(config, dict(environment), workload, summary, dict(scheduler), list(requests), list(steps),
                     list(events), complete=bool(complete), created=datetime.now(UTC).isoformat(timespec="seconds"))


def rescore(record: RunRecord, window: WindowSpec | None) -> RunRecord:
    """The record with its summary computed again over `window` (a client that built it with the default window:
    the openai backend). Everything but the summary and config.window is kept."""
    config = dataclasses.replace(record.config, window=None if window is None else window.to_json())
    summary = summarize(record.requests, record.steps, record.events, float(record.summary.get("duration_s") or 0.0),
                        num_kv_blocks=config.num_kv_blocks, percentiles=record.summary.get("percentiles")
                        or DEFAULT_PERCENTILES, window=window)
    keep = {k: v for k, v in record.summary.items() if k not in summary}  # e.g. the client's unsent_requests
    return dataclasses.replace(record, config=config, summary={**summary, **keep}, path=None)
