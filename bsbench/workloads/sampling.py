"""The shared sampler for text datasets: seeded shuffle, then tokenise candidates in batches until enough are kept.

Like vLLM's sampler it never tokenises a whole 125 MB file for a 100-request
sample. Candidates are examined strictly in shuffled order and sampling stops
at the n-th kept one, so the result does not depend on the batch size, and the
first n requests of a larger sample with the same seed are the n-request sample.
All counts in the report are over the records examined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.workloads.filters import LengthFilter, middle_truncate
from bsbench.workloads.token_ids import shared_ids
from bsbench.workloads.tokenizer import TokenizerHandle

# A candidate is (prompt text, output text), or a string naming the rule that drops the record.
Candidate = tuple[str, str] | str


@dataclass(slots=True, frozen=True)
class Sample:
    """One sampled request before ids, arrivals and SLOs are assigned."""

    prompt_ids: tuple[int, ...]
    output_len: int
    source: str
    arrival_s: float | None = None  # set only by sources that carry their own arrival times (traces)


@dataclass(slots=True)
class Shaping:
    """How token counts are shaped and filtered (see filters.py for the order)."""

    length_filter: LengthFilter
    max_prompt_len: int | None = None
    max_output_len: int | None = None


@dataclass(slots=True)
class SampleSet:
    samples: list[Sample]
    report: dict[str, Any] = field(default_factory=dict)


def sample_texts(
    source: str,
    total: int,
    candidate: Callable[[int], Candidate],
    num: int,
    rng: np.random.Generator,
    tokenizer: TokenizerHandle,
    shaping: Shaping,
    oversample: bool = False,
    report: dict[str, Any] | None = None,
) -> SampleSet:
    """Draw `num` samples from `total` records (candidate(i) makes record i's texts)."""
    report = dict(report or {})
    order = rng.permutation(total) if total else np.empty(0, dtype=np.int64)
    kept: list[Sample] = []
    dropped: Counter[str] = Counter()
    truncated = capped = examined = 0
    pos = 0
    while len(kept) < num and pos < total:
        batch_size = min(4096, max(64, 2 * (num - len(kept))))
        indices = order[pos:pos + batch_size]
        pos += len(indices)
        made = [candidate(int(i)) for i in indices]
        texts = [m for m in made if not isinstance(m, str)]
        encoded = tokenizer.encode_batch([t for pair in texts for t in pair])
        enc_pos = 0
        for item in made:
            if len(kept) >= num:
                break
            examined += 1
            if isinstance(item, str):
                dropped[item] += 1
                continue
            prompt_ids, output_ids = encoded[enc_pos], encoded[enc_pos + 1]
            enc_pos += 2
            was_truncated = shaping.max_prompt_len is not None and len(prompt_ids) > shaping.max_prompt_len
            was_capped = shaping.max_output_len is not None and len(output_ids) > shaping.max_output_len
            if was_truncated:
                prompt_ids = middle_truncate(prompt_ids, cast(int, shaping.max_prompt_len))
            output_len = cast(int, shaping.max_output_len) if was_capped else len(output_ids)
            reason = shaping.length_filter.reason(len(prompt_ids), output_len)
            if reason:
                dropped[reason] += 1
                continue
            truncated += was_truncated  # counted over the kept requests
            capped += was_capped
            kept.append(Sample(shared_ids(prompt_ids), output_len, source))
    report.update({
        "source": source, "records": total, "examined": examined, "kept": len(kept),
        "dropped": dict(sorted(dropped.items())), "prompts_truncated": truncated, "outputs_capped": capped,
        "oversampled": 0,
    })
    return SampleSet(finish_sample(kept, num, rng, oversample, report, source), report)


def finish_sample(kept: list, num: int, rng: np.random.Generator, oversample: bool,
                  report: dict[str, Any], source: str) -> list:
    """Fill up to `num` by seeded resampling with replacement (only with oversample), or explain the shortfall."""
    if len(kept) >= num:
        return kept
    if not kept:
        drops = ", ".join(f"{k}={v}" for k, v in report.get("dropped", {}).items()) or "no records"
        raise BsbenchError(f"nothing left after filtering {source} ({report.get('examined', 0)} examined; "
                           f"dropped: {drops}); loosen --filter or the filter bounds")
    if not oversample:
        raise BsbenchError(f"asked for {num} requests but only {len(kept)} exist in {source} after filtering; "
                           "lower --num-requests or pass --oversample")
    extra = rng.integers(0, len(kept), size=num - len(kept))
    report["oversampled"] = int(len(extra))
    return kept + [kept[int(i)] for i in extra]
