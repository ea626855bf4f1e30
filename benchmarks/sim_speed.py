"""Speed of the simulated backend: N ShareGPT requests x the four schedulers, LLaMA-2-13B on an A100-40GB preset.

Target (issue 10): 10,000 requests x 4 schedulers in <= 30 s of wall time together,
on 2 cores. Only the simulation is timed (engine loop + schedulers + sim runner, each
scheduler on a fresh backend); building the workload (reading and tokenising the
ShareGPT file) is timed and printed apart, since every backend pays it alike.

    python benchmarks/sim_speed.py                         # 10,000 requests, rate inf, PASS/MISS vs 30 s
    python benchmarks/sim_speed.py -n 2000 --rate 20       # a smaller run with Poisson arrivals
    python benchmarks/sim_speed.py --profile               # + where the time goes (cProfile, by module)

Each run prints its virtual duration, steps, completed/failed counts and a digest of
the per-request timeline, so two invocations can be compared for bit-identity.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import time
from collections import defaultdict

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.events import EventLog
from bsbench.engine.loop import Engine, EngineResult
from bsbench.schedulers.base import SchedulerContext
from bsbench.schedulers.registry import get_scheduler
from bsbench.sim.backend import open_sim
from bsbench.workloads.build import load_workload

SCHEDULERS = ("static", "continuous", "uellm", "bucket")
TARGET_S = 30.0


def timeline_digest(result: EngineResult) -> str:
    rows = [(s.id, s.status.value, s.reason, s.token_times, s.output_ids) for s in result.states]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def run_one(
    name: str, requests: list, model: str, gpu: str, profile: cProfile.Profile | None
) -> tuple[float, EngineResult]:
    sim = open_sim(model, gpu)
    ctx = SchedulerContext(BlockManager(sim.num_blocks, sim.block_size), sim.shape.info, EventLog(), seed=0)
    cls = get_scheduler(name)
    engine = Engine(cls(cls.Options(), ctx), sim.runner, events=ctx.events, blocks=ctx.block_manager, clock=sim.clock)
    start = time.perf_counter()
    if profile is not None:
        profile.enable()
    result = engine.run(requests)
    if profile is not None:
        profile.disable()
    return time.perf_counter() - start, result


def profile_by_area(profile: cProfile.Profile, top: int) -> None:
    """Own (tottime) seconds grouped by area of the code base, then the top functions."""
    stats = pstats.Stats(profile)
    areas: dict[str, float] = defaultdict(float)
    rows = []
    for (file, line, func), (_cc, _nc, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "/bsbench/" in file:
            area = "bsbench/" + file.split("/bsbench/", 1)[1].split("/")[0]
            area = area if not area.endswith(".py") else "bsbench (top level)"
            if "/bsbench/engine/" in file or "/bsbench/sim/" in file:
                area = "bsbench/" + file.split("/bsbench/", 1)[1]
        else:
            area = "python builtins / stdlib"
        areas[area] += tottime
        rows.append((tottime, cumtime, f"{os.path.basename(file)}:{line}({func})"))
    total = sum(areas.values())
    print(f"\nprofile: {total:.2f} s of own time (profiling overhead included), by area:")
    for area, secs in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"  {secs:7.2f} s  {100 * secs / total:5.1f}%  {area}")
    print(f"\ntop {top} functions by own time:")
    for tottime, cumtime, name in sorted(rows, reverse=True)[:top]:
        print(f"  {tottime:7.2f} s own  {cumtime:7.2f} s cumulative  {name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--num-requests", type=int, default=10_000)
    p.add_argument("--rate", default="inf", help="req/s, or inf (every request at t = 0)")
    p.add_argument("--model", default="llama2-13b")
    p.add_argument("--gpu", default="a100-40gb")
    p.add_argument("--schedulers", default=",".join(SCHEDULERS))
    p.add_argument("--profile", action="store_true", help="profile the simulation and print where the time goes")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    start = time.perf_counter()
    workload = load_workload("sharegpt-vllm", {"num_requests": args.num_requests, "rate": args.rate, "seed": 0})
    print(f"workload: {len(workload.requests)} ShareGPT requests (vllm filter, seed 0, rate {args.rate}) "
          f"built in {time.perf_counter() - start:.1f} s (not counted)")
    profile = cProfile.Profile() if args.profile else None
    total = 0.0
    for name in args.schedulers.split(","):
        wall, result = run_one(name, workload.requests, args.model, args.gpu, profile)
        total += wall
        statuses = defaultdict(int)
        for s in result.states:
            statuses[s.status.value] += 1
        print(f"  {name:10s} {wall:7.2f} s wall  {result.duration_s:10.1f} s virtual  {len(result.steps):7d} steps  "
              f"{dict(statuses)}  oom events {result.events.count('oom')}  digest {timeline_digest(result)}")
    verdict = "PASS" if total <= TARGET_S else "MISS"
    print(f"total {total:.2f} s wall for {len(workload.requests)} requests x {len(args.schedulers.split(','))} "
          f"schedulers ({args.model} on {args.gpu}): {verdict} (target <= {TARGET_S:.0f} s; "
          f"load average now {os.getloadavg()[0]:.2f})")
    if profile is not None:
        profile_by_area(profile, args.top)


if __name__ == "__main__":
    main()
