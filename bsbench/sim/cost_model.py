"""Cost models: the predicted seconds of one step's work; tier (a), the roofline, lives here.

A cost model is a pure function of a `StepWork` (no host state, no wall time), so
a simulated run is deterministic and host time never reaches the virtual clock.
Tiers, written into every record that uses one:

- `uncalibrated`: `RooflineCostModel`, a device preset's peaks scaled by published
  efficiency factors (below);
- `calibrated`: a model fitted to measurements of the real runner on a device
  (`calibration.py`), loaded from a versioned JSON file.

Roofline of a Llama-family step (L layers, H heads of head_dim d, hidden h, vocab V):

    FLOPs = 2 * tokens * matmul_params + 2 * sampled * h * V + 4 * L * H * d * attn_pairs
    bytes = matmul weights + LM head (when a row is sampled) + embedding rows
            + KV read (gathered slots) + KV written (tokens) + activations
    time  = max(FLOPs / (peak * FLOP_EFFICIENCY), bytes / (bandwidth * BANDWIDTH_EFFICIENCY))
            + STEP_OVERHEAD_S

At efficiency 1 and no overhead this gives the roofline figures of LLaMA-2-13B fp16 on an
A100-40GB: decode at batch 16 and context 1024 about 25 ms, a 1024-token prefill about 85 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from bsbench.engine.kv_budget import activation_bytes_per_token
from bsbench.model.shape import ModelShape
from bsbench.sim.gpus import DevicePreset
from bsbench.sim.work import StepWork

# Published achieved fractions of peak (papers.md, "Simulators and cost models"): large prefills reach about
# 50-75% of bf16 peak; we take 0.65, which also turns the 85 ms ideal 1024-token LLaMA-2-13B prefill on an
# A100-40GB into the ~130 ms measured-class figure quoted there.
FLOP_EFFICIENCY = 0.65
# Decode reaches about 60-75% of HBM peak bandwidth (same source); we take the middle, 0.7.
BANDWIDTH_EFFICIENCY = 0.7
# DistServe's fitted decode intercepts are about 18-23 ms at 13B on an A100-80GB (same source). Reading the
# 26 GB of weights at 0.7 x 2,039 GB/s takes 18.2 ms, which the roofline already charges; the 0-4.8 ms left
# over is the fixed per-step cost (launches, scheduling, sampling): we take its middle, 2.5 ms.
STEP_OVERHEAD_S = 0.0025

SOURCES = {
    "flop_efficiency": "large prefill reaches about 50-75% of bf16 peak (papers.md); 0.65 maps the 85 ms ideal "
                       "LLaMA-2-13B 1024-token A100-40GB prefill to the ~130 ms measured-class figure",
    "bandwidth_efficiency": "decode reaches about 60-75% of HBM peak (papers.md); middle value",
    "step_overhead_s": "DistServe decode intercepts 18-23 ms at 13B on A100-80GB minus the 18.2 ms weight read "
                       "at 0.7 x 2,039 GB/s; middle of the 0-4.8 ms left",
}


class CostModel(Protocol):
    """Predicted seconds of one step. Contract: a pure, deterministic function of the work."""

    tier: ClassVar[str]

    def step_time(self, work: StepWork) -> float: ...

    def describe(self) -> dict[str, Any]:
        """What a run record stores about this model (tier, device, parameters, sources)."""
        ...


@dataclass(slots=True, frozen=True)
class RooflineCostModel:
    """Tier (a): a device preset's peaks with efficiency factors (see the module docstring)."""

    shape: ModelShape
    device: DevicePreset
    flop_efficiency: float = FLOP_EFFICIENCY
    bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY
    step_overhead_s: float = STEP_OVERHEAD_S
    tier: ClassVar[str] = "uncalibrated"

    def flops(self, work: StepWork) -> float:
        s = self.shape
        attn = 4 * s.info.num_layers * s.num_heads * s.info.head_dim * work.attn_pairs
        return 2.0 * work.tokens * s.matmul_params + 2.0 * work.sampled * s.lm_head_params + attn

    def bytes_moved(self, work: StepWork) -> float:
        s = self.shape
        b = s.info.dtype_bytes
        weights = s.matmul_params * b + (s.lm_head_params * b if work.sampled else 0) + work.tokens * s.hidden_size * b
        kv = (work.kv_read_slots + work.tokens) * s.info.kv_bytes_per_token
        # every layer writes its transient activations once and reads them once
        act = 2 * work.tokens * s.info.num_layers * activation_bytes_per_token(s.hidden_size, s.intermediate_size, b)
        return float(weights + kv + act)

    def step_time(self, work: StepWork) -> float:
        compute = self.flops(work) / (self.device.peak_flops * self.flop_efficiency)
        memory = self.bytes_moved(work) / (self.device.bandwidth * self.bandwidth_efficiency)
        return max(compute, memory) + self.step_overhead_s

    def describe(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "kind": "roofline",
            "device": self.device.describe(),
            "model": self.shape.describe(),
            "flop_efficiency": self.flop_efficiency,
            "bandwidth_efficiency": self.bandwidth_efficiency,
            "step_overhead_s": self.step_overhead_s,
            "sources": SOURCES,
        }
