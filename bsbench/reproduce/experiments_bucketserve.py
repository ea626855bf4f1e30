"""BucketServe (arXiv 2507.17120): its experiments on LLaMA-2-13B on an A100-40GB, simulated.

Per stand-in workload (alpaca, longbench, mixed; stand_ins.py): a sweep of every scheduler over the request
rate (throughput and SLO attainment against the rate, the paper's figures), and each scheduler's load capacity
(the highest rate with SLO attainment >= 80%; bsbench.capacity). Claims (claims.py): throughput vs UELLM up to
3.58x (Mixed), load capacity vs UELLM 1.975x (Alpaca) and 3.47x (Mixed), load at 80% attainment vs DistServe
1.93x (Mixed).

Where DistServe and the disaggregated bucket plug in: `DISTSERVE` is run (and its claim computed) as soon as a
scheduler of that name is registered; `BUCKET_DISAGGREGATED` holds bucket's options for its paper form
(prefill and decode instances) once the multi-instance simulation provides it. Until then the DistServe claim
reads "not comparable: needs distserve" and bucket runs in its single-instance form (Param bucket_form).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bsbench.reproduce.claims import BUCKETSERVE, BUCKETSERVE_CLAIMS
from bsbench.reproduce.common_params import REAL_NOTE, data_params
from bsbench.reproduce.engine_runs import Bench, CapacitySetting, sweep_records
from bsbench.reproduce.measure import best_rate_factor, capacity_factor
from bsbench.reproduce.outcome import ClaimResult, Reproduction
from bsbench.reproduce.params import Param, Params
from bsbench.reproduce.stand_ins import NAMES, maker
from bsbench.reproduce.verdict import Measured
from bsbench.sweep import load_summary

DISTSERVE = "distserve"
BUCKET_DISAGGREGATED: dict[str, Any] | None = None  # bucket's options for its disaggregated form, once it exists
RATES = {  # req/s; around the capacities of the schedulers on the simulated A100-40GB
    "full": {"alpaca": [1, 2, 4, 6, 8, 12, 16], "longbench": [0.25, 0.5, 1, 1.5, 2, 3, 4],
             "mixed": [1, 2, 3, 4, 6, 8, 16]},
    "quick": {"mixed": [2, 8]},
    "real": {"mixed": [1, 4]},
}


def registered(name: str) -> bool:
    from bsbench.schedulers.registry import all_schedulers

    return name in all_schedulers()


def params(quick: bool, backend: str) -> Params:
    size = "real" if backend == "real" else "quick" if quick else "full"
    disaggregated = BUCKET_DISAGGREGATED is not None
    schedulers = ["bucket", "uellm", "continuous"] + ([DISTSERVE] if registered(DISTSERVE) else [])
    model = [
        Param("model", "llama2-13b", "the paper's LLaMA-2-13B (preset shape, no weights: simulated)"),
        Param("gpu", "a100-40gb", "the paper's A100-40GB (roofline cost model unless --calibration)"),
    ] if backend == "sim" else [Param("model", "tiny", REAL_NOTE)]
    return Params([
        *model,
        Param("bucket_form", "disaggregated" if disaggregated else "single-instance",
              "the paper runs prefill and decode on separate instances; "
              + ("its disaggregated form runs here" if disaggregated else
                 "that form needs the multi-instance simulation (issue 13, not merged yet): bucket runs on one "
                 "instance, its buckets, padded prefill and N_max from free memory unchanged")),
        Param("schedulers", schedulers,
              "bucket and its baselines UELLM and DistServe (" + ("registered" if registered(DISTSERVE) else
                                                                  "DistServe not registered in this build")
              + "); continuous (vLLM-style) as the harness's reference line"),
        Param("uellm_predictor", "oracle", "UELLM's profiler as an oracle (true lengths): UELLM at its best, so "
                                           "the claims against it are tested conservatively"),
        Param("uellm_max_batch", 10, "UELLM's public code: batches of at most 10"),
        Param("bucket_max_num_seqs", 64, "not given by the paper; vLLM's usual cap; N_max from free memory "
                                         "bounds each batch further (the paper's rule)"),
        *data_params(backend),
        Param("ttft_slo_ms", 10000.0,
              "not given: a DistServe-style pair of TTFT and TPOT SLOs; 10 s is a TTFT that run-to-completion "
              "batching (UELLM) can meet at light load: a batch of 10 Alpaca answers runs ~7 s on the simulated "
              "A100, so a tighter TTFT would leave UELLM almost no capacity and decide the claims by itself"),
        Param("tpot_slo_ms", 150.0,
              "not given: about 5x a loaded decode step of 13B on an A100 (~30 ms), faster than reading speed"),
        Param("target_attainment", 0.8, "the paper's load capacity: SLO attainment >= 80%"),
        Param("num_requests", {"full": 200, "quick": 200, "real": 12}[size],
              "requests per run: fewer let a burst drain before the SLO notices (100 requests at 32 req/s still "
              "pass), so the capacity would be the request count's, not the scheduler's; --backend real is a "
              "small-scale check"),
        Param("rates", RATES[size], "req/s of the sweeps, around the capacities measured here"
              + ("; --quick sweeps the Mixed workload only (the throughput claim's)" if size == "quick" else "")),
        Param("capacity_workloads", list(NAMES) if size == "full" else ["alpaca", "mixed"],
              "workloads of the capacity searches" + ("" if size == "full" else
                                                      f": {size} searches only those of the claims")),
        Param("capacity_schedulers", [n for n in schedulers if size == "full" or n != "continuous"],
              "schedulers searched" + ("" if size == "full" else
                                       f": {size} leaves out the reference line (continuous)")),
        Param("capacity_search", {"full": [1.0, 64.0, 0.05], "quick": [1.0, 32.0, 0.25],
                                  "real": [0.5, 16.0, 0.25]}[size],
              "start rate, ceiling (req/s) and relative tolerance of each search (doubling, then bisection)"),
    ])


def scheduler_options(p: Params) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {
        "bucket": {"max_num_seqs": p["bucket_max_num_seqs"], **(BUCKET_DISAGGREGATED or {})},
        "uellm": {"predictor": p["uellm_predictor"], "max_batch_size": p["uellm_max_batch"]},
        "continuous": {},
    }
    if registered(DISTSERVE):
        options[DISTSERVE] = {}
    return options


def run(bench: Bench, p: Params, out: Path) -> Reproduction:
    """Every experiment into OUT/<name>-sweep and OUT/<name>-capacity; the claims judged from them."""
    result = Reproduction(BUCKETSERVE, p)
    names = list(p["schedulers"])
    start, ceiling, tolerance = p["capacity_search"]
    setting = CapacitySetting(float(p["target_attainment"]), start, ceiling, tolerance)
    cells = {}
    for workload in NAMES:
        make = maker(workload, p, int(p["num_requests"]))
        if workload in p["rates"]:
            sweep = bench.sweep(out / f"{workload}-sweep", names, [float(r) for r in p["rates"][workload]], make)
            cells[workload] = sweep_records(sweep)
            result.sweeps[workload] = load_summary(sweep.out_dir)["points"]
        if workload in p["capacity_workloads"]:
            result.capacities[workload] = bench.capacities(out / f"{workload}-capacity", p["capacity_schedulers"],
                                                           make, setting)
    result.folders = list(bench.done)
    for claim in BUCKETSERVE_CLAIMS:
        if claim.baseline not in names:
            measured = Measured(None, missing=f"needs {claim.baseline}: no scheduler of that name is registered")
        elif claim.metric == "capacity":
            caps = result.capacities[claim.workload]
            measured = capacity_factor(caps[claim.ours], caps[claim.baseline], f"{claim.workload} capacity")
        else:
            measured = best_rate_factor(cells[claim.workload], claim.ours, claim.baseline, claim.metric)
            measured.source = f"{claim.workload} sweep, {measured.source}"
        result.results.append(ClaimResult(claim, measured))
    return result
