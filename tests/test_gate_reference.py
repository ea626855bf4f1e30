"""The gate catches a regression of the reference scheduler too (issue 33, point 6)."""

from __future__ import annotations

import dataclasses

from bsbench.backends.config import RunConfig
from bsbench.backends.run import run_benchmark, session_for
from bsbench.experiments.gate import build_baseline, check_records
from bsbench.workloads.build import load_workload

SIM = RunConfig(backend="sim", clock="virtual", gpu="a100-40gb", model="tiny", kv_memory=3 * 2**20)


def _records(continuous_options: dict) -> list:
    workload = load_workload("smoke", {"num_requests": 48, "max_output_len": 48, "rate": 16.0, "seed": 0})
    out = []
    for name, options in (("continuous", continuous_options), ("bucket", {})):
        config = dataclasses.replace(SIM, scheduler=name, scheduler_options=options)
        out.append(run_benchmark(workload, config, progress=False, session=session_for(config), save=False))
    return out


def test_a_worse_reference_fails_the_gate_even_without_absolute_figures():
    baseline = build_baseline(_records({}), reference="continuous")
    assert check_records(_records({}), baseline, 0.0, absolute=False).passed  # an identical run passes
    worse = check_records(_records({"max_num_seqs": 2}), baseline, 0.0, absolute=False)
    assert not worse.passed
    assert any(c.run.startswith("continuous") and not c.passed for c in worse.checks if c.category == "absolute")
    assert any("virtual clock" in note for note in worse.notes)


def test_without_absolute_figures_a_wall_clock_gate_checks_each_runs_batching(monkeypatch):
    import bsbench.experiments.gate as gate

    monkeypatch.setattr(gate, "is_measured", lambda records: True)  # judge the sim records as a wall clock would
    baseline = build_baseline(_records({}), reference="continuous")
    worse = check_records(_records({"max_num_seqs": 2}), baseline, 0.0, absolute=False, single_runs=True)
    assert any(c.category == "work" and c.run.startswith("continuous") and not c.passed for c in worse.checks)
    same = check_records(_records({}), baseline, 0.0, absolute=False, single_runs=True)
    assert all(c.passed for c in same.checks if c.category == "work")
