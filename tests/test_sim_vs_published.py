"""benchmarks/sim_vs_published.py: every roofline factor is its fit-half value, and --smoke runs in seconds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "sim_vs_published.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("sim_vs_published", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("sim_vs_published", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_factor_in_the_code_is_its_refit_from_the_fit_half_alone():
    bench = _benchmark()
    for name, refitted, in_code in bench.refit():
        assert abs(refitted / in_code - 1) <= bench.DRIFT, (name, refitted, in_code)


def test_no_validation_point_is_a_fit_point():
    bench = _benchmark()
    points = bench.vidur_points(smoke=True) + bench.distserve_points(smoke=True)
    fit = {p.name for p in points if p.half == "fit"}
    assert fit and all(p.name not in fit for p in points if p.half == "validation")
    assert all(("llama2-7b TP1" in p.name and "a100-80gb" in p.name) for p in points
               if p.half == "fit" and p.name.startswith("vidur"))


def test_smoke_prints_every_target():
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    verdicts = [line for line in done.stdout.splitlines() if line.strip().startswith(("PASS", "MISS"))]
    assert len(verdicts) == 7  # roofline MAPE, worst point, profiled held-out, four KV pairs
    assert "roofline per-step MAPE" in done.stdout and "held-out" in done.stdout
