"""--cost-model, --engine-overhead, --tensor-parallel and --gpu-memory-utilization through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from bsbench.record import RunRecord, read_record
from bsbench.record.backend_part import SimPart

SIM = ("--backend", "sim", "--workload", "smoke", "-n", "6", "--max-output-len", "8", "--quiet")


def _only(folder: Path) -> RunRecord:
    (path,) = folder.glob("*.json")
    return read_record(path)


def test_profiled_tensor_parallel_run_records_its_tier_source_and_split(bsbench, tmp_path):
    result = bsbench("run", *SIM, "--gpu", "h100-sxm", "--model", "llama2-70b", "--cost-model", "profiled",
                     "--tensor-parallel", "4", "--engine-overhead", "cuda-graphs", "--gpu-memory-utilization", "0.85",
                     "--out", tmp_path)
    assert result.code == 0, result.out
    record = _only(tmp_path)
    assert record.config.backend == SimPart("h100-sxm", "profiled", None, tensor_parallel=4)
    assert record.config.backend.backend_id() == "sim/virtual/h100-sxmx4/profiled"
    described = record.environment["cost_model"]
    assert described["tier"] == "profiled" and described["tensor_parallel"] == 4
    assert "microsoft/vidur" in described["profiles"]["source"] and described["measured"]["all_reduce"]
    assert described["engine_overhead"]["name"] == "cuda-graphs"


def test_engine_overhead_changes_times_and_is_recorded(bsbench, tmp_path):
    common = (*SIM, "--gpu", "a100-40gb", "--model", "llama2-7b")
    assert bsbench("run", *common, "--engine-overhead", "none", "--out", tmp_path / "none").code == 0
    assert bsbench("run", *common, "--out", tmp_path / "eager").code == 0
    none, eager = _only(tmp_path / "none"), _only(tmp_path / "eager")
    assert eager.environment["cost_model"]["engine_overhead"]["name"] == "eager"
    assert sum(s.forward_s for s in eager.steps) > sum(s.forward_s for s in none.steps)


@pytest.mark.parametrize("flags, message", [
    (("--gpu", "a100-40gb", "--engine-overhead", "fast"), "--engine-overhead must be one of"),
    (("--gpu", "a100-40gb", "--gpu-memory-utilization", "1.5"), "--gpu-memory-utilization must lie in"),
    (("--gpu", "a100-40gb", "--model", "llama2-13b", "--tensor-parallel", "3"), "does not split"),
    (("--gpu", "a100-40gb", "--model", "llama2-70b"), "do not fit"),
    (("--gpu", "a100-40gb", "--cost-model", "missing.json"), "does not exist"),
    (("--gpu", "a100-40gb", "--cost-model", "profiled", "--calibration", "x.json"), "two cost models"),
])
def test_user_errors_are_one_line_exit_2(bsbench, tmp_path, flags, message):
    result = bsbench("run", *SIM, *flags, "--out", tmp_path)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1


def test_cost_model_flags_need_a_virtual_clock_and_sim_only_flags_need_sim(bsbench, tmp_path):
    wall = bsbench("run", "--workload", "smoke", "-n", "2", "--engine-overhead", "none", "--out", tmp_path)
    assert wall.code == 2 and "--engine-overhead applies to --backend sim" in wall.err
    virtual = bsbench("run", "--workload", "smoke", "-n", "2", "--clock", "virtual", "--gpu", "a100-40gb",
                      "--tensor-parallel", "2", "--out", tmp_path)
    assert virtual.code == 2 and "--tensor-parallel applies to --backend sim" in virtual.err
