"""BucketServe boundary and N_max modes on one workload: padding ratio, OOM events, throughput.

Runs the same requests (same ids, tokens, arrivals) through naive `static`
(same maximum batch size, for reference) and `bucket` with every combination
of `--bucket-boundaries` (bisect, quantile, a fixed list) and
`--bucket-nmax-mode` (paper, actual), on one loaded model, and prints one
table. Padding ratio and OOM events are deterministic for a given workload and
budget; throughput depends on the machine (on a shared CPU it is noisy).
"padding" is the run's padding ratio (pad tokens / all computed tokens,
decode included); "prefill padding" the same over the padded prefill steps only.

    python benchmarks/bucket_boundaries.py                       # tiny model, CPU or GPU
    python benchmarks/bucket_boundaries.py -n 200 --kv-memory 32MiB --out results/bucket-bench
    python benchmarks/bucket_boundaries.py --sim -n 200 --max-output-len 1024   # seconds, no model

`--sim` replays the same workload through the same policies on the simulated
backend (`bsbench.sim`: virtual clock, a runner that computes no tensors, the
uncalibrated roofline cost model of `--model` on GPU preset `--gpu`, KV budget
`--kv-memory`): padding, OOM events, batch sizes and KV use are exactly what the
real runner would see (they depend only on lengths and memory), while time is the
roofline's prediction for that GPU, so its tok/s is labelled as simulated.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bsbench.backends.config import RunConfig
from bsbench.backends.record_build import request_row
from bsbench.backends.run import open_session, run_benchmark
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.events import EventLog
from bsbench.engine.loop import Engine
from bsbench.metrics import summarize
from bsbench.schedulers.base import SchedulerContext
from bsbench.schedulers.registry import get_scheduler
from bsbench.sim.backend import open_sim
from bsbench.units import parse_bytes
from bsbench.workloads.build import load_workload


def simulate(workload, scheduler: str, options: dict, model: str, gpu: str, kv_bytes: int,
             block_size: int = 16) -> tuple:
    """One run on the simulated backend; returns (summary, scheduler summary, step rows, record path or '-')."""
    sim = open_sim(model, gpu, kv_memory=kv_bytes, block_size=block_size)
    ctx = SchedulerContext(BlockManager(sim.num_blocks, block_size), sim.shape.info, EventLog())
    cls = get_scheduler(scheduler)
    policy = cls(cls.Options(**options), ctx)
    result = Engine(policy, sim.runner, events=ctx.events, blocks=ctx.block_manager, clock=sim.clock).run(
        workload.requests)
    steps = result.steps
    summary = summarize([request_row(st, False) for st in result.states], steps, result.events.events,
                        result.duration_s,
                        num_kv_blocks=ctx.block_manager.num_blocks)
    sched = {"name": scheduler, "decision_s": result.scheduler_decision_s, "decision_share": None,
             **policy.summary(), "controller_share": None}  # shares of virtual time would mean nothing
    return summary, sched, steps, "-"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-w", "--workload", default="mixed-longtail")
    p.add_argument("-n", "--num-requests", type=int, default=64)
    p.add_argument("--rate", default="inf", help="req/s, or inf: every request at t = 0 (the queue builds up)")
    p.add_argument("--max-prompt-len", type=int, default=1024)
    p.add_argument("--max-output-len", type=int, default=32)
    p.add_argument("--kv-memory", default="32MiB")
    p.add_argument("--batch", type=int, default=8, help="static max_batch_size = bucket max_num_seqs")
    p.add_argument("--fixed", default="64,256,512", help="the fixed boundary list to compare")
    p.add_argument("--model", default="tiny")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/bucket-boundaries"))
    p.add_argument("--sim", action="store_true", help="the simulated backend (see the docstring)")
    p.add_argument("--gpu", default="a100-40gb", help="GPU preset of --sim")
    p.add_argument("--json", type=Path, default=None, help="also write the table rows as JSON")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    console = Console(width=200)
    workload = load_workload(args.workload, {
        "num_requests": args.num_requests, "rate": args.rate, "seed": args.seed,
        "max_prompt_len": args.max_prompt_len, "max_output_len": args.max_output_len,
    })
    lengths = sorted(r.prompt_len for r in workload.requests)
    console.print(f"{workload.name}: {len(lengths)} requests, prompt p50 {lengths[len(lengths) // 2]}, "
                  f"max {lengths[-1]}, rate {args.rate}; kv {args.kv_memory}; batch {args.batch}")
    config = RunConfig(model=args.model, device=args.device, kv_memory=parse_bytes(args.kv_memory),
                       out_dir=args.out, seed=args.seed)
    session = None if args.sim else open_session(config)
    runs = [("static", {"max_batch_size": args.batch})]
    for boundaries in ("bisect", "quantile", args.fixed):
        for nmax in ("paper", "actual"):
            runs.append(("bucket", {"max_num_seqs": args.batch, "bucket_boundaries": boundaries,
                                    "bucket_nmax_mode": nmax}))
    where = f"simulated: {args.gpu} roofline, virtual clock" if args.sim else session.device
    table = Table(title=f"bucket boundaries x N_max on {workload.name} ({args.kv_memory} KV, {where})")
    columns = ("scheduler", "boundaries", "N_max", "done/failed", "OOM ev", "padding", "prefill padding",
               "out tok/s", "total tok/s", "mean prefill batch", "peak buckets", "splits/recuts/merges",
               "decision %", "controller %")
    for col in columns:
        table.add_column(col, justify="left" if col in ("scheduler", "boundaries") else "right")
    rows = []
    for name, options in runs:
        config.scheduler, config.scheduler_options = name, options
        start = time.perf_counter()
        if args.sim:
            s, sched, steps, path = simulate(workload, name, options, args.model, args.gpu,
                                             parse_bytes(args.kv_memory))
        else:
            record = run_benchmark(workload, config, progress=False, session=session)
            s, sched, steps, path = record.summary, record.scheduler, record.steps, str(record.path)
        padded = [st for st in steps if st.layout == "padded"]
        padded_tokens = sum(st.num_tokens for st in padded)
        row = {
            "scheduler": name,
            "boundaries": options.get("bucket_boundaries", "-"),
            "nmax": options.get("bucket_nmax_mode", "-"),
            "completed": s["completed"], "failed": s["failed"], "oom_events": s["oom_events"],
            "padding_ratio": s["padding_ratio"],
            "prefill_padding": sum(st.pad_tokens for st in padded) / padded_tokens if padded_tokens else None,
            "output_throughput": s["output_throughput"],
            "total_token_throughput": s["total_token_throughput"],
            "mean_prefill_batch": sched.get("mean_prefill_batch"), "peak_buckets": sched.get("peak_buckets"),
            "changes": f"{sched['splits']}/{sched['quantile_recuts']}/{sched['merges']}" if name == "bucket" else "-",
            "decision_share": sched.get("decision_share"),
            "controller_share": sched.get("controller_share"), "wall_s": time.perf_counter() - start,
            "record": path,
        }
        rows.append(row)
        pct = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
        num = lambda v: "-" if v is None else f"{v:,.1f}"  # noqa: E731
        table.add_row(name, row["boundaries"], row["nmax"], f"{row['completed']}/{row['failed']}",
                      str(row["oom_events"]), pct(row["padding_ratio"]), pct(row["prefill_padding"]),
                      num(row["output_throughput"]),
                      num(row["total_token_throughput"]), num(row["mean_prefill_batch"]),
                      str(row["peak_buckets"] if row["peak_buckets"] is not None else "-"),
                      row["changes"],
                      pct(row["decision_share"]), pct(row["controller_share"]))
        console.print(f"  {name} {options}: {row['wall_s']:.1f} s")
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
