"""False-alarm rate of the regression gate on measured (wall-clock) runs.

One small CPU sweep (real runner, tiny model, wall clock) becomes the baseline; then N identical sweeps are
gated against it with the default gate settings (intervals on measured figures, counts exact). Nothing changed
between the sweeps, so every gate should pass: it prints how many did, and PASS if all N did, MISS otherwise.

    python benchmarks/gate_false_alarm.py                 # 10 re-sweeps, a few minutes on 2 cores
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
    print(f"gate false alarms: {options.sweeps} identical CPU sweeps (real runner, wall clock, tiny model, "
          f"{options.schedulers} at {options.rates} req/s, smoke -n {options.num_requests}, outputs <= "
          f"{options.max_output}) against one baseline, gate --tolerance {options.tolerance}; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    _sweep(root / "baseline", options)
    baseline = root / "baseline.json"
    made = _bsbench("gate", str(root / "baseline" / "runs"), "--baseline", str(baseline), "--update")
    if made.returncode != 0:
        sys.exit(f"baseline failed: {made.stderr.strip()}")
    passed = 0
    for i in range(1, options.sweeps + 1):
        _sweep(root / f"sweep{i}", options)
        gate = _bsbench("gate", str(root / f"sweep{i}" / "runs"), "--baseline", str(baseline),
                        "--tolerance", options.tolerance)
        ok = gate.returncode == 0
        passed += ok
        verdict = next((line for line in gate.stdout.splitlines() if line.startswith("gate ")), gate.stdout[-200:])
        print(f"sweep {i}: {'pass' if ok else 'FAIL'}: {verdict.strip()} (load {os.getloadavg()[0]:.1f})",
              flush=True)
        if not ok:
            print(gate.stdout.strip(), flush=True)
    elapsed = time.perf_counter() - start
    print(f"{passed}/{options.sweeps} identical re-sweeps passed the gate in {elapsed:.0f} s: "
          f"{'PASS' if passed == options.sweeps else 'MISS'} (target: all of them)")


if __name__ == "__main__":
    main()
