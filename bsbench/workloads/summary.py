"""Pure summaries of a workload (counts, length percentiles, arrivals, histogram) for display and tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bsbench.workloads.arrivals import realised_rate
from bsbench.workloads.workload import Workload

PERCENTILES = (0, 50, 90, 99, 100)


def length_stats(values: list[int]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    out = {f"p{p}": float(np.percentile(arr, p)) for p in PERCENTILES}
    out["mean"] = float(arr.mean())
    return out


def arrival_stats(workload: Workload) -> dict[str, Any]:
    times = [r.arrival_s for r in workload.requests]
    span = times[-1] - times[0] if times else 0.0
    effective = realised_rate(times)
    return {"process": workload.spec.get("arrival"), "rate": workload.spec.get("rate"), "span_s": span,
            "effective_rate": math.inf if effective is None else effective}


def histogram(values: list[int], bins: int = 10) -> list[tuple[int, int, int]]:
    """[(low, high, count)] over equal-width integer bins covering min..max."""
    low, high = min(values), max(values)
    edges = np.linspace(low, high + 1, num=min(bins, high - low + 1) + 1)
    counts, _ = np.histogram(values, bins=edges)
    return [(int(math.ceil(edges[i])), int(math.ceil(edges[i + 1])) - 1, int(c)) for i, c in enumerate(counts)]


def summarize(workload: Workload) -> dict[str, Any]:
    reqs = workload.requests
    prompts = [r.prompt_len for r in reqs]
    outputs = [r.output_len for r in reqs]
    return {
        "name": workload.name, "tokenizer": workload.tokenizer, "num_requests": len(reqs),
        "fingerprint": workload.fingerprint(),
        "prompt": length_stats(prompts), "output": length_stats(outputs),
        "total": length_stats([p + o for p, o in zip(prompts, outputs)]),
        "arrivals": arrival_stats(workload),
        "online": sum(r.priority == "online" for r in reqs),
        "sources": {s: sum(r.source == s for r in reqs) for s in sorted({r.source for r in reqs})},
    }
