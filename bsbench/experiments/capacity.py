"""System load capacity (BucketServe): the highest request rate whose SLO attainment stays >= a target.

Search as vLLM's serve_sla and DistServe's search_binary do: probe a start
rate; double while the target is met (halve while it is not), which brackets
the capacity between a passing rate `lo` and a failing rate `hi`; then bisect
until hi - lo <= tolerance, or until the midpoint is a rate already probed
(floats cannot split the bracket any finer: a tiny tolerance must end too).
A probe passes when its attainment (over the measurement window) reaches the target AND its run was not
overloaded (the probe's info says `overloaded`: a queue that grows without bound fails whatever its attainment).
`confirm_search` checks a found capacity again (at twice the duration): it probes the capacity, then the
failing end of its bracket, and searches on from there only when one of them changes its answer.
The curve is assumed to fall with the rate; a noisy, non-monotone curve gives
one passing rate of the bracket, not a proof that every lower rate passes.
Several searches (schedulers, repeats) run in lock step with
`find_capacities`: each round's probes at once, each search in its own order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar


@dataclass(slots=True)
class Probe:
    rate: float
    attainment: float | None
    passed: bool
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the record path, overloaded


@dataclass(slots=True)
class CapacityResult:
    """`rate`: the highest passing rate found (None if even the smallest probe failed).

    `capped`: the search stopped at `max_rate` while still passing (capacity >= max_rate).
    `bracket`: (highest passing, lowest failing) rates; either may be None.
    """

    rate: float | None
    probes: list[Probe]
    target: float
    capped: bool = False
    bracket: tuple[float | None, float | None] = (None, None)

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "target": self.target, "capped": self.capped, "bracket": list(self.bracket),
                "probes": [{"rate": p.rate, "attainment": p.attainment, "passed": p.passed, **p.info}
                           for p in self.probes]}


ProbeFn = Callable[[float], "float | None | tuple[float | None, dict[str, Any]]"]
Got = "float | None | tuple[float | None, dict[str, Any]]"  # what a probe returns: attainment, or (it, info)
Search = Generator[float, Any, CapacityResult]
K = TypeVar("K", bound=Hashable)  # what names a search (scheduler, repeat)


def find_capacity(attainment_at: ProbeFn, *search: Any, **options: Any) -> CapacityResult:
    """Doubling, then bisection, over `attainment_at(rate)` (a number in 0..1, or None = failed run);
    `search` and `options` are capacity_search's (target, start_rate, tol, max_rate; relative, min_rate).

    `attainment_at` may also return (attainment, info) to attach info (e.g. a
    record path) to the probe. `tol` is relative to the passing rate when
    `relative` (0.05: stop when hi - lo <= 5% of lo), else in req/s. Each rate
    is probed at most once. Below `min_rate` (default start_rate / 1024) the
    search gives up and returns rate None.
    """
    return find_capacities({0: capacity_search(*search, **options)},
                           lambda rates: {k: attainment_at(rate) for k, rate in rates.items()})[0]


def find_capacities(searches: dict[K, Search], probe_all: Callable[[dict[K, float]], dict[K, Any]]
                    ) -> dict[K, CapacityResult]:
    """Several searches in lock step: each round, every unfinished search's next rate goes to `probe_all`
    at once (so an executor can run them in parallel), which returns what each probe got (`Got`). Each
    search keeps its own doubling-then-bisection order."""
    results: dict[K, CapacityResult] = {}
    asked: dict[K, float] = {}
    for key, search in searches.items():
        try:
            asked[key] = next(search)
        except StopIteration as stop:
            results[key] = stop.value
    while asked:
        got = probe_all(dict(asked))
        for key in list(asked):
            try:
                asked[key] = searches[key].send(got[key])
            except StopIteration as stop:
                results[key] = stop.value
                del asked[key]
    return {key: results[key] for key in searches}


def capacity_search(
    target: float = 0.8,
    start_rate: float = 1.0,
    tol: float = 0.05,
    max_rate: float = 1024.0,
    *,
    relative: bool = True,
    min_rate: float | None = None,
    next_rate: float | None = None,
) -> Search:
    """The search of `find_capacity` as a generator: it yields each rate to probe, is sent what the probe got
    (`Got`), and returns the CapacityResult. `next_rate`: the rate probed after a passing start rate instead of
    its double (confirm_search: the bracket's failing end)."""
    if not 0 < target <= 1:
        raise ValueError("target attainment must be in (0, 1]")
    if not (start_rate > 0 and math.isfinite(start_rate) and math.isfinite(max_rate)) or max_rate < start_rate:
        raise ValueError("need 0 < start_rate <= max_rate, both finite")
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError("tolerance must be a finite number > 0")
    floor = min_rate if min_rate is not None else start_rate / 1024
    probes: list[Probe] = []
    seen: dict[float, bool] = {}

    def probe(rate: float) -> Generator[float, Any, bool]:
        if rate in seen:
            return seen[rate]
        got = yield rate
        attainment, info = got if isinstance(got, tuple) else (got, {})
        passed = (attainment is not None and not math.isnan(attainment) and attainment >= target
                  and not info.get("overloaded"))
        probes.append(Probe(rate, attainment, passed, dict(info)))
        seen[rate] = passed
        return passed

    lo: float | None = None
    hi: float | None = None
    rate = start_rate
    if (yield from probe(rate)):
        lo = rate
        while hi is None:
            if lo >= max_rate:
                return CapacityResult(lo, probes, target, capped=True, bracket=(lo, None))
            rate = min(next_rate if next_rate is not None and next_rate > lo else lo * 2, max_rate)
            next_rate = None
            if (yield from probe(rate)):
                lo = rate
            else:
                hi = rate
    else:
        hi = rate
        while lo is None:
            rate = hi / 2
            if rate < floor:
                return CapacityResult(None, probes, target, bracket=(None, hi))
            if (yield from probe(rate)):
                lo = rate
            else:
                hi = rate

    def width_ok(lo: float, hi: float) -> bool:
        return hi - lo <= (tol * lo if relative else tol)

    while not width_ok(lo, hi):
        mid = (lo + hi) / 2
        if mid in seen or not lo < mid < hi:  # the bracket is as narrow as floats allow
            break
        if (yield from probe(mid)):
            lo = mid
        else:
            hi = mid
    return CapacityResult(lo, probes, target, bracket=(lo, hi))


def confirm_search(found: CapacityResult, tol: float = 0.05, max_rate: float = 1024.0, *, relative: bool = True
                   ) -> Search | None:
    """The search that confirms `found` (run it on longer probes): from its capacity, next its bracket's failing
    end; None when `found` has no capacity to confirm (none found, or the ceiling still passed)."""
    if found.rate is None or found.capped:
        return None
    return capacity_search(found.target, found.rate, tol, max(max_rate, found.rate), relative=relative,
                           next_rate=found.bracket[1])


ProbeAll = Callable[[dict[K, float]], dict[K, Any]]


def search_and_confirm(searches: dict[K, Search], probe_all_at: Callable[[bool], ProbeAll[K]], tol: float,
                       max_rate: float, relative: bool = True
                       ) -> tuple[dict[K, CapacityResult], dict[K, CapacityResult | None]]:
    """`find_capacities`, then each found capacity confirmed by `confirm_search` on longer runs:
    `probe_all_at(False)` probes at the run length of the search, `probe_all_at(True)` at twice it. Returns the
    searches' results and each one's confirmation (None where there was nothing to confirm)."""
    found = find_capacities(searches, probe_all_at(False))
    confirms = {key: search for key in searches
                if (search := confirm_search(found[key], tol, max_rate, relative=relative)) is not None}
    again = find_capacities(confirms, probe_all_at(True)) if confirms else {}
    return found, {key: again.get(key) for key in searches}
