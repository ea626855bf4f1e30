"""Synthetic source: prompt/output lengths from fixed, uniform (vLLM's range ratio), normal or zipf laws.

Prompt ids are real token ids of the tokenizer (uniform over its non-special
vocabulary), so a model sees valid ids and the KV cost is exact.
"""

from __future__ import annotations

from math import fsum
from typing import Any

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.values import MAX_TOKENS
from bsbench.workloads.sampling import Sample, SampleSet
from bsbench.workloads.tokenizer import TokenizerHandle

DISTRIBUTIONS = ("fixed", "uniform", "normal", "zipf")
MAX_SYNTHETIC_TOKENS = 200_000_000  # prompt tokens of one workload: about 8 GB of Python ints


def draw_lengths(rng: np.random.Generator, n: int, mean: int, dist: str, range_ratio: float,
                 std_ratio: float, zipf_a: float, cap: int | None) -> np.ndarray:
    """n lengths >= 1 around `mean`: fixed; uniform in [mean(1-r), mean(1+r)]; normal(mean, mean*std_ratio);
    zipf: mean * Zipf(a) / E (heavy tail; E is Zipf's mean when a > 2), capped at `cap` if given and always
    at values.MAX_TOKENS."""
    if mean < 1:
        raise BsbenchError(f"synthetic lengths must be >= 1, got {mean}")
    if dist == "fixed":
        lengths = np.full(n, mean, dtype=np.int64)
    elif dist == "uniform":
        if not 0 <= range_ratio < 1:
            raise BsbenchError(f"range ratio must be in [0, 1), got {range_ratio}")
        lengths = rng.integers(int(mean * (1 - range_ratio)), int(mean * (1 + range_ratio)) + 1, size=n)
    elif dist == "normal":
        lengths = np.rint(rng.normal(mean, mean * std_ratio, size=n)).astype(np.int64)
    elif dist == "zipf":
        if zipf_a <= 1:
            raise BsbenchError(f"zipf exponent must be > 1, got {zipf_a}")
        raw = rng.zipf(zipf_a, size=n).astype(np.float64)
        scale = mean / (_zipf_mean(zipf_a) if zipf_a > 2 else 1.0)
        lengths = np.rint(np.minimum(raw * scale, MAX_TOKENS)).astype(np.int64)  # the tail stays allocatable
    else:
        raise BsbenchError(f"unknown length distribution {dist!r} (choose from {', '.join(DISTRIBUTIONS)})")
    lengths = np.maximum(lengths, 1)
    return np.minimum(lengths, min(cap or MAX_TOKENS, MAX_TOKENS))


def _zipf_mean(a: float) -> float:

    return fsum(k ** (1 - a) for k in range(1, 200000)) / fsum(k ** (-a) for k in range(1, 200000))


def random_prompt_ids(rng: np.random.Generator, tokenizer: TokenizerHandle, length: int) -> tuple[int, ...]:
    special = tokenizer.special_ids()
    low = max(special) + 1 if special and max(special) < 256 else 0
    ids = rng.integers(low, tokenizer.vocab_size, size=length)
    if special and low == 0:
        ids = np.where(np.isin(ids, list(special)), (ids + 1) % tokenizer.vocab_size, ids)
    return tuple(int(i) for i in ids)


def load_synthetic(
    num: int, rng: np.random.Generator, tokenizer: TokenizerHandle, options: dict[str, Any]
) -> SampleSet:
    # `options` are resolved (build.resolve_options): every key present and checked, so a 0 is never
    # silently replaced by a default here
    dist = str(options["length_dist"])
    common: dict[str, Any] = dict(dist=dist, range_ratio=float(options["range_ratio"]),
                                  std_ratio=float(options["std_ratio"]), zipf_a=float(options["zipf_a"]))
    if num * int(options["input_len"]) > MAX_SYNTHETIC_TOKENS:
        raise BsbenchError(f"{num} synthetic prompts of {options['input_len']} tokens are over the "
                           f"{MAX_SYNTHETIC_TOKENS:,}-token limit of one workload")
    prompts = draw_lengths(rng, num, int(options["input_len"]), cap=options.get("max_prompt_len"), **common)
    outputs = draw_lengths(rng, num, int(options["output_len"]), cap=options.get("max_output_len"), **common)
    samples = [Sample(random_prompt_ids(rng, tokenizer, int(p)), int(o), "synthetic") for p, o in zip(prompts, outputs)]
    report = {"source": "synthetic", "records": num, "examined": num, "kept": num, "dropped": {}, "malformed": 0,
              "length_dist": dist}
    return SampleSet(samples, report)
