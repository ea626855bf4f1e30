"""How steady is this machine? The same step plans timed over and over on the real runner.

A cost model predicts one time per plan; validate-sim compares it with real steps. Where the
machine itself is unsteady, no model can be closer than that. This script times three fixed
calibration plans (one decode row, 16 decode rows, a 256-token prefill) in windows of 15 runs
each for --seconds, and prints, per plan:
- the spread of the window medians, (max - min) / median: how far a slow spell moves a whole run;
- the mean distance of one timing from the plan's overall median: the per-step error floor.

    python benchmarks/step_noise.py --seconds 60

A benchmark, not a test: the figures are this machine's, at this moment (load average printed).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _real_runner import open_runner_benchmark, print_load_after

from bsbench.sim.calib_grid import fixed_points, synthetic_plan

PLANS = ("decode-1x256", "decode-16x256", "prefill-256")
RUNS_PER_WINDOW = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args, session = open_runner_benchmark(parser)
    runner = session.runner
    grid = {p.name: p for p in fixed_points()}
    plans = {name: synthetic_plan(grid[name], runner.cache.block_size, runner.cache.num_blocks, session.info.vocab_size)
             for name in PLANS}
    timings: dict[str, list[float]] = {name: [] for name in PLANS}
    windows: dict[str, list[float]] = {name: [] for name in PLANS}
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for name, plan in plans.items():
            window = []
            for _ in range(RUNS_PER_WINDOW):
                t = time.perf_counter()
                runner.execute(plan)
                window.append(time.perf_counter() - t)
            timings[name].extend(window)
            windows[name].append(statistics.median(window))
    for name in PLANS:
        middle = statistics.median(timings[name])
        w = windows[name]
        floor = statistics.fmean(abs(t - middle) / middle for t in timings[name])
        print(f"{name}: median {middle * 1e3:.2f} ms over {len(timings[name])} timings; window medians "
              f"{min(w) * 1e3:.2f}-{max(w) * 1e3:.2f} ms (spread {(max(w) - min(w)) / middle:.0%} over {len(w)} "
              f"windows); one timing lies {floor:.1%} from the median on average", flush=True)
    print_load_after(start)


if __name__ == "__main__":
    main()
