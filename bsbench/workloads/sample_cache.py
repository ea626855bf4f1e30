"""A disk cache of tokenised samples, so that building the same workload twice tokenises once.

Key: everything the sample depends on: the dataset file's content hash, the tokenizer's
own serialisation, the source's settings (filter, caps, strictness, oversampling), the
number of requests and the sampling generator's state. A hit returns the very samples
and report the build would make, and leaves the generator in the state the build would
leave it. Folder: `$BSBENCH_WORKLOAD_CACHE`, else ~/.cache/bsbench/workloads;
`BSBENCH_WORKLOAD_CACHE=off` disables it. A folder that cannot be written, or a file that
cannot be read back, costs a tokenisation, never the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from bsbench.workloads.sampling import Sample, SampleSet
from bsbench.workloads.token_ids import shared_ids
from bsbench.workloads.tokenizer import TokenizerHandle

FORMAT = 1
ENV = "BSBENCH_WORKLOAD_CACHE"


def cache_dir() -> str | None:
    """The cache folder, or None when the cache is off."""
    value = os.environ.get(ENV, "")
    if value.lower() in ("off", "0", "no", "false"):
        return None
    return os.path.expanduser(value) if value else os.path.join(os.path.expanduser("~"), ".cache", "bsbench",
                                                                  "workloads")


def file_digest(path: str) -> str:
    """SHA-256 of the file; read once per (path, size, modification time) in a process (a sweep builds one
    workload per rate and seed from the same file)."""
    stat = os.stat(path)
    return _digest(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cached_samples(parts: dict[str, Any], dataset_path: str, tokenizer: TokenizerHandle, rng: np.random.Generator,
                   build: Callable[[], SampleSet]) -> SampleSet:
    """`build()` through the cache; `parts` are the source's settings (JSON-able, repr-able values)."""
    folder = cache_dir()
    fingerprint = tokenizer.fingerprint() if folder else None
    if folder is None or fingerprint is None or not os.path.isfile(dataset_path):
        return build()  # a missing file raises its own user error inside build()
    key_text = json.dumps({"format": FORMAT, "file": file_digest(dataset_path), "tokenizer": fingerprint,
                           "parts": {k: repr(v) for k, v in sorted(parts.items())},
                           "rng": rng.bit_generator.state}, sort_keys=True, default=repr)
    path = os.path.join(folder, hashlib.sha256(key_text.encode()).hexdigest()[:32] + ".json")
    hit = _read(path, key_text)
    if hit is not None:
        samples, report, state = hit
        rng.bit_generator.state = state
        return SampleSet(samples, report)
    result = build()
    _write(path, key_text, result, rng.bit_generator.state)
    return result


def _read(path: str, key_text: str) -> tuple[list[Sample], dict[str, Any], dict[str, Any]] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data["key"] != key_text:
            return None
        samples = [Sample(shared_ids(ids), int(out), str(source), arrival)
                   for ids, out, source, arrival in data["samples"]]
        return samples, data["report"], data["rng"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, foreign or corrupt: tokenise again (and overwrite)


def _write(path: str, key_text: str, result: SampleSet, state: Mapping[str, Any]) -> None:
    data = {"key": key_text, "rng": state, "report": result.report,
            "samples": [[list(s.prompt_ids), s.output_len, s.source, s.arrival_s] for s in result.samples]}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass  # a read-only or full cache folder costs a tokenisation next time, not this run
