"""BucketServe (arXiv 2507.17120): its experiments on LLaMA-2-13B on A100-40GBs, simulated.

Two groups, each on equal hardware:
- one GPU per system: bucket (its single-instance form), UELLM and continuous (the harness's reference line);
- two GPUs per system (prefill and decode instances over NVLink, bsbench/backends/cluster): bucket in its paper form
  (disaggregated) and DistServe; on the simulated backend only, and only when `distserve` is registered.
Per stand-in workload (alpaca, longbench, mixed; stand_ins.py): a sweep over the request rate (throughput and
SLO attainment against the rate, the paper's figures) and each scheduler's load capacity (the highest rate with
SLO attainment >= 80%; bsbench.experiments.capacity). Claims (claims.py): throughput vs UELLM up to 3.58x (Mixed), load
capacity vs UELLM 1.975x (Alpaca) and 3.47x (Mixed), from the first group; load at 80% attainment vs DistServe
1.93x (Mixed), from the second. A claim whose baseline cannot run reads "not comparable" with the reason.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bsbench.backends.words import is_simulated
from bsbench.experiments.reproduce.claims import BUCKETSERVE, BUCKETSERVE_CLAIMS
from bsbench.experiments.reproduce.common_params import REAL_NOTE, data_params
from bsbench.experiments.reproduce.engine_runs import Bench, CapacitySetting, sweep_records
from bsbench.experiments.reproduce.measure import best_rate_factor, capacity_factor, rate_factor
from bsbench.experiments.reproduce.outcome import ClaimResult, Reproduction
from bsbench.experiments.reproduce.params import Param, Params
from bsbench.experiments.reproduce.stand_ins import NAMES, maker
from bsbench.experiments.reproduce.verdict import Measured
from bsbench.experiments.run_length import RunLength
from bsbench.experiments.sweep import load_summary
from bsbench.metrics import STEADY
from bsbench.schedulers.registry import all_schedulers

DISTSERVE = "distserve"
TWO_GPUS = "2gpu"  # suffix of the folders and figure groups of the disaggregated group
RATES = {  # req/s; around the capacities of the schedulers on the simulated A100-40GB
    "full": {"alpaca": [1, 2, 4, 6, 8, 12, 16], "longbench": [0.25, 0.5, 1, 1.5, 2, 3, 4],
             "mixed": [1, 2, 3, 4, 6, 8, 16]},
    "quick": {"mixed": [2, 8]},
    "real": {"mixed": [1, 4]},
}


def registered(name: str) -> bool:

    return name in all_schedulers()


def disaggregated_group(backend: str) -> str:
    """Why the two-GPU group cannot run here ('' when it can)."""
    if not is_simulated(backend):
        return "disaggregated runs are simulated only (--backend sim)"
    if not registered(DISTSERVE):
        return "needs distserve: no scheduler of that name is registered"
    return ""


def params(quick: bool, backend: str) -> Params:
    size = "real" if not is_simulated(backend) else "quick" if quick else "full"
    model = [
        Param("model", "llama2-13b", "the paper's LLaMA-2-13B (preset shape, no weights: simulated)"),
        Param("gpu", "a100-40gb", "the paper's A100-40GB (roofline cost model unless --calibration)"),
    ] if is_simulated(backend) else [Param("model", "tiny", REAL_NOTE)]
    why_not = disaggregated_group(backend)
    return Params([
        *model,
        Param("schedulers", ["bucket", "uellm", "continuous"],
              "one GPU each: bucket in its single-instance form against UELLM (whose paper form, HELR aside, is "
              "one instance), so the claims vs UELLM compare equal hardware; continuous (vLLM-style) as the "
              "harness's reference line"),
        Param("disaggregated_schedulers", [] if why_not else ["bucket", DISTSERVE],
              "two GPUs each: bucket in its paper form (prefill and decode instances) against DistServe, for the "
              "DistServe claim" + (f"; not run: {why_not}" if why_not else "")),
        Param("instances", "prefill=1,decode=1", "the paper's 4 A100s split is not given: one prefill and one "
                                                 "decode instance, each an A100-40GB holding the whole model"),
        Param("link", "nvlink", "the paper moves KV over NVLink"),
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
        Param("window_s", {"full": 100.0, "quick": 100.0, "real": 2.0}[size],
              "seconds of arrivals scored per run (the measurement window, after a 10% warm-up and before a 10% "
              "cool-down): max(60 s, 10x the TTFT SLO), so a queue that outgrows the SLO does so inside the "
              "window; the request count follows from the rate (experiments/run_length.py); --backend real is "
              "a small-scale check"),
        Param("max_requests", 20000, "budget of requests per run; a rate whose window needs more is an error"),
        Param("throughput_rate", {"full": 16, "quick": 8, "real": 4}[size],
              "the rate (req/s) at which the 'up to' throughput claim is judged: the highest rate swept, the "
              "paper's 'high batch' setting; the best of the swept rates is shown beside it, labelled, and never "
              "decides"),
        Param("rates", RATES[size], "req/s of the sweeps, around the capacities measured here"
              + ("" if size == "full" else f"; {size} sweeps the Mixed workload only (the throughput claim's)")),
        Param("capacity_workloads", list(NAMES) if size == "full" else ["alpaca", "mixed"],
              "workloads of the capacity searches (the two-GPU group: Mixed only, the DistServe claim's)"
              + ("" if size == "full" else f"; {size} searches only those of the claims")),
        Param("capacity_schedulers", ["bucket", "uellm"] + (["continuous"] if size == "full" else []),
              "schedulers searched in the one-GPU group" + ("" if size == "full" else
                                                            f"; {size} leaves out the reference line")),
        Param("capacity_search", {"full": [1.0, 128.0, 0.05], "quick": [1.0, 64.0, 0.25],
                                  "real": [0.5, 16.0, 0.25]}[size],
              "start rate, ceiling (req/s) and relative tolerance of each search (doubling, then bisection)"),
    ])


def scheduler_options(p: Params) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {
        "bucket": {"max_num_seqs": p["bucket_max_num_seqs"]},
        "uellm": {"predictor": p["uellm_predictor"], "max_batch_size": p["uellm_max_batch"]},
        "continuous": {},
    }
    if registered(DISTSERVE):
        options[DISTSERVE] = {}
    return options


def run(bench: Bench, p: Params, out: Path) -> Reproduction:
    """Each group's experiments into OUT/<workload>-sweep, OUT/<workload>-capacity (one GPU) and
    OUT/mixed-2gpu-sweep, OUT/mixed-2gpu-capacity (two); then the claims judged from them."""
    result = Reproduction(BUCKETSERVE, p)
    start, ceiling, tolerance = p["capacity_search"]
    setting = CapacitySetting(float(p["target_attainment"]), start, ceiling, tolerance)
    length = RunLength(float(p["window_s"]), max_requests=int(p["max_requests"]))
    cells: dict[str, Any] = {}
    groups = [("", bench, list(p["schedulers"]), list(p["capacity_schedulers"]), list(NAMES))]
    if p["disaggregated_schedulers"]:
        two = Bench(dataclasses.replace(bench.config, link=p["link"]), bench.options, bench.seeds, bench.executor,
                    bench.say, bench.done, {name: p["instances"] for name in p["disaggregated_schedulers"]})
        groups.append((f"-{TWO_GPUS}", two, list(p["disaggregated_schedulers"]), list(p["disaggregated_schedulers"]),
                       ["mixed"]))
    for suffix, group, names, searched, workloads in groups:
        for workload in workloads:
            def sized(run: RunLength, workload: str = workload) -> Any:
                return maker(workload, p, run.requests_at)

            label = f"{workload}{suffix}"
            if workload in p["rates"]:
                sweep = group.timed(length).sweep(out / f"{label}-sweep", names,
                                                  [float(r) for r in p["rates"][workload]], sized(length))
                cells[label] = sweep_records(sweep)
                result.sweeps[label] = load_summary(sweep.out_dir)["points"]
            if workload in p["capacity_workloads"]:
                result.capacities[label] = group.capacities(out / f"{label}-capacity", searched, sized, setting,
                                                            length)
    result.folders = list(bench.done)
    for claim in BUCKETSERVE_CLAIMS:
        label = claim.workload + (f"-{TWO_GPUS}" if claim.baseline == DISTSERVE else "")
        if claim.baseline == DISTSERVE and not p["disaggregated_schedulers"]:
            measured = Measured(None, missing=disaggregated_group(bench.config.backend))
        elif claim.metric == "capacity":
            caps = result.capacities[label]
            measured = capacity_factor(caps[claim.ours], caps[claim.baseline], f"{label} capacity")
        else:
            measured = rate_factor(cells[label], claim.ours, claim.baseline, STEADY + claim.metric,
                                   float(p["throughput_rate"]))
            measured.source = f"{label} sweep, {measured.source}"
            best = best_rate_factor(cells[label], claim.ours, claim.baseline, STEADY + claim.metric)
            measured.best_of_rates = best.text() + (f" ({best.source})" if best.source else "")
        result.results.append(ClaimResult(claim, measured))
    return result
