"""Steady-state targets (issue 33), printed PASS/MISS with the measured figures.

1. Known answer: one request at a time (continuous, max_num_seqs=1), fixed 64-token prompts and 32-token
   outputs on the simulated LLaMA-2-13B / A100-40GB, so the service time S is deterministic; the capacity
   search at a loose SLO on even arrivals (a D/D/1 queue) must land within 5% of 1/S, and Poisson arrivals
   at 0.8/S must not be labelled overloaded while 1.12/S must.
2. reproduce bucketserve (sim): every capacity changes by at most 10% when the window doubles, read from
   a reproduction's summary (`--reproduce-dir OUT`, written by `bsbench reproduce bucketserve --out OUT`).

    python benchmarks/steady_state.py                                  # 60 s windows
    python benchmarks/steady_state.py --smoke                          # a few seconds (CI)
    python benchmarks/steady_state.py --reproduce-dir results/repro    # + the reproduce target
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bsbench.backends.config import RunConfig
from bsbench.backends.run import run_benchmark, session_for
from bsbench.experiments.capacity import capacity_search, search_and_confirm
from bsbench.metrics import steady
from bsbench.record.window import SECONDS, SHARE, Amount, WindowSpec
from bsbench.workloads.build import load_workload

CONFIG = RunConfig(scheduler="continuous", scheduler_options={"max_num_seqs": 1}, backend="sim", clock="virtual",
                   gpu="a100-40gb", model="llama2-13b")


def workload(rate: float, n: int, arrival: str, seed: int = 0):
    return load_workload("synthetic", {"num_requests": n, "rate": rate, "arrival": arrival, "input_len": 64,
                                       "output_len": 32, "length_dist": "fixed", "ttft_slo": 1e7, "seed": seed})


def run(rate: float, n: int, arrival: str, window: WindowSpec | None = None, seed: int = 0):
    import dataclasses

    config = dataclasses.replace(CONFIG, window=window)
    return run_benchmark(workload(rate, n, arrival, seed), config, progress=False, session=session_for(CONFIG),
                         save=False)


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def known_answer(window_s: float, poisson_n: int, seeds: tuple[int, ...]) -> bool:
    (row,) = run(1.0, 1, "constant").requests
    service = row.finish_s - row.first_scheduled_s
    print(f"service time S = {service * 1000:.2f} ms, 1/S = {1 / service:.4f} req/s")

    def probe_all_at(doubled: bool):
        span = window_s * (2 if doubled else 1)
        spec = WindowSpec(Amount(0.1, SHARE), Amount(span, SECONDS))
        return lambda rates: {k: ((s := run(r, int(r * span / 0.8) + 2, "constant", spec).summary) and
                                  steady(s, "slo_attainment"), {"overloaded": s["overloaded"]})
                              for k, r in rates.items()}

    found, confirmed = search_and_confirm({0: capacity_search(0.8, 0.5 / service, 0.02, 64.0)}, probe_all_at, 0.02,
                                          64.0)
    rate, again = found[0].rate, confirmed[0]
    error = abs(rate * service - 1) if rate else float("inf")
    ok = error <= 0.05
    print(f"{mark(ok)} known-answer capacity {rate:.4f} req/s = {rate * service:.3f} x 1/S (target within 5%; "
          f"{window_s:g} s windows)")
    if again is not None and again.rate is not None:
        change = abs(again.rate - rate) / rate
        ok &= change <= 0.10
        print(f"{mark(change <= 0.10)} same search at a {2 * window_s:g} s window: {again.rate:.4f} req/s "
              f"({100 * change:.1f}% change; target <= 10%)")
    for rho, expected in ((0.8, False), (1.12, True)):
        labels = [bool(run(rho / service, poisson_n, "poisson", seed=seed).summary["overloaded"]) for seed in seeds]
        good = all(label == expected for label in labels)
        ok &= good
        print(f"{mark(good)} Poisson at {rho:g}/S, {poisson_n} requests, seeds {list(seeds)}: overloaded {labels} "
              f"(expected {expected})")
    return ok


def reproduce_target(folder: Path) -> bool:
    data = json.loads((folder / "reproduce_summary.json").read_text())
    ok = True
    for workload_name, by in data["capacities"].items():
        for name, res in by.items():
            change = res.get("change_at_double_window")
            good = change is not None and change <= 0.10
            ok &= good
            text = "no confirmed capacity" if change is None else f"{100 * change:.1f}%"
            print(f"{mark(good)} reproduce bucketserve {workload_name} {name}: capacity {res.get('capacity')} "
                  f"req/s, change at twice the window {text} (target <= 10%)")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a few seconds")
    parser.add_argument("--reproduce-dir", type=Path, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    ok = known_answer(60.0, 1000, seeds=(0,) if args.smoke else (0, 1, 2))
    if args.reproduce_dir is not None:
        ok &= reproduce_target(args.reproduce_dir)
    print(f"{'all targets met' if ok else 'some targets missed'} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
