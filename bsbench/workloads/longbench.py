"""LongBench v1 source: JSONL file(s) with fields input, context, answers, length, dataset, language, all_classes, _id.

Local files or folders are read line by line with the safe JSON reader
(`records.read_records`: malformed lines and nesting bombs are counted and
skipped, `strict` makes them fatal), never through `datasets`/pyarrow, whose
JSON parser can crash the whole process on a hostile line. A name that is not
a local path (e.g. `THUDM/LongBench` or `THUDM/LongBench:qasper`) goes to the
hub through `datasets.load_dataset` for users who are online.
Prompt = context and question in one generic template (LongBench's per-task
templates differ only in wording); long prompts are truncated from the middle
by `max_prompt_len`; output length = tokens of the first answer.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np

from bsbench.errors import BsbenchError
from bsbench.hub import offline_reason
from bsbench.paths import looks_local
from bsbench.workloads.records import read_records
from bsbench.workloads.sampling import Candidate, SampleSet, Shaping, sample_texts
from bsbench.workloads.tokenizer import TokenizerHandle

PROMPT_TEMPLATE = "{context}\n\nNow, answer the question based on the text above.\n\nQuestion: {input}\nAnswer:"


def longbench_pair(record: Any) -> Candidate:
    if not isinstance(record, dict):
        return "bad_record"
    answers = record.get("answers")
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not answers or not isinstance(answers[0], str):
        return "no_answer"
    context, question = record.get("context") or "", record.get("input") or ""
    if not isinstance(context, str) or not isinstance(question, str):
        return "bad_record"
    return PROMPT_TEMPLATE.format(context=context, input=question), answers[0]


def _local_files(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.jsonl"), recursive=True)
                       + glob.glob(os.path.join(path, "**", "*.json"), recursive=True))
        if not files:
            raise BsbenchError(f"no .jsonl or .json files in LongBench folder {path}")
        return files
    if os.path.isfile(path):
        return [path]
    raise BsbenchError(f"LongBench dataset not found: {path}")


def _read_local(files: list[str], strict: bool) -> tuple[list[Any], dict[str, Any]]:
    records: list[Any] = []
    malformed = 0
    for path in files:
        data = read_records(path, strict=strict)
        records.extend(data.records)
        malformed += data.malformed
    return records, {"loader": "line-reader", "files": len(files), "malformed": malformed}


def _read_hub(name: str) -> tuple[list[Any], dict[str, Any]]:
    repo, _, subset = name.partition(":")
    offline = offline_reason()
    if offline is not None and not offline.endswith(" is set"):  # HF_HUB_OFFLINE set: datasets reads its cache
        raise BsbenchError(f"cannot load LongBench {name!r}: the hub is off ({offline}); pass --dataset-path "
                           "FILE_OR_FOLDER, or set HF_HUB_OFFLINE=1 to read a cached copy")
    try:
        # lazy: datasets is heavy
        import datasets

        table = datasets.load_dataset(repo, subset or "narrativeqa", split="test")
    except Exception as exc:
        raise BsbenchError(f"cannot load LongBench {name!r} from the hub (offline? pass --dataset-path FILE): "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    return table.to_list(), {"loader": "datasets-hub", "name": name, "malformed": 0}


def load_longbench(num: int, rng: np.random.Generator, tokenizer: TokenizerHandle, shaping: Shaping,
                   dataset_path: str | None, strict: bool = False, oversample: bool = False) -> SampleSet:
    if not dataset_path:
        raise BsbenchError("the longbench source needs --dataset-path FILE_OR_FOLDER (LongBench v1 JSONL) "
                           "or a hub id such as THUDM/LongBench:qasper")
    expanded = os.path.expanduser(dataset_path)
    if not looks_local(dataset_path) and dataset_path.count("/") == 1:
        records, report = _read_hub(dataset_path)
    else:
        records, report = _read_local(_local_files(expanded), strict)
    return sample_texts("longbench", len(records), lambda i: longbench_pair(records[i]), num, rng, tokenizer,
                        shaping, oversample, report)
