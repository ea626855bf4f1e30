"""GPU presets of the simulated backend: the datasheet figures of papers.md, sources, and the user error."""

from __future__ import annotations

import pytest

from bsbench.errors import BsbenchError
from bsbench.sim.gpus import GIB, gpu_names, gpu_preset

# papers.md, "Simulators and cost models": bf16 dense TFLOP/s, HBM GB/s; memory from the datasheets
EXPECTED = {
    "a100-40gb": (312, 1555, 40), "a100-80gb": (312, 2039, 80), "h100-sxm": (989, 3350, 80),
    "h200": (989, 4800, 141), "l4": (121, 300, 24), "rtx4090": (165, 1008, 24),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_figures_and_source(name):
    p = gpu_preset(name)
    tflops, gbps, gib = EXPECTED[name]
    assert (p.bf16_tflops, p.hbm_gbps, p.memory_bytes) == (tflops, gbps, gib * GIB)
    assert p.peak_flops == tflops * 1e12 and p.bandwidth == gbps * 1e9
    assert "datasheet" in p.source or "whitepaper" in p.source
    assert p.describe()["source"] == p.source


def test_names_case_and_unknown():
    assert set(gpu_names()) == set(EXPECTED)
    assert gpu_preset(" H100-SXM ") is gpu_preset("h100-sxm")
    with pytest.raises(BsbenchError) as err:
        gpu_preset("v100")
    message = str(err.value)
    assert "v100" in message and all(name in message for name in EXPECTED) and "\n" not in message
