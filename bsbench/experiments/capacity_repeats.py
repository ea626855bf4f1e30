"""Load capacity over repeats: one search per seed, the capacity as a 95% interval, and what a failed search means.

A search that reaches its rate ceiling while still passing does not measure a capacity: the SLO is too loose
for this workload and device (or --max-rate too low). One whose lowest probe misses is the opposite: the SLO is
too tight. Both are reported in words, naming the SLO, instead of a bound such as '>= 256'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bsbench.experiments.capacity import CapacityResult
from bsbench.stats import Interval, paired_t_interval, t_interval, verdict

LEVEL = 0.95


def slo_text(slo: dict[str, Any], target: float) -> str:
    """'TTFT <= 3000 ms, TPOT <= 150 ms for >= 80% of requests' from a workload spec's 'slo' entry."""
    parts = [f"{name} <= {slo[key]} ms" for key, name in (("ttft_slo", "TTFT"), ("tpot_slo", "TPOT"),
                                                        ("e2e_slo", "E2E")) if slo.get(key) is not None]
    what = ", ".join(parts) if parts else "no SLO set (attainment = the share of requests completed)"
    return f"{what} for >= {100 * target:g}% of requests"


@dataclass(slots=True)
class CapacityOverRepeats:
    """One scheduler's searches, one per seed; `interval` when K >= 2 searches all found a capacity."""

    scheduler: str
    seeds: list[int]
    results: list[CapacityResult]
    slo: str
    max_rate: float
    confirmed: list[CapacityResult | None] = field(default_factory=list)  # per seed, at twice the window
    window_s: float | None = None  # the measurement window of each probe (run_length.py)

    @property
    def rates(self) -> list[float | None]:
        return [r.rate for r in self.results]

    def change(self) -> float | None:
        """The largest relative change of a capacity confirmed at twice the window (0.04 = 4%); None when none
        was confirmed."""
        changes = [abs(c.rate - r.rate) / r.rate for r, c in zip(self.results, self.confirmed)
                   if c is not None and c.rate is not None and r.rate]
        lost = [c for c in self.confirmed if c is not None and c.rate is None]
        if lost:
            return 1.0
        return max(changes) if changes else None

    def confirmed_text(self) -> str:
        """'0.87 (-2.1%)' per seed at twice the window, or '—' when no confirmation ran."""
        texts = []
        for r, c in zip(self.results, self.confirmed):
            if c is None or r.rate is None:
                texts.append("—")
            elif c.rate is None:
                texts.append("none (every probe failed)")
            else:
                texts.append(f"{c.rate:.3g} ({100 * (c.rate - r.rate) / r.rate:+.1f}%)")
        if not texts:
            return "—"
        return texts[0] if len(texts) == 1 else "; ".join(f"s{seed}: {t}" for seed, t in zip(self.seeds, texts))

    @property
    def found(self) -> bool:
        """Every search found a capacity (no ceiling reached, no lowest probe missed)."""
        return all(r.rate is not None and not r.capped for r in self.results)

    @property
    def interval(self) -> Interval | None:
        rates = [r for r in self.rates if r is not None]
        if not self.found or len(rates) < 2:
            return None
        got = t_interval(rates, LEVEL)
        return Interval(got.point, max(got.low, 0.0), got.high, got.level, got.method, got.n)

    def problem(self) -> str | None:
        """The SLO is too loose or too tight, in words naming it; None when every search found a capacity."""
        capped = sum(1 for r in self.results if r.capped)
        missed = [r for r in self.results if r.rate is None]
        of = f"in {{}} of {len(self.results)} search{'es' if len(self.results) > 1 else ''}"
        if capped:
            return (f"SLO too loose: {self.slo} still holds at the rate ceiling {self.max_rate:g} req/s "
                    f"(--max-rate) {of.format(capped)}; tighten the SLO (or raise --max-rate) to measure a capacity")
        if missed:
            lowest = min(p.rate for r in missed for p in r.probes)
            return (f"SLO too tight: {self.slo} is missed even at the lowest rate probed, {lowest:.3g} req/s, "
                    f"{of.format(len(missed))}; loosen the SLO (or lower --start-rate)")
        return None

    def capacity_text(self) -> str:
        """'0.875', '0.88 [0.80, 0.95]' over repeats, or 'SLO too loose' / 'SLO too tight'."""
        if not self.found:
            return "SLO too loose" if any(r.capped for r in self.results) else "SLO too tight"
        interval = self.interval
        if interval is None:
            return f"{self.rates[0]:.3g}"
        return f"{interval.point:.3g} [{interval.low:.3g}, {interval.high:.3g}]"

    def brackets_text(self) -> str:
        """Per seed: 'highest passing, lowest failing' probe rates."""
        def rate(value: float | None) -> str:
            return "—" if value is None else f"{value:.3g}"

        texts = [f"{rate(r.bracket[0])}, {rate(r.bracket[1])}" for r in self.results]
        if len(texts) == 1:
            return texts[0]
        return "; ".join(f"s{seed}: {text}" for seed, text in zip(self.seeds, texts))

    def to_dict(self) -> dict[str, Any]:
        interval = self.interval
        return {"capacity": interval.point if interval else (self.rates[0] if self.found else None),
                "low": interval.low if interval else None, "high": interval.high if interval else None,
                "interval_method": interval.method if interval else None,
                "found": self.found, "problem": self.problem(), "slo": self.slo, "window_s": self.window_s,
                "change_at_double_window": self.change(),
                "repeats": [{"seed": seed, **r.to_dict(),
                             "confirmed": c.to_dict() if (c := self._confirmed(i)) is not None else None}
                            for i, (seed, r) in enumerate(zip(self.seeds, self.results))]}

    def _confirmed(self, index: int) -> CapacityResult | None:
        return self.confirmed[index] if index < len(self.confirmed) else None


def capacity_ratio(runs: CapacityOverRepeats, reference: CapacityOverRepeats) -> tuple[str, Interval | None]:
    """The capacity of `runs` / that of `reference`, paired by seed: ('1.52x [1.31, 1.74]' or 'no clear
    difference', its interval) over K >= 2 repeats; ('1.52x', None) for one; ('—', None) when either has none."""
    if not (runs.found and reference.found):
        return "—", None
    rates = [r for r in runs.rates if r is not None]
    refs = [r for r in reference.rates if r is not None]
    if len(rates) < 2:
        return f"{rates[0] / refs[0]:.2f}x", None
    interval = paired_t_interval(rates, refs, LEVEL)
    if interval is None:
        return "—", None
    text = verdict(interval, 1, runs.scheduler, reference.scheduler)
    if text.endswith("better"):
        text = f"{interval.point:.2f}x [{interval.low:.2f}, {interval.high:.2f}]"
    return text, interval



def capacity_table(results: dict[str, CapacityOverRepeats], reference: str) -> tuple[list[str], list[list[str]]]:
    """Header and one row per scheduler: capacity (with its interval over seeds), the ratio to `reference`
    (paired by seed), the (pass, fail) bracket of each search and the number of runs. The CLI table and the
    HTML report both show these rows."""
    repeats = max((len(res.results) for res in results.values()), default=1)
    window = next((res.window_s for res in results.values() if res.window_s), None)
    header = ["scheduler", "capacity (req/s)", f"vs {reference}",
              "bracket (pass, fail)" + (" per seed" if repeats > 1 else ""),
              f"at {2 * window:g} s window (change)" if window else "at twice the window (change)", "runs"]
    rows = [[name, res.capacity_text(), capacity_ratio(res, results[reference])[0], res.brackets_text(),
             res.confirmed_text(),
             str(sum(len(r.probes) for r in [*res.results, *(c for c in res.confirmed if c is not None)]))]
            for name, res in results.items()]
    return header, rows
