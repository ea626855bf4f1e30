"""Does the KV block layout change a step's time? The same decode plans gathered from block tables scattered at
random over the cache and from consecutive tables (as a run's block manager hands them out).

The calibration grid lays its tables out like a run's (`sim/calib_grid.py`); this script shows why:

    python benchmarks/block_layout.py

For each decode batch (rows x context) it times 20 plans of each layout (another start or scatter per plan),
alternating the layouts for --rounds rounds, and prints the medians and their ratio. A benchmark, not a test:
the figures are this machine's, at this moment (load average printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import time

from _real_runner import open_runner_benchmark, print_load_after

from bsbench.sim.calib_grid import GridPoint, Row, synthetic_plan

BATCHES = ((2, 200), (8, 200), (24, 272), (48, 256))
PLANS_PER_LAYOUT = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args, session = open_runner_benchmark(parser)
    runner = session.runner
    blocks, block_size, vocab = runner.cache.num_blocks, runner.cache.block_size, session.info.vocab_size
    start = time.perf_counter()
    for rows, context in BATCHES:
        point = GridPoint(f"decode-{rows}x{context}", "packed", tuple(Row(1, context) for _ in range(rows)))
        consecutive = [synthetic_plan(point, block_size, blocks, vocab, seed) for seed in range(PLANS_PER_LAYOUT)]
        scattered = []
        for seed, plan in enumerate(consecutive):
            sizes = [len(chunk.block_table) for chunk in plan.chunks]
            ids = random.Random(seed).sample(range(blocks), sum(sizes))
            tables = [ids[sum(sizes[:i]):sum(sizes[:i + 1])] for i in range(len(sizes))]
            scattered.append(dataclasses.replace(plan, chunks=[dataclasses.replace(chunk, block_table=table)
                                                               for chunk, table in zip(plan.chunks, tables)]))
        timings: dict[str, list[float]] = {"scattered": [], "consecutive": []}
        for _ in range(args.rounds):
            for layout, plans in (("scattered", scattered), ("consecutive", consecutive)):
                for plan in plans:
                    t = time.perf_counter()
                    runner.execute(plan)
                    timings[layout].append(time.perf_counter() - t)
        a, b = (statistics.median(timings[k]) for k in ("scattered", "consecutive"))
        print(f"decode {rows} rows x context {context}: scattered {a * 1e3:.2f} ms, consecutive {b * 1e3:.2f} ms "
              f"(consecutive / scattered {b / a:.3f}, {len(timings['scattered'])} timings each)", flush=True)
    print_load_after(start)


if __name__ == "__main__":
    main()
