"""Speed of the simulated backend: N ShareGPT requests x the four schedulers, LLaMA-2-13B on an A100-40GB preset.

Target (issue 10): 10,000 requests x 4 schedulers in <= 30 s of wall time together,
on 2 cores, building the workload included. Each scheduler runs on a fresh backend
(engine loop + scheduler + sim runner); the workload is built once (read and tokenise
the ShareGPT file, or read the tokenised-sample cache: `--no-cache` for a cold build).

    python benchmarks/sim_speed.py                         # 10,000 requests, rate inf, PASS/MISS vs 30 s
    python benchmarks/sim_speed.py -n 2000 --rate 20       # a smaller run with Poisson arrivals
    python benchmarks/sim_speed.py --profile               # + where the time goes (cProfile, by module)
    python benchmarks/sim_speed.py --no-cache              # tokenise the file even when a cached sample exists

Each run prints its wall and CPU seconds (CPU time compares runs on a loaded machine), virtual
duration, steps, completed/failed counts and a digest of the per-request timeline, so two
invocations can be compared for bit-identity.
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
from bsbench.workloads import sample_cache
from bsbench.workloads.build import load_workload

SCHEDULERS = ("static", "continuous", "uellm", "bucket")
TARGET_S = 30.0


def timeline_digest(result: EngineResult) -> str:
    rows = [(s.id, s.status.value, s.reason and s.reason.to_json(), s.token_times, s.output_ids) for s in result.states]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def run_one(
    name: str, requests: list, model: str, gpu: str, profile: cProfile.Profile | None
) -> tuple[float, float, EngineResult]:
    """(wall seconds, CPU seconds of this process, result) of one scheduler's simulation."""
    sim = open_sim(model, gpu)
    ctx = SchedulerContext(BlockManager(sim.num_blocks, sim.block_size), sim.shape.info, EventLog(), seed=0)
    cls = get_scheduler(name)
    engine = Engine(cls(cls.Options(), ctx), sim.runner, events=ctx.events, blocks=ctx.block_manager, clock=sim.clock)
    start, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    result = engine.run(requests)
    if profile is not None:
        profile.disable()
    return time.perf_counter() - start, time.process_time() - cpu, result


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
    p.add_argument("--no-cache", action="store_true", help="build the workload without the tokenised-sample cache")
    args = p.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.no_cache:
        os.environ[sample_cache.ENV] = "off"
    start = time.perf_counter()
    workload = load_workload("sharegpt-vllm", {"num_requests": args.num_requests, "rate": args.rate, "seed": 0})
    build_s = time.perf_counter() - start
    print(f"  {'workload':10s} {build_s:7.2f} s wall  {len(workload.requests)} ShareGPT requests (vllm filter, seed 0, "
          f"rate {args.rate}; {'cache off' if args.no_cache else 'cache on'})")
    profile = cProfile.Profile() if args.profile else None
    total = build_s
    names = args.schedulers.split(",")
    for name in names:
        wall, cpu, result = run_one(name, workload.requests, args.model, args.gpu, profile)
        total += wall
        statuses: dict[str, int] = defaultdict(int)
        for s in result.states:
            statuses[s.status.value] += 1
        per_step = 1e6 * wall / max(len(result.steps), 1)
        print(f"  {name:10s} {wall:7.2f} s wall {cpu:6.2f} s cpu  {result.duration_s:10.1f} s virtual  "
              f"{len(result.steps):7d} steps ({per_step:5.1f} us/step)  {dict(statuses)}  "
              f"oom events {result.events.count('oom')}  digest {timeline_digest(result)}  "
              f"load {os.getloadavg()[0]:.2f}")
    verdict = "PASS" if total <= TARGET_S else "MISS"
    print(f"total {total:.2f} s wall (workload {build_s:.2f} s + {total - build_s:.2f} s simulation) for "
          f"{len(workload.requests)} requests x {len(names)} schedulers ({args.model} on {args.gpu}): {verdict} "
          f"(target <= {TARGET_S:.0f} s, workload building included; load average now "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    if profile is not None:
        profile_by_area(profile, args.top)


if __name__ == "__main__":
    main()
