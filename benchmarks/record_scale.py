"""Records and reports at scale (issue 30): time, record size and peak memory of big sim runs, sweeps, compares.

Targets, each printed with PASS/MISS and the measured figures:

- a 10k-request sim run end to end (workload, engine, record, summary: `bsbench run --backend sim`)
  takes at most 1.5x its engine time (the engine loop alone on the same workload, as sim_speed.py);
- the record holds at most 1.5 kB per request, step rows included;
- peak RSS of that run at most 300 MB at 10k requests and (`--large`) at most 2 GB at 100k;
- a sim sweep's report.html takes at most 10% of the sweep's wall time;
- `bsbench compare` over a folder of 200 records peaks at most 500 MB RSS.

Every part runs in its own child process; its peak RSS is that child's ru_maxrss (os.wait4).

    python benchmarks/record_scale.py            # 10k-request run, a 4 x 6 x 200 sweep, compare over 200 records
    python benchmarks/record_scale.py --large    # + the 100k-request run (minutes, GBs before issue 30)
    python benchmarks/record_scale.py --smoke    # every part at a toy size, in seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL, GPU, RATE = "llama2-13b", "a100-40gb", "16"


@dataclass(slots=True)
class Child:
    """One child process's wall seconds, peak RSS (bytes) and stdout."""

    wall_s: float
    peak_rss: int
    stdout: str


def run_child(args: list[str]) -> Child:
    """Run `python ARGS` from the repository root; its wall time and peak RSS; a failure ends the benchmark."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        if proc.returncode != 0:
            errors = err.read().decode(errors="replace")
            sys.exit(f"child failed ({proc.returncode}): {' '.join(args)}\n{text}\n{errors}")
    return Child(wall, usage.ru_maxrss * 1024, text)  # ru_maxrss is in KiB on Linux


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


ENGINE_ONLY = """
import sys, time
sys.path.insert(0, 'benchmarks')
from sim_speed import run_one
from bsbench.workloads.build import load_workload
w = load_workload('sharegpt-vllm', {'num_requests': int(sys.argv[1]), 'rate': sys.argv[2], 'seed': 0,
                                    'oversample': True})
wall, cpu, result = run_one('continuous', w.requests, sys.argv[3], sys.argv[4], None)
print(wall, len(result.steps))
"""


def run_size(n: int, out: Path) -> dict[str, float]:
    """The end-to-end run of `n` requests and its engine-only twin: seconds, record bytes, peak RSS."""
    engine = run_child(["-c", ENGINE_ONLY, str(n), RATE, MODEL, GPU])
    engine_s, steps = float(engine.stdout.split()[0]), int(engine.stdout.split()[1])
    folder = out / f"run{n}"
    e2e = run_child(["-m", "bsbench", "run", "--backend", "sim", "--model", MODEL, "--gpu", GPU, "--rate", RATE,
                     "-n", str(n), "--oversample", "--scheduler", "continuous", "--quiet", "--out", str(folder)])
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"engine_s": engine_s, "steps": steps, "e2e_s": e2e.wall_s, "bytes": size, "rss": e2e.peak_rss}


def report_run(n: int, fig: dict[str, float], rss_target: float) -> list[bool]:
    ratio = fig["e2e_s"] / max(fig["engine_s"], 1e-9)
    per_request = fig["bytes"] / n
    print(f"run of {n:,} requests (continuous, {MODEL} on {GPU}, rate {RATE}, sim): end to end {fig['e2e_s']:.1f} s, "
          f"engine {fig['engine_s']:.1f} s ({fig['steps']:,.0f} steps); record {mb(fig['bytes'])}; "
          f"peak RSS {mb(fig['rss'])}")
    print(f"  {verdict(ratio <= 1.5)} end to end / engine time = {ratio:.2f}x (target <= 1.5x)")
    print(f"  {verdict(per_request <= 1500)} record size = {per_request:,.0f} bytes per request "
          f"(target <= 1,500, step rows included)")
    print(f"  {verdict(fig['rss'] <= rss_target)} peak RSS = {mb(fig['rss'])} (target <= {mb(rss_target)})")
    return [ratio <= 1.5, per_request <= 1500, fig["rss"] <= rss_target]


SWEEP_TIMED = """
import json, sys, time
import bsbench.commands.sweep as sweep_command
from bsbench.cli import main
spent = []
page = sweep_command.write_sweep_page
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return page(*args, **kwargs)
    finally:
        spent.append(time.perf_counter() - start)
sweep_command.write_sweep_page = timed
start = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps({"wall_s": time.perf_counter() - start, "html_s": sum(spent)}))
"""


def sweep_part(schedulers: int, rates: int, n: int, out: Path) -> tuple[bool, Path]:
    """A sim sweep (with report.html) in one child; the page's share of its wall time."""
    names = "static,continuous,uellm,bucket".split(",")[:schedulers]
    rate_list = ",".join(str(r) for r in (2, 4, 8, 16, 32, 64)[:rates])
    folder = out / "sweep"
    child = run_child(["-c", SWEEP_TIMED, "sweep", "--backend", "sim", "--model", MODEL, "--gpu", GPU, "--schedulers",
                       ",".join(names), "--rates", rate_list, "-n", str(n), "--quiet", "--out", str(folder)])
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    share = figures["html_s"] / figures["wall_s"]
    page = folder / "report.html"
    print(f"sweep of {len(names)} schedulers x {rates} rates x {n} requests (sim): {figures['wall_s']:.1f} s, "
          f"report.html {figures['html_s']:.1f} s ({mb(page.stat().st_size)} page); peak RSS {mb(child.peak_rss)}")
    print(f"  {verdict(share <= 0.10)} report.html share of the sweep = {100 * share:.1f}% (target <= 10%)")
    return share <= 0.10, folder / "runs"


def compare_part(runs: Path, count: int, out: Path) -> bool:
    """`bsbench compare` over a folder of `count` records (the sweep's, linked round-robin: each header and its
    rows folder)."""
    records = sorted(p for p in runs.glob("*.json") if not p.name.startswith("."))
    folder = out / "compare"
    folder.mkdir()
    for i in range(count):
        source = records[i % len(records)]
        os.link(source, folder / f"{i:04d}-{source.name}")
        rows = source.with_suffix(".rows")
        if rows.is_dir():  # a schema-7 record: its header names the folder `<stem>.rows`
            linked = folder / f"{i:04d}-{rows.name}"
            linked.mkdir()
            for part in rows.iterdir():
                os.link(part, linked / part.name)
            header = json.loads((folder / f"{i:04d}-{source.name}").read_text())
            header["rows"]["folder"] = linked.name
            (folder / f"{i:04d}-{source.name}").unlink()
            (folder / f"{i:04d}-{source.name}").write_text(json.dumps(header))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    child = run_child(["-m", "bsbench", "compare", str(folder), "--format", "csv"])
    print(f"compare over a folder of {count} records ({mb(size)} on disk): {child.wall_s:.1f} s, "
          f"peak RSS {mb(child.peak_rss)}")
    print(f"  {verdict(child.peak_rss <= 500e6)} compare peak RSS = {mb(child.peak_rss)} (target <= 500 MB)")
    return child.peak_rss <= 500e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="every part at a toy size (seconds); figures mean nothing")
    p.add_argument("--large", action="store_true", help="also the 100k-request run (target <= 2 GB peak RSS)")
    p.add_argument("--keep", type=Path, default=None, help="keep the records and pages in this folder")
    args = p.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    out = Path(tempfile.mkdtemp(prefix="bsbench-scale-")) if args.keep is None else args.keep
    out.mkdir(parents=True, exist_ok=True)
    try:
        n_run, sweep, compare_count = (200, (2, 2, 20), 20) if args.smoke else (10_000, (4, 6, 200), 200)
        oks = report_run(n_run, run_size(n_run, out), 300e6)
        if args.large and not args.smoke:
            oks += report_run(100_000, run_size(100_000, out), 2e9)
        ok, runs = sweep_part(*sweep, out)
        oks += [ok, compare_part(runs, compare_count, out)]
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    print(f"{sum(oks)} of {len(oks)} targets met; load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
