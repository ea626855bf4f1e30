"""Issue 10's accuracy targets for the simulated backend, printed PASS/MISS with the measured figures.

Calibrates the simulator on this device (tiny model unless --model), then replays held-out workloads
(not the calibration grid) with the real runner and the calibrated simulator, every scheduler, two
workloads at two rates, and checks:
- per-step MAPE <= 10% (the real runs' steps, priced by the cost model);
- throughput and median E2E within 10% of the real run for each scheduler;
- the four schedulers ranked the same (throughput and median E2E) on >= 2 workloads at >= 2 rates.

It is `bsbench validate-sim --targets` with these defaults; any extra flag goes through, e.g.
    python benchmarks/sim_accuracy.py --device cpu --threads 1
A benchmark, not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import sys

from bsbench.cli import main

DEFAULTS = ["validate-sim", "--targets", "--workloads", "smoke,sharegpt-vllm", "--rates", "4,inf",
            "--schedulers", "static,continuous,uellm,bucket", "-n", "24", "--max-output-len", "16",
            "--out", "results/sim-accuracy"]

if __name__ == "__main__":
    main(DEFAULTS + sys.argv[1:])
