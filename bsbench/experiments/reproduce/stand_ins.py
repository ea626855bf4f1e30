"""The papers' data sets as offline stand-ins, built by the harness's one workload builder (load_workload).

- alpaca: no Alpaca copy is available offline, so ShareGPT first turns (the packaged file) whose prompt
  length lies in a band chosen to give Alpaca's mean of about 84 tokens; answers capped (Params).
- longbench: LongBench v1 format middle-truncated to 1024 tokens (workloads/longbench.py); by default the
  packaged LongBench-format sample (built from long ShareGPT conversations, NOT LongBench itself),
  resampled with replacement since it holds 32 records.
- mixed: a long-tailed mix of the two (BucketServe's "Mixed"): mostly alpaca, a share of longbench.
Arrivals are Poisson at the swept rate; SLOs as the Params say. UELLM's SLOs come in blocks (`with_slo_blocks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from bsbench.experiments.reproduce.params import Params
from bsbench.workloads.build import load_workload
from bsbench.workloads.request import SLO
from bsbench.workloads.slo import Bound, draw_block_slos
from bsbench.workloads.workload import Workload

NAMES = ("alpaca", "longbench", "mixed")
_SLO_BLOCK_STREAM = 101  # numpy stream id of the block SLO draws, apart from build.py's streams (0..4)


def alpaca_options(params: Params) -> dict[str, Any]:
    return {"filter": "none", "filter_min_prompt": params["alpaca_min_prompt"],
            "filter_max_prompt": params["alpaca_max_prompt"], "filter_min_output": 4,
            "max_output_len": params["alpaca_max_output"]}


def longbench_options(params: Params) -> dict[str, Any]:
    return {"dataset_path": params["longbench_data"], "filter": "none", "max_prompt_len": 1024,
            "max_output_len": params["longbench_max_output"], "oversample": True}


def recipe(name: str, params: Params) -> tuple[str, dict[str, Any]]:
    """(load_workload target, options) of stand-in `name`, without rate, seed or request count."""
    slos = {"ttft_slo": params.get("ttft_slo_ms"), "tpot_slo": params.get("tpot_slo_ms")}
    common = {"name": name, "arrival": params.get("arrival", "poisson"),
              **{k: v for k, v in slos.items() if v is not None}}
    if name == "alpaca":
        return "sharegpt", {**common, **alpaca_options(params)}
    if name == "longbench":
        return "longbench", {**common, **longbench_options(params)}
    if name == "mixed":
        share = float(params["mixed_long_share"])
        target = f"mixed:sharegpt={1 - share:g},longbench={share:g}"
        return target, {**common, "filter": "none", "dataset_path": params["longbench_data"],
                        "components": {"sharegpt": alpaca_options(params), "longbench": longbench_options(params)}}
    raise ValueError(f"unknown stand-in {name!r}")


def maker(name: str, params: Params, num_requests: int | Callable[[float], int]) -> Callable[[float, int], Workload]:
    """make_workload(rate, seed) of stand-in `name`: `num_requests` requests (or as many as `num_requests(rate)`
    says: a run sized by time, experiments/run_length.py), Poisson arrivals at `rate`."""

    target, options = recipe(name, params)

    def make(rate: float, seed: int) -> Workload:
        count = num_requests(rate) if callable(num_requests) else num_requests
        return load_workload(target, {**options, "rate": rate, "seed": seed, "num_requests": count})

    return make


def with_slo_blocks(workload: Workload, blocks_s: list[tuple[float, float]], block_size: int) -> Workload:
    """The same requests, each with an E2E SLO drawn from its block's range (seconds), seeded by the workload's
    seed; the spec records the blocks."""
    seed = int(workload.spec.get("seed") or 0)
    bounds = [Bound(1000.0 * low, 1000.0 * high) for low, high in blocks_s]
    values = draw_block_slos(len(workload.requests), np.random.default_rng([seed, _SLO_BLOCK_STREAM]), bounds,
                             block_size)
    requests = [dataclasses.replace(r, slo=SLO(None, None, ms)) for r, ms in zip(workload.requests, values)]
    spec = {**workload.spec, "slo": {"e2e_slo": f"blocks of {block_size}: "
                                                + ", ".join(f"{lo:g}..{hi:g} s" for lo, hi in blocks_s)}}
    return Workload(workload.name, requests, workload.tokenizer, spec, workload.load_report)
