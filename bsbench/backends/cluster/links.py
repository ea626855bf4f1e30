"""KV-transfer link presets between a prefill and a decode instance, and the time of one transfer.

A transfer of a request's prompt KV takes `bytes / bandwidth + latency`; bytes = prompt tokens x the model's KV
bytes per token (`ModelInfo.kv_bytes_per_token`: 2 x layers x KV heads x head dim x dtype bytes). Bandwidth is
one direction of the link. Sources:

- nvlink: NVIDIA A100 datasheet, third-generation NVLink 600 GB/s total (both directions together), so
  300 GB/s one way.
- pcie4-x16: PCI Express 4.0, 16 GT/s per lane with 128b/130b encoding, x16 = 31.5 GB/s one way.
- ib-200g: HDR InfiniBand, 200 Gb/s per port = 25 GB/s one way.

Latency is our assumption, not a measured figure: a fixed per-transfer cost of the order of an RDMA or NCCL
send's set-up (a few microseconds on NVLink, tens over PCIe or the network); it matters only for short prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

from bsbench.errors import BsbenchError

GB = 1e9


@dataclass(slots=True, frozen=True)
class LinkPreset:
    name: str
    bandwidth_bytes_s: float  # one direction
    latency_s: float
    source: str

    def transfer_s(self, num_bytes: int) -> float:
        """Seconds to move `num_bytes` over this link."""
        return num_bytes / self.bandwidth_bytes_s + self.latency_s

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "bandwidth_GB_s": self.bandwidth_bytes_s / GB, "latency_us": self.latency_s * 1e6,
                "source": self.source}


LINKS: dict[str, LinkPreset] = {link.name: link for link in (
    LinkPreset("nvlink", 300 * GB, 5e-6, "NVIDIA A100 datasheet: NVLink 600 GB/s both directions; latency assumed"),
    LinkPreset("pcie4-x16", 31.5 * GB, 20e-6, "PCIe 4.0: 16 GT/s x 16 lanes, 128b/130b; latency assumed"),
    LinkPreset("ib-200g", 25 * GB, 20e-6, "HDR InfiniBand 200 Gb/s per port; latency assumed"),
)}
DEFAULT_LINK = "nvlink"  # BucketServe moves KV over NVLink


def link_preset(name: str) -> LinkPreset:
    """The preset called `name`; an unknown name is a user error."""
    try:
        return LINKS[str(name).strip().lower()]
    except KeyError:
        raise BsbenchError(f"unknown --link {name!r}; choose one of: {', '.join(LINKS)}") from None
