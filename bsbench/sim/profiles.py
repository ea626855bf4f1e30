"""Published GPU operator timings that the `profiled` cost model interpolates (bsbench/data/profiles/).

`vidur.json` holds compact extracts of Vidur's CUDA profiles (github.com/microsoft/vidur, MIT
licence; its source, commit and licence notice are in the file; `scripts/extract_vidur_profiles.py`
rebuilds it): per decoder layer, the median milliseconds of the QKV, output, gate/up and down
projections and of the norms, rotary embedding, activation and residual add, at 71 token counts from
1 to 4,096 and tensor-parallel degrees 1, 2, 4 and 8, for Llama-2-7B/70B (A100-80GB, H100) and
Llama-3-8B/70B (A100-80GB); and NCCL all-reduce medians by message bytes over 2, 4 and 8 GPUs of one
A100 or H100 DGX node. Vidur's attention tables are not in the published snapshot, so attention, the
LM head and the engine overhead are always the roofline's.

A table belongs to (GPU preset, hidden size, MLP size, heads, KV heads, tensor-parallel degree): a
model of another shape, or a GPU without tables, has none. `RowTable.at` interpolates linearly
between measured points and answers None outside them (the caller falls back to the roofline).
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

LINEAR_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
ELEMENTWISE_OPS = ("input_layernorm", "post_attention_layernorm", "attn_rope", "mlp_act", "add")


@dataclass(slots=True, frozen=True)
class RowTable:
    """Seconds at `xs` (ascending); `at(x)` interpolates linearly inside [xs[0], xs[-1]], None outside."""

    xs: tuple[int, ...]
    seconds: tuple[float, ...]

    def at(self, x: float) -> float | None:
        xs = self.xs
        if not xs or x < xs[0] or x > xs[-1]:
            return None
        i = bisect_left(xs, x)
        if xs[i] == x:
            return self.seconds[i]
        x0, x1, y0, y1 = xs[i - 1], xs[i], self.seconds[i - 1], self.seconds[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    def every_other(self, start: int) -> RowTable:
        """The points at indices start, start + 2, ... (held-out checks interpolate one half on the other)."""
        return RowTable(self.xs[start::2], self.seconds[start::2])


@dataclass(slots=True, frozen=True)
class LayerTable:
    """One decoder layer's measured seconds by token count: the linear layers and the elementwise ops."""

    gpu: str
    model: str
    tensor_parallel: int
    linear: RowTable
    elementwise: RowTable


@dataclass(slots=True, frozen=True)
class Profiles:
    source: str
    commit: str
    layers: dict[tuple[Any, ...], LayerTable]  # by layer_key
    all_reduce: dict[tuple[str, int], RowTable]  # by (GPU preset, GPUs); xs are message bytes

    def layer_table(self, gpu: str, hidden: int, intermediate: int, heads: int, kv_heads: int,
                    tensor_parallel: int) -> LayerTable | None:
        return self.layers.get((gpu, hidden, intermediate, heads, kv_heads, tensor_parallel))

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "commit": self.commit}


def _table(xs: list[int], ms: list[float]) -> RowTable:
    return RowTable(tuple(int(x) for x in xs), tuple(float(v) / 1e3 for v in ms))


@cache
def vidur_profiles() -> Profiles:
    """The shipped Vidur extract (read once)."""
    text = resources.files("bsbench").joinpath("data", "profiles", "vidur.json").read_text(encoding="utf-8")
    data = json.loads(text)
    layers: dict[tuple[Any, ...], LayerTable] = {}
    for t in data["compute"]:
        tokens = t["num_tokens"]
        linear = [sum(t["ms"][op][i] for op in LINEAR_OPS) for i in range(len(tokens))]
        elementwise = [sum(t["ms"][op][i] for op in ELEMENTWISE_OPS) for i in range(len(tokens))]
        key = (t["gpu"], t["n_embd"], t["n_expanded_embd"], t["n_head"], t["n_kv_head"], t["tensor_parallel"])
        layers.setdefault(key, LayerTable(t["gpu"], t["model"], t["tensor_parallel"], _table(tokens, linear),
                                 _table(tokens, elementwise)))  # the first model of a layer shape
    all_reduce = {(t["gpu"], t["num_workers"]): _table(t["bytes"], t["ms"]) for t in data["all_reduce"]}
    return Profiles(data["source"], data["commit"], layers, all_reduce)
