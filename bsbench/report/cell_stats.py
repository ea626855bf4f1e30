"""Intervals for the figures of a comparison: one cell = one scheduler's runs over K repeats (seeds).

Every figure of a cell gets its mean and a 95% interval:
- K >= 2 repeats: a t-interval over the K per-seed figures (`stats.t_interval`);
- K = 1: a percentile bootstrap over the run's requests, for the figures a request sample defines
  (`request_samples`: latency statistics over completed requests, SLO attainment, throughputs and goodput over
  submitted requests); the other figures of one run (padding, KV usage, batch size, counts, ITL pooled over
  tokens) are exact for that run and get no interval.

Every ratio cell / reference gets a paired interval. Runs are paired by seed (the same seed replays the same
request list: equal workload fingerprints), requests by id within a seed:
- K >= 2 repeats, every figure (latency and attainment included): one ratio per repeat and a paired t-interval
  over them (PAIRED_OVER_SEEDS). A bootstrap over requests within each repeat would see only the request-to-
  request noise of those seeds and miss how the ratio moves from seed to seed (the seed decides the arrivals,
  the lengths, so the queue): its interval can exclude every per-seed ratio;
- one repeat: latency, attainment, throughputs and goodput get a paired bootstrap over requests (within that
  run: it cannot see seed-to-seed variation, and its method says so); run-level figures get none.
Each interval carries its method; the tables footnote it per row.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bsbench.metrics import direction, e2el_s_column, queue_s_column, slo_columns, tpot_s_column, ttft_s_column
from bsbench.record import RunRecord
from bsbench.record.columns import COMPLETED, RequestColumns
from bsbench.stats import Interval, bootstrap, paired_bootstrap, paired_t_interval, statistic_for, t_interval, verdict
from bsbench.stats.statistics import Statistic, mean

LEVEL = 0.95
_LATENCY = re.compile(r"(mean|median|std|p[0-9.]+)_(ttft|tpot|e2el|queue)_ms")
_PER_REQUEST: dict[str, Callable[[RequestColumns], np.ndarray]] = {
    "ttft": ttft_s_column, "tpot": tpot_s_column, "e2el": e2el_s_column, "queue": queue_s_column}


def _completed_count(cols: RequestColumns, values: np.ndarray) -> np.ndarray:
    return np.where(cols.status == COMPLETED, values, 0).astype(np.float64)


# throughput-like figures: count or tokens per second of the run, paired per repeat when there are repeats
_RATES: dict[str, Callable[[RequestColumns], np.ndarray]] = {
    "request_throughput": lambda c: _completed_count(c, np.ones(len(c))),
    "output_throughput": lambda c: _completed_count(c, c.num_output),
    "total_token_throughput": lambda c: _completed_count(c, c.input_tokens + c.num_output),
    "goodput": lambda c: slo_columns(c).meets.astype(np.float64),
}


@dataclass(slots=True)
class Sample:
    """One run's per-request values of a figure, by request id, and the statistic that makes the figure."""

    values: dict[str, float]
    statistic: Statistic


def _by_id(ids: Sequence[str], values: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    return {ids[int(i)]: float(values[i]) for i in np.flatnonzero(keep)}


def request_samples(record: RunRecord, metric: str) -> Sample | None:
    """The request sample whose statistic is `record.summary[metric]`; None for a figure no request sample defines.

    Latencies: over completed requests (queueing: every scheduled one), in ms, as metrics.summarize. Attainment:
    1/0 per submitted request, its mean. Throughputs and goodput: per submitted request its count or tokens times
    n / duration, so that their mean is the figure. Computed from the record's columns (RunRecord.request_columns:
    a stored record's rows are never built)."""
    match = _LATENCY.fullmatch(metric)
    rate = metric in _RATES and float(record.summary.get("duration_s") or 0.0) > 0
    if not match and metric != "slo_attainment" and not rate:
        return None
    cols, ids = record.request_columns(), record.request_ids()
    if match:
        stat, name = match.groups()
        values = _PER_REQUEST[name](cols) * 1000.0
        which = np.ones(len(cols), dtype=np.bool_) if name == "queue" else cols.status == COMPLETED
        return Sample(_by_id(ids, values, which & ~np.isnan(values)), statistic_for(stat))
    everyone = np.ones(len(cols), dtype=np.bool_)
    if metric == "slo_attainment":
        return Sample(_by_id(ids, slo_columns(cols).meets.astype(np.float64), everyone), mean)
    scale = len(cols) / float(record.summary["duration_s"])
    return Sample(_by_id(ids, _RATES[metric](cols) * scale, everyone), mean)


def _figure(summary: dict, metric: str) -> float | None:
    value = summary.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return None
    return float(value)


SHARES = frozenset({"slo_attainment", "slo_attainment_ttft", "slo_attainment_tpot", "slo_attainment_e2e",
                    "padding_ratio", "peak_kv_usage", "mean_kv_usage"})


def _within_range(interval: Interval, metric: str) -> Interval:
    """A t-interval knows no bounds: clip it to what the figure can be (>= 0 for every figure, <= 1 for shares)."""
    high = min(interval.high, 1.0) if metric in SHARES else interval.high
    return dataclasses.replace(interval, low=max(interval.low, 0.0), high=high)


def across_seeds(summaries: Sequence[dict], metric: str) -> Interval | None:
    """The 95% t-interval of `metric` over K >= 2 runs' summaries (one per seed), clipped to the figure's range;
    None with fewer runs or when one lacks the figure."""
    values = [_figure(s, metric) for s in summaries]
    if len(values) < 2 or any(v is None for v in values):
        return None
    return _within_range(t_interval([v for v in values if v is not None], LEVEL), metric)


def figure_interval(records: Sequence[RunRecord], metric: str) -> Interval | None:
    """The 95% interval of `metric` over a cell's repeats (see the module docstring); None when it has none."""
    if len(records) >= 2:
        return across_seeds([r.summary for r in records], metric)
    sample = request_samples(records[0], metric) if records else None
    if sample is None or not sample.values:
        return None
    return bootstrap([list(sample.values.values())], sample.statistic, level=LEVEL)


def _pairs(runs: Sequence[RunRecord], refs: Sequence[RunRecord]) -> list[tuple[RunRecord, RunRecord]]:
    """(run, reference run) of each seed both have, where both replayed the same request list."""
    by_seed = {r.config.seed: r for r in refs}
    return [(r, by_seed[r.config.seed]) for r in runs
            if r.config.seed in by_seed and r.workload.fingerprint == by_seed[r.config.seed].workload.fingerprint]


def _ratio_per_repeat(pairs: Sequence[tuple[RunRecord, RunRecord]], metric: str) -> Interval | None:
    a = [_figure(r.summary, metric) for r, _ in pairs]
    b = [_figure(ref.summary, metric) for _, ref in pairs]
    if len(pairs) < 2 or any(v is None for v in a + b):
        return None
    got = paired_t_interval([v for v in a if v is not None], [v for v in b if v is not None], LEVEL)
    return None if got is None else dataclasses.replace(got, low=max(got.low, 0.0))  # figures are >= 0


def ratio_over_seeds(runs: Sequence[RunRecord], refs: Sequence[RunRecord], metric: str) -> Interval | None:
    """The paired 95% t-interval of `metric` of `runs` / of `refs` over seeds (one ratio per repeat), for every
    figure, latency included: the interval that sees run-to-run noise. None with fewer than 2 paired repeats."""
    return _ratio_per_repeat(_pairs(runs, refs), metric)


def ratio_interval(runs: Sequence[RunRecord], refs: Sequence[RunRecord], metric: str) -> Interval | None:
    """The paired 95% interval of `metric` of `runs` / of `refs` (see the module docstring); None when it has none."""
    pairs = _pairs(runs, refs)
    if not pairs:
        return None
    if len(pairs) >= 2:  # seed-to-seed variation is only seen across seeds
        return _ratio_per_repeat(pairs, metric)
    strata_a, strata_b = [], []
    statistic: Statistic | None = None
    for run, ref in pairs:
        sa, sb = request_samples(run, metric), request_samples(ref, metric)
        if sa is None or sb is None:
            return None
        ids = [i for i in sa.values if i in sb.values]
        if not ids:
            return None
        strata_a.append([sa.values[i] for i in ids])
        strata_b.append([sb.values[i] for i in ids])
        statistic = sa.statistic
    assert statistic is not None
    return paired_bootstrap(strata_a, strata_b, statistic, level=LEVEL)


@dataclass(slots=True)
class GroupStats:
    """The intervals of one comparison table: figures[(metric, label)], ratios[(metric, label)] (label / the
    reference), and the methods used (for the line that says how the intervals were made)."""

    figures: dict[tuple[str, str], Interval] = field(default_factory=dict)
    ratios: dict[tuple[str, str], Interval] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)
    reference: str | None = None

    def without(self, metrics: set[str]) -> GroupStats:
        """These intervals less those of `metrics` (e.g. the latency rows of a view they do not describe)."""
        return GroupStats({k: v for k, v in self.figures.items() if k[0] not in metrics},
                          {k: v for k, v in self.ratios.items() if k[0] not in metrics},
                          {k: v for k, v in self.verdicts.items() if k[0] not in metrics},
                          dict(self.repeats), self.reference)

    def describe(self) -> str:
        """One line: the level and what was resampled, for figures and for ratios."""
        figure_methods = sorted({i.method for i in self.figures.values()})
        ratio_methods = sorted({i.method for i in self.ratios.values()})
        counts = sorted(set(self.repeats.values()))
        runs = "/".join(str(k) for k in counts) or "0"
        text = f"95% intervals, {runs} run(s) per column: " + ("; ".join(figure_methods) or "none")
        if len(counts) == 1 and counts[0] == 1:
            text += " (figures of a whole run such as padding, KV usage, batch size, counts and ITL: exact, " \
                    "no interval; --repeats gives intervals over seeds)"
        if ratio_methods:
            text += "; ratios: " + "; ".join(ratio_methods)
        return text

    def clearly_best(self, metric: str, best: str, others: Sequence[str]) -> bool:
        """Whether label `best` differs clearly from every label in `others` on `metric`: by its paired ratio
        interval excluding 1 when one of the two is the reference, else by intervals that do not overlap; two
        exact figures (no interval) differ by value."""
        for other in others:
            against = other if best == self.reference else best if other == self.reference else None
            paired = self.ratios.get((metric, against)) if against is not None else None
            if paired is not None:
                if paired.contains(1.0):
                    return False
                continue
            a, b = self.figures.get((metric, best)), self.figures.get((metric, other))
            if (a is None) != (b is None) or (a is not None and b is not None and a.overlaps(b)):
                return False
        return True


def group_stats(cells: Sequence[tuple[str, Sequence[RunRecord]]], metrics: Sequence[str],
                reference: str | None = None) -> GroupStats:
    """The intervals of every (metric, cell) and of every ratio to the reference cell. `cells`: (label, repeats)."""
    out = GroupStats(repeats={label: len(records) for label, records in cells}, reference=reference)
    refs = dict(cells).get(reference) if reference is not None else None
    for label, records in cells:
        for metric in metrics:
            interval = figure_interval(records, metric)
            if interval is not None:
                out.figures[(metric, label)] = interval
            if refs is None or label == reference:
                continue
            ratio = ratio_interval(records, refs, metric)
            if ratio is not None:
                out.ratios[(metric, label)] = ratio
                out.verdicts[(metric, label)] = verdict(ratio, direction(metric), label, str(reference))
    return out
