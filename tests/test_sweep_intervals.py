"""sweep_summary.json points: mean over repeats and M_low / M_high, the 95% interval across seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsbench.experiments.sweep import HEADLINE, SweepPlan, load_summary, run_sweep
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload

try:
    from record_factory import make_record
except ImportError:
    from tests.record_factory import make_record

T_975_DF2 = 4.302652729911275  # Student t, two-sided 95%, 2 degrees of freedom (tables)


def _workload(rate, seed):
    reqs = [RequestSpec(id=f"q{i}", prompt_ids=(seed, i, 7), output_len=4, arrival_s=i / rate) for i in range(4)]
    return Workload(name="fake", requests=reqs, tokenizer="t", spec={"rate": rate, "seed": seed})


def _engine(out):
    def run(task):
        speed = (2.0 if task.scheduler == "static" else 1.0) * (1 + 0.3 * task.seed)  # figures that differ by seed
        return make_record(task.scheduler, task.rate, speed=speed, seed=task.seed,
                           fingerprint=task.workload.fingerprint())

    return run


def _config_of(scheduler, workload, rate, seed):
    """The RecordConfig _engine's record of this run carries (the run key reads it)."""
    return make_record(scheduler, rate, seed=seed).config


def test_points_carry_the_mean_and_the_interval_across_seeds(tmp_path):
    plan = SweepPlan(["static", "continuous"], [2.0], [0, 1, 2])
    result = run_sweep(plan, _workload, _engine(tmp_path), tmp_path, config_of=_config_of)
    points = {p["scheduler"]: p for p in load_summary(tmp_path)["points"]}
    assert set(points) == {"static", "continuous"}
    static = points["static"]
    assert static["repeats"] == 3 and static["seeds"] == [0, 1, 2]
    values = np.array([r.summary["median_ttft_ms"] for r in result.runs if r.scheduler == "static"])
    half = T_975_DF2 * values.std(ddof=1) / math.sqrt(3)
    assert static["median_ttft_ms"] == pytest.approx(values.mean())
    assert static["median_ttft_ms_low"] == pytest.approx(values.mean() - half)
    assert static["median_ttft_ms_high"] == pytest.approx(values.mean() + half)
    assert static["median_ttft_ms_low"] < static["median_ttft_ms"] < static["median_ttft_ms_high"]
    for metric in HEADLINE:  # every headline metric has its band keys
        assert f"{metric}_low" in static and f"{metric}_high" in static
    # identical figures over seeds (no failures anywhere): a zero-width band
    assert static["failed_low"] == static["failed_high"] == 0


def test_a_single_repeat_has_no_band(tmp_path):
    run_sweep(SweepPlan(["continuous"], [2.0], [0]), _workload, _engine(tmp_path), tmp_path,
              config_of=_config_of)
    (point,) = load_summary(tmp_path)["points"]
    assert point["repeats"] == 1 and "output_throughput_low" not in point
    assert point["output_throughput"] is not None
