"""Cost models: the predicted seconds of one step's work; the `roofline` tier lives here.

A cost model is a pure function of a `StepWork` (no host state, no wall time), so a simulated run
is deterministic and host time never reaches the virtual clock. Tiers, written into every record:

- `roofline`: `RooflineCostModel`, a device preset's peaks with efficiency factors (below);
- `profiled`: Vidur's published CUDA operator timings where they cover the step (`profiled.py`);
- `calibrated`: a model fitted to measurements of the real runner on a device (`calibration.py`).

The roofline prices a step per operator group, as the real runner executes it, on the share of the
model one GPU holds (`parallel.gpu_shape`: tensor parallelism), and sums the groups:

- linear layers (QKV, output, gate/up, down) over every token row, pads included: FLOPs
  2 x rows x matmul weights, bytes the weights once plus each matmul's input and output rows;
- attention, per call (`work.calls`): a fresh (prefill) call's FLOPs, 4 x layers x heads x head_dim x
  score pairs, at the prefill attention efficiency, its bytes the q, k, v and output rows; a gathered
  (decode or later-chunk) call reads its gathered KV slots, bandwidth-bound at the decode attention
  efficiency; plus one kernel floor per call and layer;
- the LM head on the sampled rows only (its weights, split by vocabulary, and fp32 logits);
- norms and elementwise ops (two RMSNorms, rotary embedding, activation, residual adds, the KV
  store and the embedding rows): bandwidth-bound, plus a per-kernel floor;
- two all-reduces of the hidden state per layer under tensor parallelism (`parallel.py`);
- the engine's per-step overhead (`engine_overhead.py`).

Each group's compute time c and memory time m meet at a smooth corner, sqrt(c^2 + m^2), instead of
max(c, m). Why: near the crossover a real kernel is neither compute- nor bandwidth-saturated (tile
and wave quantisation, the pipeline fill of each K-loop), and measured times there lie 20-40% above
max(c, m); the L2 sum is 1.41 x the max at the crossover and tends to it on either side, and over
Vidur's Llama-2-7B A100-80GB linear layers (1-4,096 tokens) it gives a mean error of 3.4% where the
hard max gives 9%. (A p-norm with a fitted p is the published alternative, e.g. the "smooth
roofline" of performance-modelling work; p = 2 needs no extra parameter.)

Every factor below was set from the FIT half of `benchmarks/sim_vs_published.py` (which recomputes
them and prints any drift); none from its validation half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from bsbench.engine.step_layout import FRESH_CAUSAL, FRESH_MASKED, AttnCall
from bsbench.model.shape import ModelShape
from bsbench.sim.engine_overhead import DEFAULT_ENGINE_OVERHEAD, EngineOverhead, engine_overhead
from bsbench.sim.gpus import DevicePreset
from bsbench.sim.parallel import ALL_REDUCES_PER_LAYER, gpu_shape, ring_all_reduce_s
from bsbench.sim.work import StepWork

_FIT = "fit half of benchmarks/sim_vs_published.py: "
# Vidur, Llama-2-7B on the A100-80GB at tensor parallelism 1, the four linear layers at 71 token counts.
LINEAR_FLOP_EFFICIENCY = 0.71
LINEAR_BANDWIDTH_EFFICIENCY = 0.76
# Same table, the five elementwise ops (norms, rope, activation, add): bandwidth and a per-kernel floor.
ELEMENTWISE_BANDWIDTH_EFFICIENCY = 0.65
KERNEL_FLOOR_S = 3.2e-6
ELEMENTWISE_KERNELS_PER_LAYER = 5
# DistServe's own engine on the A100-80GB (OPT-13B): the quadratic prefill term at 2,048 tokens, and the
# per-context-token decode slope.
ATTENTION_PREFILL_FLOP_EFFICIENCY = 0.18
ATTENTION_DECODE_BANDWIDTH_EFFICIENCY = 0.64

SOURCES = {
    "linear": _FIT + "Vidur Llama-2-7B A100-80GB TP1 linear layers (flop 0.71, bandwidth 0.76 of peak)",
    "elementwise": _FIT + "Vidur Llama-2-7B A100-80GB TP1 norms/rope/act/add (bandwidth 0.65, 3.2 us per kernel)",
    "attention_prefill": _FIT + "DistServe engine OPT-13B A100-80GB prefill quadratic term at 2,048 tokens (0.18)",
    "attention_decode": _FIT + "DistServe engine OPT-13B A100-80GB decode slope per context token (0.64)",
    "corner": "sqrt(c^2 + m^2) per operator group (module docstring of bsbench/sim/cost_model.py)",
}
GROUPS = ("linear", "attention", "lm_head", "elementwise", "all_reduce", "overhead")
_FRESH = (FRESH_CAUSAL, FRESH_MASKED)


class CostModel(Protocol):
    """Predicted seconds of one step. Contract: a pure, deterministic function of the work."""

    tier: ClassVar[str]

    def step_time(self, work: StepWork) -> float: ...

    def describe(self) -> dict[str, Any]:
        """What a run record stores about this model (tier, device, parameters, sources)."""
        ...


def corner(compute_s: float, memory_s: float) -> float:
    """The smooth roofline corner (module docstring); the groups below inline it as math.hypot."""
    return math.hypot(compute_s, memory_s)


@dataclass(slots=True, frozen=True)
class _Coefficients:
    """Seconds per unit of work of each group on one GPU, computed once per model (step_time runs per step)."""

    linear_flop: float  # per token
    linear_weights: float  # the weight read
    linear_rows: float  # per token
    attention_flop: float  # per score pair
    fresh_bytes: float  # per query row of a fresh call
    kv_bytes: float  # per gathered KV slot
    query_bytes: float  # per query row of a gathered call
    call_floor: float  # per call
    lm_flop: float  # per sampled row
    lm_weights: float
    lm_rows: float  # per sampled row
    elementwise_floor: float
    elementwise_bytes: float  # per token
    all_reduce_bytes: float  # per token: message bytes


def _coefficients(gpu: ModelShape, device: DevicePreset, tensor_parallel: int) -> _Coefficients:
    d = gpu.info.head_dim
    h, q, kv, inter, b = gpu.hidden_size, gpu.num_heads * d, gpu.info.num_kv_heads * d, gpu.intermediate_size, \
        gpu.info.dtype_bytes
    layers = gpu.info.num_layers
    lin_peak = device.peak_flops * LINEAR_FLOP_EFFICIENCY
    lin_bw = device.bandwidth * LINEAR_BANDWIDTH_EFFICIENCY
    attn_peak = device.peak_flops * ATTENTION_PREFILL_FLOP_EFFICIENCY
    attn_bw = device.bandwidth * ATTENTION_DECODE_BANDWIDTH_EFFICIENCY
    elem_bw = device.bandwidth * ELEMENTWISE_BANDWIDTH_EFFICIENCY
    lm_weights = gpu.lm_head_params / tensor_parallel
    return _Coefficients(
        linear_flop=2.0 * gpu.matmul_params / lin_peak,
        linear_weights=gpu.matmul_params * b / lin_bw,
        linear_rows=layers * b * (4 * h + 2 * q + 2 * kv + 3 * inter) / lin_bw,
        attention_flop=4.0 * layers * q / attn_peak,
        fresh_bytes=layers * (2 * q + 2 * kv) * b / attn_bw,
        kv_bytes=layers * 2 * kv * b / attn_bw,
        query_bytes=layers * 2 * q * b / attn_bw,
        call_floor=layers * KERNEL_FLOOR_S,
        lm_flop=2.0 * lm_weights / lin_peak,
        lm_weights=lm_weights * b / lin_bw,
        lm_rows=(h * b + gpu.vocab_size / tensor_parallel * 4) / lin_bw,
        elementwise_floor=layers * ELEMENTWISE_KERNELS_PER_LAYER * KERNEL_FLOOR_S,
        # two norms, rope, activation, two adds, the KV store per layer; the embedding rows once
        elementwise_bytes=(layers * b * (10 * h + 2 * (q + kv) + 3 * inter + 2 * kv) + h * b) / elem_bw,
        all_reduce_bytes=float(h * b),
    )


@dataclass(slots=True, frozen=True)
class RooflineCostModel:
    """The roofline tier: a device preset's peaks, efficiency factors and an engine overhead (module docstring)."""

    shape: ModelShape
    device: DevicePreset
    tensor_parallel: int = 1
    overhead: EngineOverhead = field(default_factory=lambda: engine_overhead(DEFAULT_ENGINE_OVERHEAD))
    tier: ClassVar[str] = "roofline"
    gpu: ModelShape = field(init=False, repr=False, compare=False)
    k: _Coefficients = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        gpu = gpu_shape(self.shape, self.tensor_parallel)
        object.__setattr__(self, "gpu", gpu)
        object.__setattr__(self, "k", _coefficients(gpu, self.device, self.tensor_parallel))

    def step_time(self, work: StepWork) -> float:
        t = work.tokens
        return (self.linear_s(t) + self.attention_s(work.calls) + self.lm_head_s(work.sampled)
                + self.elementwise_s(t) + self.all_reduce_s(t) + self.overhead.seconds)

    def group_times(self, work: StepWork) -> dict[str, float]:
        """Seconds of each operator group of `GROUPS` for this step (they sum to `step_time`)."""
        return {"linear": self.linear_s(work.tokens), "attention": self.attention_s(work.calls),
                "lm_head": self.lm_head_s(work.sampled), "elementwise": self.elementwise_s(work.tokens),
                "all_reduce": self.all_reduce_s(work.tokens), "overhead": self.overhead.seconds}

    def linear_s(self, tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        k = self.k
        return math.hypot(tokens * k.linear_flop, k.linear_weights + tokens * k.linear_rows)

    def attention_s(self, calls: tuple[AttnCall, ...]) -> float:
        k = self.k
        total = 0.0
        for call in calls:
            if call.kind in _FRESH:
                memory = call.rows * call.q_len * k.fresh_bytes
            else:
                memory = call.rows * (call.kv_len * k.kv_bytes + call.q_len * k.query_bytes)
            total += math.hypot(call.score_pairs * k.attention_flop, memory) + k.call_floor
        return total

    def lm_head_s(self, sampled: int) -> float:
        if sampled <= 0:
            return 0.0
        k = self.k
        return math.hypot(sampled * k.lm_flop, k.lm_weights + sampled * k.lm_rows)

    def elementwise_s(self, tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        return self.k.elementwise_floor + tokens * self.k.elementwise_bytes

    def all_reduce_s(self, tokens: int) -> float:
        if self.tensor_parallel <= 1 or tokens <= 0:
            return 0.0
        calls = ALL_REDUCES_PER_LAYER * self.gpu.info.num_layers
        return calls * self.one_all_reduce_s(tokens * self.k.all_reduce_bytes)

    def one_all_reduce_s(self, nbytes: float) -> float:
        return ring_all_reduce_s(nbytes, self.tensor_parallel, self.device)

    def describe(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "kind": "roofline",
            "device": self.device.describe(),
            "model": self.shape.describe(),
            "tensor_parallel": self.tensor_parallel,
            "engine_overhead": self.overhead.describe(),
            "factors": {"linear_flop_efficiency": LINEAR_FLOP_EFFICIENCY,
                        "linear_bandwidth_efficiency": LINEAR_BANDWIDTH_EFFICIENCY,
                        "elementwise_bandwidth_efficiency": ELEMENTWISE_BANDWIDTH_EFFICIENCY,
                        "kernel_floor_s": KERNEL_FLOOR_S,
                        "attention_prefill_flop_efficiency": ATTENTION_PREFILL_FLOP_EFFICIENCY,
                        "attention_decode_bandwidth_efficiency": ATTENTION_DECODE_BANDWIDTH_EFFICIENCY},
            "sources": SOURCES,
        }
