"""The per-step engine overhead of the simulated backend: host time a step costs besides its GPU kernels.

`--engine-overhead` takes a preset name or a duration in seconds (`0.8ms`, `0.0008`). Each preset
is the residual of a published decode-step intercept over the GPU time the roofline gives for that
same step (`benchmarks/sim_vs_published.py` recomputes both from its fit points and prints them):

- `eager` (default): a Python engine that launches every kernel from the host, as bsbench's own
  runner does. vLLM in DistServe's A100-80GB profile (`profiler-a100-80g.vllm.json`, OPT-13B,
  decode at batch 1 and context 128: 23.6 ms) less the roofline's 17.4 ms of GPU time for it: 6.2 ms.
- `cuda-graphs`: an engine without per-kernel host dispatch. DistServe's own C++ engine in the same
  profile (`profiler-a100-80g.distserve.json`: 20.1 ms at that point) less the same GPU time: 2.6 ms. No
  published CUDA-graph vLLM step time was at hand, so this is the closest measured engine of that
  overhead class; `--engine-overhead SECONDS` sets any other figure.
- `none`: kernels only, what Vidur's operator tables time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bsbench.errors import BsbenchError

DISTSERVE = "LLMServe/DistServe@82831f1604cc6b10bebd360f6c437a07790dde9f simdistserve/estimators/profile_data"


@dataclass(slots=True, frozen=True)
class EngineOverhead:
    name: str
    seconds: float
    source: str

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "seconds": self.seconds, "source": self.source}


PRESETS: dict[str, EngineOverhead] = {p.name: p for p in (
    EngineOverhead("eager", 0.0062, f"{DISTSERVE}/profiler-a100-80g.vllm.json: vLLM OPT-13B decode at batch 1, "
                                    "context 128 (23.6 ms) minus the roofline's GPU time of that step"),
    EngineOverhead("cuda-graphs", 0.0026, f"{DISTSERVE}/profiler-a100-80g.distserve.json: DistServe's C++ engine, "
                                          "OPT-13B decode at batch 1, context 128 (20.1 ms) minus the roofline's GPU "
                                          "time of that step"),
    EngineOverhead("none", 0.0, "kernels only (Vidur's operator tables time kernels alone)"),
)}
DEFAULT_ENGINE_OVERHEAD = "eager"


def engine_overhead(value: str | float | EngineOverhead) -> EngineOverhead:
    """A preset by name, or a duration (seconds, or with a unit: `800us`, `0.8ms`, `0.0008s`); BsbenchError
    otherwise."""
    if isinstance(value, EngineOverhead):
        return value
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if text in PRESETS:
            return PRESETS[text]
        seconds = _seconds(text)
    if not 0 <= seconds < 10:
        raise BsbenchError(f"--engine-overhead must lie in [0, 10) seconds, got {value!r}")
    return EngineOverhead(f"{seconds:g}s", seconds, "given by the user")


def _seconds(text: str) -> float:
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if text.endswith(unit):
            text, factor = text[: -len(unit)], scale
            break
    else:
        factor = 1.0
    try:
        seconds = float(text) * factor
    except ValueError:
        raise BsbenchError(f"--engine-overhead must be one of {', '.join(PRESETS)} or a duration such as 0.8ms, "
                           f"got {text!r}") from None
    if seconds != seconds:  # NaN
        raise BsbenchError("--engine-overhead must be a number")
    return seconds
