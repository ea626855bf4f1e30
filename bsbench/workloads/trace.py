"""Trace source: a CSV of arrival time, prompt tokens and output tokens (Vidur / Splitwise style columns).

Accepted column names (case-insensitive): arrival = arrived_at | arrival_time |
arrival_s | timestamp; prompt = num_prefill_tokens | prompt_tokens | prompt_len |
input_tokens | contexttokens; output = num_decode_tokens | output_tokens |
output_len | generatedtokens. Timestamps are seconds or date-times. Arrivals
are shifted so the first row is t = 0, then multiplied by `time_scale`
(0.5 replays twice as fast). Rows are taken in time order (first N rows);
prompt ids are random real token ids of the requested length (seeded).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.values import MAX_TOKENS
from bsbench.workloads.sampling import Sample, SampleSet, finish_sample
from bsbench.workloads.synthetic import random_prompt_ids
from bsbench.workloads.tokenizer import TokenizerHandle

if TYPE_CHECKING:  # pandas is imported when a trace is read: it costs a third of a second of every command's start
    import pandas as pd

COLUMNS = {
    "arrival": ("arrived_at", "arrival_time", "arrival_s", "timestamp"),
    "prompt": ("num_prefill_tokens", "prompt_tokens", "prompt_len", "input_tokens", "contexttokens"),
    "output": ("num_decode_tokens", "output_tokens", "output_len", "generatedtokens"),
}


def _column(frame: pd.DataFrame, role: str, path: str) -> pd.Series:
    lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in COLUMNS[role]:
        if name in lower:
            return frame[lower[name]]
    raise BsbenchError(f"trace {path} has no {role} column (expected one of {', '.join(COLUMNS[role])})")


def _seconds(values: pd.Series) -> pd.Series:
    # lazy: pandas is heavy
    import pandas as pd

    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() >= max(1, len(values) // 2):
        return numeric
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    return (stamps - stamps.min()).dt.total_seconds()  # NaT stays NaN (counted as malformed)


def load_trace(num: int, rng: np.random.Generator, tokenizer: TokenizerHandle, dataset_path: str | None,
               time_scale: float = 1.0, strict: bool = False, oversample: bool = False,
               max_prompt_len: int | None = None, max_output_len: int | None = None) -> SampleSet:
    if not dataset_path:
        raise BsbenchError("the trace source needs --dataset-path FILE.csv")
    if not os.path.isfile(dataset_path):
        raise BsbenchError(f"trace file not found: {dataset_path}")
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise BsbenchError(f"time scale must be a finite number > 0, got {time_scale}")
    # lazy: pandas is heavy
    import pandas as pd

    try:
        frame = pd.read_csv(dataset_path, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BsbenchError(f"cannot read trace {dataset_path}: {str(exc).strip().splitlines()[0]}") from None
    arrival = _seconds(_column(frame, "arrival", dataset_path))
    prompt = pd.to_numeric(_column(frame, "prompt", dataset_path), errors="coerce")
    output = pd.to_numeric(_column(frame, "output", dataset_path), errors="coerce")
    # NaN, +-inf and lengths no model has are malformed rows, never arrivals the engine's clock must reach
    good = (np.isfinite(arrival) & prompt.between(1, MAX_TOKENS) & output.between(1, MAX_TOKENS)).astype(bool)
    malformed = int((~good).sum())
    if strict and malformed:
        raise BsbenchError(f"{malformed} malformed row(s) in trace {dataset_path}; drop --strict to skip them")
    table = pd.DataFrame({"t": arrival[good], "p": prompt[good].astype(int), "o": output[good].astype(int)})
    table = table.sort_values("t", kind="stable")
    if len(table):
        table["t"] = (table["t"] - table["t"].iloc[0]) * time_scale
    rows = table.head(num)
    p_cap = rows["p"].clip(upper=max_prompt_len) if max_prompt_len else rows["p"]
    o_cap = rows["o"].clip(upper=max_output_len) if max_output_len else rows["o"]
    samples = [Sample(random_prompt_ids(rng, tokenizer, int(p)), int(o), "trace", float(t))
               for t, p, o in zip(rows["t"], p_cap, o_cap)]
    report = {"source": "trace", "records": len(frame), "examined": len(rows), "kept": len(samples),
              "dropped": {}, "malformed": malformed, "time_scale": time_scale,
              "prompts_truncated": int((rows["p"] != p_cap).sum()), "outputs_capped": int((rows["o"] != o_cap).sum())}
    if len(samples) < num and not oversample:
        finish_sample(samples, num, rng, False, report, "trace")
    if len(samples) < num:
        # Oversampling a trace repeats it end to end, shifted after its last arrival, so time stays monotone.
        span = (samples[-1].arrival_s or 0.0) + (1.0 * time_scale if len(samples) == 1 else
                                                  (samples[-1].arrival_s or 0.0) / (len(samples) - 1))
        base = list(samples)
        while len(samples) < num:
            rep = len(samples) // len(base)
            src = base[len(samples) % len(base)]
            samples.append(Sample(src.prompt_ids, src.output_len, "trace", (src.arrival_s or 0.0) + rep * span))
        report["oversampled"] = num - len(base)
    return SampleSet(samples, report)
