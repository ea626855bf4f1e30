"""The one entry point every command uses to get a workload.

    load_workload(spec_or_name_or_jsonl, overrides) -> Workload
    build_workload(source, **options) -> Workload
    with_rate(workload, rate) -> Workload

`spec_or_name_or_jsonl`: None (the default: packaged ShareGPT sampled as vLLM
does, vllm filter, seed 0, 100 requests, rate inf), a spec name (see
specs.py), a .toml path, a saved .jsonl request list (replayed exactly), or a
source string: sharegpt | sharegpt-multiturn | longbench | synthetic | trace |
mixed:SRC=SHARE,SRC=SHARE. `overrides` are option names (specs.DEFAULTS) whose
None values are ignored.

Randomness: one explicit seed; independent numpy streams are derived from
(seed, stream) for sampling, mixing, arrivals, SLOs and priorities, so the
prompts do not depend on the arrival settings. Same seed => the same request
list and arrival floats, to the bit.

Sweeping rates with paired requests: call `load_workload(spec, {**overrides,
"rate": r})` per rate (cheap after the first call: parsed files and tokenizers
are cached in-process), or build once and call `with_rate(workload, r)`. Both
give identical prompts, ids, SLOs and priorities; arrival i is
unit_arrival_i / r from the same seeded unit-rate draws.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.values import MAX_SECONDS, Real, validate
from bsbench.workloads import specs
from bsbench.workloads.arrivals import (
    arrival_times,
    make_arrival_spec,
    ramp_rates,
    ramped_arrival_times,
    realised_rate,
    unit_arrivals,
)
from bsbench.workloads.filters import make_filter
from bsbench.workloads.longbench import load_longbench
from bsbench.workloads.replay import load_jsonl
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.sampling import SampleSet, Shaping
from bsbench.workloads.sharegpt import load_sharegpt
from bsbench.workloads.slo import assign_priorities, draw_slos, parse_bound
from bsbench.workloads.synthetic import load_synthetic
from bsbench.workloads.tokenizer import TokenizerHandle, load_tokenizer
from bsbench.workloads.trace import load_trace
from bsbench.workloads.workload import Workload

SOURCES = ("sharegpt", "sharegpt-multiturn", "longbench", "synthetic", "trace")
_SHARE_WEIGHT = Real(low=0, low_open=True, high=1e6)  # normalised over the components
ARRIVAL_KEYS = ("rate", "arrival", "burstiness", "cv", "normalise_arrivals")
# numpy stream ids derived from the seed
_SAMPLE, _MIX, _ARRIVALS, _SLO, _PRIORITY = range(5)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def parse_mix(source: str) -> list[tuple[str, float]]:
    """'mixed:sharegpt=0.8,sharegpt-multiturn=0.2' -> [(name, share)], shares normalised to sum 1."""
    body = source.split(":", 1)[1] if ":" in source else ""
    parts: list[tuple[str, float]] = []
    for item in filter(None, (p.strip() for p in body.split(","))):
        name, _, share = item.partition("=")
        name = name.strip()
        if name not in SOURCES or name == "trace":
            raise BsbenchError(f"unknown mixed component {name!r} in {source!r} "
                               f"(choose from {', '.join(s for s in SOURCES if s != 'trace')})")
        if not share.strip():
            raise BsbenchError(f"mixed component {item!r} needs a share, e.g. {name}=0.2")
        parts.append((name, validate(_SHARE_WEIGHT, share, f"mixed share of {name}")))
    if not parts:
        raise BsbenchError(
            f"mixed source needs components, e.g. mixed:sharegpt=0.8,sharegpt-multiturn=0.2; got {source!r}")
    total = sum(v for _, v in parts)
    return [(n, v / total) for n, v in parts]


def split_counts(n: int, shares: list[float]) -> list[int]:
    """Largest-remainder rounding: counts sum to n, ties go to the earlier component."""
    raw = [n * s for s in shares]
    counts = [int(math.floor(r)) for r in raw]
    order = sorted(range(len(shares)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _sample_source(source: str, num: int, options: dict[str, Any], tokenizer: TokenizerHandle,
                   rng: np.random.Generator) -> SampleSet:
    shaping = Shaping(make_filter(options["filter"], options), options["max_prompt_len"], options["max_output_len"])
    common = dict(strict=bool(options["strict"]), oversample=bool(options["oversample"]))
    if source in ("sharegpt", "sharegpt-multiturn"):
        return load_sharegpt(num, rng, tokenizer, shaping, options["dataset_path"],
                             multiturn=source == "sharegpt-multiturn", **common)
    if source == "longbench":
        return load_longbench(num, rng, tokenizer, shaping, options["dataset_path"], **common)
    if source == "synthetic":
        return load_synthetic(num, rng, tokenizer, options)
    if source == "trace":
        return load_trace(num, rng, tokenizer, options["dataset_path"], float(options["time_scale"]),
                          max_prompt_len=options["max_prompt_len"], max_output_len=options["max_output_len"], **common)
    raise BsbenchError(f"unknown source {source!r} (choose from {', '.join(SOURCES)}, mixed:SRC=SHARE,...)")


def _sample_mixed(source: str, num: int, options: dict[str, Any], tokenizer: TokenizerHandle) -> SampleSet:
    parts = parse_mix(source)
    components = options.get("components") or {}
    samples, reports = [], {}
    for index, ((name, _), count) in enumerate(zip(parts, split_counts(num, [s for _, s in parts]))):
        if count == 0:
            continue
        sub = {**options, **components.get(name, {})}
        if name != "longbench" and not components.get(name, {}).get("dataset_path"):
            sub["dataset_path"] = None  # --dataset-path feeds the longbench component of a mix
        result = _sample_source(name, count, sub, tokenizer, _rng(options["seed"], _SAMPLE, index))
        samples.extend(result.samples)
        reports[name] = {**result.report, "requested": count}
    order = _rng(options["seed"], _MIX).permutation(len(samples))
    mixed = [samples[int(i)] for i in order]
    report = {"source": source, "components": reports,
              "examined": sum(r.get("examined", 0) for r in reports.values()),
              "kept": len(mixed), "malformed": sum(r.get("malformed", 0) for r in reports.values()),
              "prompts_truncated": sum(r.get("prompts_truncated", 0) for r in reports.values()),
              "outputs_capped": sum(r.get("outputs_capped", 0) for r in reports.values()),
              "oversampled": sum(r.get("oversampled", 0) for r in reports.values()),
              "dropped": _sum_dicts(r.get("dropped", {}) for r in reports.values())}
    return SampleSet(mixed, report)


def _sum_dicts(dicts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return dict(sorted(total.items()))


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, keys checked, every value validated by its rule (specs.validate_options)."""
    specs.check_keys(options, "workload options")
    resolved = {**specs.DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    return specs.validate_options(resolved, "workload options")


def check_arrivals(times: list[float]) -> None:
    """Every arrival a finite time within values.MAX_SECONDS of the start: a tiny rate, an extreme time
    scale or an 'inf' in a trace must not reach the engine's clock (time.sleep overflows on them)."""
    bad = next((t for t in times if not 0 <= t <= MAX_SECONDS), None)
    if bad is not None:
        raise BsbenchError(f"an arrival time of {bad:g} s is outside 0..{MAX_SECONDS:g} s; "
                           "raise the rate or lower the time scale")


def build_workload(source: str | None = None, **options: Any) -> Workload:
    """Materialise a workload from a source and options (see specs.DEFAULTS for every option)."""
    opts = resolve_options({**options, "source": source or options.get("source")})
    source = str(opts["source"])
    arrival = make_arrival_spec(opts["arrival"], opts["rate"], opts["burstiness"], opts["cv"],
                                bool(opts["normalise_arrivals"]))
    bounds = {k: parse_bound(opts[k], "--" + k.replace("_", "-")) for k in ("ttft_slo", "tpot_slo", "e2e_slo")}
    tokenizer = load_tokenizer(opts["tokenizer"])
    num, seed = opts["num_requests"], opts["seed"]
    if arrival.normalised and source == "trace":
        raise BsbenchError("--normalise-arrivals does not apply to a trace: it replays its own arrival times")
    if source.startswith("mixed"):
        result = _sample_mixed(source, num, opts, tokenizer)
    else:
        result = _sample_source(source, num, opts, tokenizer, _rng(seed, _SAMPLE))
    samples = result.samples
    if samples and samples[0].arrival_s is not None:
        times = [float(s.arrival_s or 0.0) for s in samples]
        span = times[-1] - times[0]
        arrival_info: dict[str, Any] = {"arrival": "trace", "rate": (num - 1) / span if span > 0 else math.inf,
                                        "burstiness": None}
    else:
        times = arrival_times(arrival, num, _rng(seed, _ARRIVALS))
        arrival_info = {"arrival": arrival.process, "rate": arrival.rate,
                        "burstiness": arrival.burstiness if arrival.process == "gamma" else None}
        if arrival.normalised:
            arrival_info["normalise_arrivals"] = True
    check_arrivals(times)
    slos = draw_slos(num, _rng(seed, _SLO), bounds["ttft_slo"], bounds["tpot_slo"], bounds["e2e_slo"])
    priorities = assign_priorities(num, _rng(seed, _PRIORITY), float(opts["online_share"]))
    width = max(5, len(str(num - 1)))
    requests = [RequestSpec(id=f"r{i:0{width}d}", prompt_ids=s.prompt_ids, output_len=s.output_len, arrival_s=t,
                            slo=slo, priority=prio, source=s.source)
                for i, (s, t, slo, prio) in enumerate(zip(samples, times, slos, priorities))]
    spec = {k: v for k, v in opts.items() if v is not None and k not in ARRIVAL_KEYS}
    spec.update(arrival_info, tokenizer=tokenizer.name)  # rate is a float (inf allowed), arrival the process
    spec["slo"] = {k: (b.text() if b else None) for k, b in bounds.items()}
    spec["filter_bounds"] = make_filter(opts["filter"], opts).to_dict()
    return Workload(name=str(opts["name"] or source), requests=requests, tokenizer=tokenizer.name,
                    spec=spec, load_report=result.report)


_REPLAY_KEYS = {"num_requests", "strict"}


def load_workload(spec_or_name_or_jsonl: str | None = None, overrides: dict[str, Any] | None = None) -> Workload:
    """Resolve a spec name / .toml / .jsonl / source string (None: the default workload) and build it."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    specs.check_keys(overrides, "workload overrides")
    target = spec_or_name_or_jsonl or specs.DEFAULT_WORKLOAD
    if target.endswith(".jsonl"):
        changed = [k for k in ARRIVAL_KEYS if k in overrides]
        if changed:
            raise BsbenchError(f"a saved workload ({target}) replays its own arrival times; "
                               f"--{changed[0]} cannot change them")
        ignored = sorted(set(overrides) - _REPLAY_KEYS)
        if ignored:
            raise BsbenchError(f"a saved workload ({target}) replays its requests exactly; "
                               f"--{ignored[0].replace('_', '-')} does not apply to it (only -n and --strict do)")
        return load_jsonl(target, strict=bool(overrides.get("strict")), num_requests=overrides.get("num_requests"))
    if target.endswith(".toml") or os.path.isfile(target):
        if not target.endswith(".toml"):
            raise BsbenchError(f"cannot tell what {target} is: give a .toml spec, a .jsonl request list, "
                               "or --dataset-path FILE with a source")
        options = specs.read_spec(target)
    elif (path := specs.find_spec(target)) is not None:
        options = specs.read_spec(path)
    elif target in SOURCES or target.startswith("mixed:"):
        options = {"source": target}
    else:
        raise BsbenchError(f"unknown workload {target!r}: not a spec ({', '.join(specs.available_specs())}), "
                           f"a .toml/.jsonl file, or a source ({', '.join(SOURCES)}, mixed:SRC=SHARE,...)")
    if "cv" in overrides and "burstiness" not in overrides:
        options.pop("burstiness", None)
    if "burstiness" in overrides and "cv" not in overrides:
        options.pop("cv", None)
    return build_workload(**{**options, **overrides})


def with_ramp(workload: Workload, strategy: str, start_rps: float, end_rps: float) -> Workload:
    """The same requests with vLLM's ramp-up arrivals: the rate goes from start_rps to end_rps over the requests
    (arrivals.ramp_rates), gaps from the workload's seeded unit-rate stream (so a seed gives the same ramp).
    The spec keeps the ramp and the rate it realises."""
    process = workload.spec.get("arrival")
    if process not in ("poisson", "gamma", "constant") or "seed" not in workload.spec:
        raise BsbenchError(f"workload {workload.name!r} has fixed arrival times (trace or saved file); "
                           "--ramp-up-strategy cannot change them")
    if not math.isinf(float(workload.spec.get("rate", math.inf))):
        raise BsbenchError("--ramp-up-strategy sets the rate; give no --request-rate with it (as vLLM)")
    spec = make_arrival_spec(process, 1.0, workload.spec.get("burstiness"))
    n = len(workload.requests)
    unit = unit_arrivals(spec, n, _rng(int(workload.spec["seed"]), _ARRIVALS))
    times = ramped_arrival_times(unit, ramp_rates(strategy, start_rps, end_rps, n))
    check_arrivals(times)
    requests = [dataclasses.replace(r, arrival_s=t) for r, t in zip(workload.requests, times)]
    ramp = {"strategy": strategy, "start_rps": start_rps, "end_rps": end_rps}
    return Workload(name=workload.name, requests=requests, tokenizer=workload.tokenizer,
                    spec={**workload.spec, "rate": realised_rate(times) or math.inf, "ramp_up": ramp},
                    load_report=workload.load_report)


def with_rate(workload: Workload, rate: str | float) -> Workload:
    """The same requests at another rate: arrivals redrawn from the same seeded unit-rate stream."""
    process = workload.spec.get("arrival")
    if process not in ("poisson", "gamma", "constant") or "seed" not in workload.spec:
        raise BsbenchError(f"workload {workload.name!r} has fixed arrival times (trace or saved file); "
                           "its rate cannot be changed")
    spec = make_arrival_spec(process, rate, workload.spec.get("burstiness"),
                             normalised=bool(workload.spec.get("normalise_arrivals")))
    times = arrival_times(spec, len(workload.requests), _rng(int(workload.spec["seed"]), _ARRIVALS))
    check_arrivals(times)
    requests = [dataclasses.replace(r, arrival_s=t) for r, t in zip(workload.requests, times)]
    return Workload(name=workload.name, requests=requests, tokenizer=workload.tokenizer,
                    spec={**workload.spec, "rate": spec.rate}, load_report=workload.load_report)
