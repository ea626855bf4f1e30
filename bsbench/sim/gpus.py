"""Device presets of the simulated backend: memory, dense bf16 tensor throughput and memory bandwidth.

Figures are the vendor datasheets' peaks (dense, i.e. without the 2:4 sparsity
that the headline TFLOP/s of Hopper/Ada/Ampere datasheets include). Memory sizes
are the datasheets' "GB" read as GiB: HBM and GDDR capacities are binary
(nvidia-smi shows 40960 MiB on an A100-SXM4-40GB). The source is named per preset
and goes into every record that uses it. `link_gbps` is the datasheet's GPU-to-GPU bandwidth one
way (half the bidirectional NVLink figure; PCIe Gen4 x16 where a part has no NVLink).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bsbench.errors import BsbenchError, did_you_mean

GIB = 2**30


@dataclass(slots=True, frozen=True)
class DevicePreset:
    name: str
    memory_bytes: int
    bf16_tflops: float  # dense bf16 tensor-core peak, TFLOP/s
    hbm_gbps: float  # device memory bandwidth, GB/s (decimal)
    source: str
    link_gbps: float = 0.0  # GPU-to-GPU bandwidth one way, GB/s (NVLink, else PCIe): tensor-parallel all-reduces

    @property
    def peak_flops(self) -> float:
        """FLOP/s."""
        return self.bf16_tflops * 1e12

    @property
    def bandwidth(self) -> float:
        """Bytes/s."""
        return self.hbm_gbps * 1e9

    def describe(self) -> dict[str, Any]:
        return asdict(self)


_A100 = ("NVIDIA A100 Tensor Core GPU datasheet (2021): BF16 312 TFLOPS dense (624 with sparsity), SXM, "
         "NVLink 600 GB/s (300 one way)")
_PCIE4 = 32.0  # PCIe Gen4 x16: 64 GB/s both ways
PRESETS: dict[str, DevicePreset] = {p.name: p for p in (
    DevicePreset("a100-40gb", 40 * GIB, 312.0, 1555.0, _A100 + ", 40GB HBM2 1,555 GB/s", 300.0),
    DevicePreset("a100-80gb", 80 * GIB, 312.0, 2039.0, _A100 + ", 80GB HBM2e 2,039 GB/s", 300.0),
    DevicePreset("h100-sxm", 80 * GIB, 989.0, 3350.0,
                 "NVIDIA H100 Tensor Core GPU datasheet: H100 SXM BF16 1,979 TFLOPS with sparsity (989 dense), "
                 "80GB HBM3 3.35 TB/s, NVLink 900 GB/s (450 one way)", 450.0),
    DevicePreset("h200", 141 * GIB, 989.0, 4800.0,
                 "NVIDIA H200 Tensor Core GPU datasheet: H200 SXM BF16 1,979 TFLOPS with sparsity (989 dense), "
                 "141GB HBM3e 4.8 TB/s, NVLink 900 GB/s (450 one way)", 450.0),
    DevicePreset("l4", 24 * GIB, 121.0, 300.0,
                 "NVIDIA L4 Tensor Core GPU datasheet: BF16 242 TFLOPS with sparsity (121 dense), 24GB GDDR6 300 GB/s, "
                 "PCIe Gen4 x16 (no NVLink)", _PCIE4),
    DevicePreset("rtx4090", 24 * GIB, 165.0, 1008.0,
                 "NVIDIA Ada Lovelace GPU architecture whitepaper, GeForce RTX 4090: peak BF16 tensor 165.2 TFLOPS "
                 "with FP32 accumulate (330.4 with sparsity), 24GB GDDR6X 1,008 GB/s, PCIe Gen4 x16 (no NVLink)",
                 _PCIE4),
)}


def gpu_names() -> list[str]:
    return list(PRESETS)


def gpu_preset(name: str) -> DevicePreset:
    """The preset called `name` (case-insensitive); BsbenchError listing the choices otherwise."""
    preset = PRESETS.get(str(name).strip().lower())
    if preset is None:
        hint = did_you_mean(str(name).strip().lower(), PRESETS)
        raise BsbenchError(f"unknown GPU preset {name!r}{f' ({hint})' if hint else ''}; choose one of: "
                           f"{', '.join(PRESETS)}")
    return preset
