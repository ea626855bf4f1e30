"""UELLM (arXiv 2409.14961): 100 requests all present at t = 0, SLOs in blocks of 20, as its public code runs.

One run per scheduler and seed (rate inf: every request arrives at t = 0) on the Alpaca stand-in, each request
with an E2E SLO drawn from its block's range (papers.md: 220-250, 180-220, 150-180, 100-120, 90-100 s). The
paper's baselines, S3 and Morphling, are not in bsbench: uellm is compared with the baselines bsbench has,
static (padded static batches of the same size, FCFS: UELLM's execution without its SLO- and length-aware
batching) and continuous (vLLM-style continuous batching), and each claim reads "not comparable (baseline
differs)" with the rule's outcome against each stand-in beside it. HELR (UELLM's multi-GPU deployer) does
not apply: one device.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bsbench.backends.words import is_simulated
from bsbench.experiments.reproduce.claims import UELLM, UELLM_CLAIMS
from bsbench.experiments.reproduce.common_params import REAL_NOTE, data_params
from bsbench.experiments.reproduce.engine_runs import Bench, sweep_records
from bsbench.experiments.reproduce.measure import factor_from_runs
from bsbench.experiments.reproduce.outcome import ClaimResult, Reproduction
from bsbench.experiments.reproduce.params import Param, Params
from bsbench.experiments.reproduce.stand_ins import maker, with_slo_blocks
from bsbench.experiments.sweep import load_summary
from bsbench.report.cell_stats import figure_interval

SLO_BLOCKS_S = [(220.0, 250.0), (180.0, 220.0), (150.0, 180.0), (100.0, 120.0), (90.0, 100.0)]
FIGURES = {"mean_e2el_ms": "mean E2E latency (ms)", "output_throughput": "output tokens/s",
           "slo_attainment": "SLO attainment"}


def params(quick: bool, backend: str) -> Params:
    model = [
        Param("model", "llama2-7b", "the paper's ChatGLM2-6B is no preset here; LLaMA-2-7B is the closest in size"),
        Param("gpu", "a100-40gb", "papers.md names no GPU model for UELLM; one A100-40GB (HELR, its multi-GPU "
                                  "deployer, does not apply to one device)"),
    ] if is_simulated(backend) else [Param("model", "tiny", REAL_NOTE)]
    return Params([
        *model,
        Param("schedulers", ["uellm", "static", "continuous"],
              "S3 and Morphling are not in bsbench; static (padded batches of the same size, FCFS) and continuous "
              "stand in"),
        Param("uellm_predictor", "noisy", "the paper's profiler is > 80% accurate, not exact: true length x "
                                          "log-normal error (sigma 0.5), so UELLM is not credited with an oracle"),
        Param("uellm_max_batch", 10, "UELLM's public code: batches of at most 10"),
        Param("static_max_batch", 10, "the same batch size as UELLM, so only the batching order differs"),
        *(q for q in data_params(backend) if q.name.startswith("alpaca")),
        Param("num_requests", 100 if is_simulated(backend) else 12,
              "the paper's 100 requests" + ("" if is_simulated(backend) else " (12 at the real runner's small scale)")),
        Param("arrivals", "all at t = 0", "the paper and its code: every request present at the start"),
        Param("slo_blocks_s", [f"{lo:g}..{hi:g}" for lo, hi in SLO_BLOCKS_S],
              "E2E SLOs in seconds, drawn uniformly per request in blocks of 20 requests, as UELLM's public code "
              "(the paper states [150 s, 300 s])"),
        Param("slo_block_size", 20, "UELLM's public code"),
    ])


def scheduler_options(p: Params) -> dict[str, dict[str, Any]]:
    return {"uellm": {"predictor": p["uellm_predictor"], "max_batch_size": p["uellm_max_batch"]},
            "static": {"max_batch_size": p["static_max_batch"]}, "continuous": {}}


def run(bench: Bench, p: Params, out: Path) -> Reproduction:
    """The t = 0 experiment into OUT/alpaca-t0 (a sweep of one rate, inf), then the claims and the bars."""
    result = Reproduction(UELLM, p)
    make_plain = maker("alpaca", p, int(p["num_requests"]))

    def make(rate: float, seed: int):
        return with_slo_blocks(make_plain(rate, seed), SLO_BLOCKS_S, int(p["slo_block_size"]))

    sweep = bench.sweep(out / "alpaca-t0", list(p["schedulers"]), [math.inf], make)
    cells = sweep_records(sweep)
    result.sweeps["alpaca-t0"] = load_summary(sweep.out_dir)["points"]
    result.folders = list(bench.done)
    for claim in UELLM_CLAIMS:
        measured = factor_from_runs(cells[(claim.ours, math.inf)], cells[(claim.baseline, math.inf)], claim.metric,
                                    f"{p['num_requests']} requests at t = 0")
        result.results.append(ClaimResult(claim, measured))
    for metric, label in FIGURES.items():
        bars = {}
        for (name, _), records in cells.items():
            interval = figure_interval(records, metric)
            point = sum(float(r.summary[metric]) for r in records) / len(records)
            bars[name] = (point, interval.low if interval else None, interval.high if interval else None)
        result.bars[label] = {"alpaca, t = 0": bars}
    return result
