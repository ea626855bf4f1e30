"""False-alarm rate of the regression gate on measured (wall-clock) runs.

One small CPU sweep (real runner, tiny model, wall clock, 3 repeats per point) becomes the baseline; then N
identical sweeps are gated against it. Nothing changed between the sweeps, so every gate should pass: it prints
how many did, and PASS if all N did, MISS otherwise.

The counted gate is the one for a shared runner, `--no-absolute`: counts and padding exact, scheduler ratios
two-sample over seeds (paired, one ratio per repeat; the baseline stores its own intervals). Absolute times are
gated as well on each sweep and their tally printed beside it, but not counted: on a machine shared with other
work they follow its load (a load that rises between the baseline and a re-sweep slows every scheduler alike,
which the ratios cancel and absolute times cannot).

    python benchmarks/gate_false_alarm.py                 # 10 re-sweeps, about 6 minutes on 2 cores
    python benchmarks/gate_false_alarm.py --sweeps 3 --keep /tmp/gfa
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _bsbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bsbench", *args], capture_output=True, text=True)


def _sweep(out: Path, options: argparse.Namespace) -> None:
    done = _bsbench("sweep", "--schedulers", options.schedulers, "--rates", options.rates, "-w", "smoke",
                    "-n", str(options.num_requests), "--max-output-len", str(options.max_output),
                    "--repeats", str(options.repeats), "--device", "cpu", "--threads", "1", "--out", str(out),
                    "--quiet")
    if done.returncode != 0:
        sys.exit(f"sweep failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _gate(runs: Path, baseline: Path, tolerance: str, *extra: str) -> tuple[bool, str, str]:
    """(passed, its verdict line, its whole output)."""
    gate = _bsbench("gate", str(runs), "--baseline", str(baseline), "--tolerance", tolerance, *extra)
    if gate.returncode not in (0, 1):
        sys.exit(f"gate failed ({gate.returncode}): {gate.stderr.strip()[-2000:]}")
    verdict = next((line for line in gate.stdout.splitlines() if line.startswith("gate ")), gate.stdout[-200:])
    return gate.returncode == 0, verdict.strip(), gate.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweeps", type=int, default=10, help="identical re-sweeps gated against the baseline")
    parser.add_argument("--schedulers", default="continuous,static")
    parser.add_argument("--rates", default="8,inf")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats (seeds) per point: measured timings are gated over seeds")
    parser.add_argument("--num-requests", "-n", type=int, default=16)
    parser.add_argument("--max-output", type=int, default=8)
    parser.add_argument("--tolerance", default="5%", help="gate --tolerance (ratios and times default to it)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the sweeps and baseline in this folder")
    options = parser.parse_args()
    root = options.keep or Path(tempfile.mkdtemp(prefix="bsbench-gfa-"))
    root.mkdir(parents=True, exist_ok=True)
    loads = [os.getloadavg()[0]]
    print(f"gate false alarms: {options.sweeps} identical CPU sweeps (real runner, wall clock, tiny model, "
          f"{options.schedulers} at {options.rates} req/s, smoke -n {options.num_requests}, outputs <= "
          f"{options.max_output}, --repeats {options.repeats}) against one baseline, gate --tolerance "
          f"{options.tolerance} --no-absolute; load average {loads[0]:.1f}", flush=True)
    start = time.perf_counter()
    _sweep(root / "baseline", options)
    baseline = root / "baseline.json"
    made = _bsbench("gate", str(root / "baseline" / "runs"), "--baseline", str(baseline), "--update")
    if made.returncode != 0:
        sys.exit(f"baseline failed: {made.stderr.strip()}")
    passed = passed_absolute = 0
    for i in range(1, options.sweeps + 1):
        _sweep(root / f"sweep{i}", options)
        runs = root / f"sweep{i}" / "runs"
        ok, verdict, output = _gate(runs, baseline, options.tolerance, "--no-absolute")
        ok_absolute, verdict_absolute, output_absolute = _gate(runs, baseline, options.tolerance)
        passed += ok
        passed_absolute += ok_absolute
        loads.append(os.getloadavg()[0])
        print(f"sweep {i}: {'pass' if ok else 'FAIL'}: {verdict} (load {loads[-1]:.1f}); with absolute times: "
              f"{'pass' if ok_absolute else 'fail'}", flush=True)
        if not ok:
            print(output, flush=True)
        elif not ok_absolute:
            print(output_absolute, flush=True)
    elapsed = time.perf_counter() - start
    print(f"{passed}/{options.sweeps} identical re-sweeps passed the gate (--no-absolute) in {elapsed:.0f} s: "
          f"{'PASS' if passed == options.sweeps else 'MISS'} (target: all of them); with absolute times gated too "
          f"(not counted): {passed_absolute}/{options.sweeps}; load average {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    main()
