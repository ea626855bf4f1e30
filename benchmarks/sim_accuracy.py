"""How close the calibrated simulator comes to real runs on THIS device: a report, with no targets.

Calibrates the simulator on this device (tiny model unless --model), then replays held-out workloads
(not the calibration grid, nor the synthetic calibration runs) with the real runner and the calibrated
simulator, every scheduler, two distinct workloads (sharegpt-vllm and mixed-longtail; smoke would be
sharegpt-vllm's very requests at these sizes) at two rates, every real run 9 times, and prints the
per-step error, throughput and median E2E errors per scheduler, and whether the schedulers' ranking holds.

Issue 10's PASS/MISS targets here were retired by issue 29: on this 2-core shared machine the per-step
error cannot fall below the machine's own noise (8.9-11.5%), so they measured the machine, not the model.
The simulator's accuracy targets are now against published GPU measurements: benchmarks/sim_vs_published.py.

The real runs are repeated 9 times because this machine switches between a slow and a fast spell (about 25%
apart) every few seconds, and a 24-request run mostly falls in one: the median of 5 moved by 10% or more from
one benchmark run to the next. The calibration is the grid's alone, measured plan by plan between the real runs
(validate-sim's default): fitting the steps of the synthetic calibration runs too (`--calibrate-with-runs`)
fitted those runs well but predicted the held-out runs worse in all three datasets this was measured on (see
benchmarks/README.md). About 10 minutes on 2 CPU cores.

It is `bsbench validate-sim` with these defaults; any extra flag goes through, e.g.
    python benchmarks/sim_accuracy.py --device cpu --threads 1
It prints the load average before and after and the wall time: real-runner timings are only
meaningful on a quiet machine. A benchmark, not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import sys

from _real_runner import print_load_after, print_load_before

from bsbench.cli import main

DEFAULTS = ["validate-sim", "--workloads", "sharegpt-vllm,mixed-longtail", "--rates", "4,inf",
            "--real-repeats", "9",
            "--schedulers", "static,continuous,uellm,bucket", "-n", "24", "--max-output-len", "16",
            "--out", "results/sim-accuracy"]


if __name__ == "__main__":
    start = print_load_before()
    try:
        main(DEFAULTS + sys.argv[1:])
    finally:
        print_load_after(start)
