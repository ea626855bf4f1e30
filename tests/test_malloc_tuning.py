"""The allocator tuning a real runner applies at start (engine/malloc_tuning.py)."""

from __future__ import annotations

import platform

import pytest
import torch

from bsbench.model.loader import load_model
from bsbench.model.malloc_tuning import ENV, M_MMAP_THRESHOLD, M_TOP_PAD, M_TRIM_THRESHOLD, SETTINGS, tune_malloc
from bsbench.model.runner import ModelRunner

ON_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


class FakeMallopt:
    def __init__(self, refuse: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.refuse = refuse

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 0 if param == self.refuse else 1


def test_sets_the_three_parameters_and_reports_what_was_accepted(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    fake = FakeMallopt(refuse=M_TOP_PAD)
    applied = tune_malloc(fake)
    assert sorted(p for p, _ in fake.calls) == sorted([M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD])
    assert dict(fake.calls)[M_MMAP_THRESHOLD] >= 2**30 and dict(fake.calls)[M_TRIM_THRESHOLD] >= 2**30
    assert applied == {name: value for name, (param, value) in SETTINGS.items() if param != M_TOP_PAD}


@pytest.mark.parametrize("value", ["off", "0", "OFF", "false"])
def test_opt_out_env_var(monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    fake = FakeMallopt()
    assert tune_malloc(fake) == {} and fake.calls == []


@pytest.mark.skipif(not ON_GLIBC, reason="glibc only")
def test_real_glibc_accepts_every_setting_and_a_runner_applies_them(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert tune_malloc() == {name: value for name, (_, value) in SETTINGS.items()}
    model, info = load_model("tiny", "dummy", "cpu", "float32", 0)
    assert ModelRunner(model, info, "cpu", torch.float32).malloc_tuning == tune_malloc()
    monkeypatch.setenv(ENV, "off")
    assert ModelRunner(model, info, "cpu", torch.float32).malloc_tuning == {}
