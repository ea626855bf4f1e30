"""The torch thread count of a CPU run without --threads: half the usable cores, at least 1, and the record says it."""

from __future__ import annotations

import os

import pytest
import torch

from bsbench.model.threads import cpu_threads, default_cpu_threads


def _cores(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(count)), raising=False)


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (16, 8), (64, 32)])
def test_default_is_half_the_usable_cores_and_at_least_one(monkeypatch: pytest.MonkeyPatch, cores: int,
                                                           threads: int) -> None:
    _cores(monkeypatch, cores)
    assert default_cpu_threads() == threads
    assert cpu_threads(None, "cpu") == threads


def test_given_threads_win_and_a_gpu_keeps_torch_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _cores(monkeypatch, 8)
    assert cpu_threads(3, "cpu") == 3
    assert cpu_threads(None, "cuda") is None
    assert cpu_threads(2, "cuda") == 2


@pytest.mark.parametrize(("cores", "expected"), [(2, 1), (4, 2)])
def test_a_cpu_run_without_threads_records_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path, cores: int,
                                                       expected: int) -> None:
    from bsbench.backends.config import RunConfig
    from bsbench.backends.run import run_benchmark
    from bsbench.workloads.build import load_workload

    _cores(monkeypatch, cores)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # neither default: the run must set it
        workload = load_workload("synthetic", {"num_requests": 2, "input_len": 8, "output_len": 2})
        config = RunConfig(model="tiny", device="cpu", kv_memory=4 * 2**20, out_dir=tmp_path)
        record = run_benchmark(workload, config, progress=False, save=False)
        assert record.config.threads == expected
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


def test_run_help_states_the_default(bsbench) -> None:
    result = bsbench("run", "--help")
    assert result.code == 0
    assert "half the usable cores" in " ".join(result.out.split())
