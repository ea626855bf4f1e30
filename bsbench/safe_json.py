"""The one way bsbench reads text and JSON from files it did not write itself (records, replays, datasets, specs).

- `read_text`: UTF-8 with or without a byte-order mark (an editor's BOM must not
  turn a ShareGPT file into "no records"); a missing file, a folder, an
  unreadable or non-UTF-8 file is a one-line BsbenchError.
- `loads` / `raw_decode`: json, but a nesting bomb (`[[[[...`), a number with
  thousands of digits or nesting deeper than MAX_DEPTH raise
  json.JSONDecodeError like any other malformed JSON, never RecursionError:
  callers already turn JSONDecodeError into a counted malformed line or a
  one-line error. Depth is bounded so that code walking the parsed value
  recursively (record decoding, report building) cannot overflow either.
- `load_file`: read_text + loads, with the failure as one line naming the file.

Nothing here goes through pyarrow or any C extension that can crash the process
on hostile input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError

MAX_DEPTH = 64  # bsbench's own files nest < 10 levels; ShareGPT and LongBench records < 5
_DECODER = json.JSONDecoder()


def read_text(path: str | Path, what: str = "file") -> str:
    """The file's text (a leading UTF-8 BOM dropped); problems are one BsbenchError line naming `what` and path."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BsbenchError(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise BsbenchError(f"{path} is a folder, not a {what}") from None
    except OSError as exc:
        raise BsbenchError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BsbenchError(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _check_depth(value: Any, doc: str, pos: int) -> None:
    """Iteratively (no recursion) refuse values nested deeper than MAX_DEPTH."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", doc, pos)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def raw_decode(text: str, pos: int = 0) -> tuple[Any, int]:
    """json.JSONDecoder.raw_decode with nesting bombs and giant numbers as JSONDecodeError."""
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", text, pos) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # e.g. an integer over Python's 4300-digit conversion limit
        raise json.JSONDecodeError(str(exc).splitlines()[0][:80], text, pos) from None
    _check_depth(value, text, pos)
    return value, end


def loads(text: str) -> Any:
    """json.loads (whole text, surrounding whitespace allowed) with the guarantees of `raw_decode`."""
    start = len(text) - len(text.lstrip())
    value, end = raw_decode(text, start)
    if text[end:].strip():
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def load_file(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; any problem (missing, unreadable, malformed, a nesting bomb) is one BsbenchError line."""
    text = read_text(path, what)
    try:
        return loads(text)
    except json.JSONDecodeError as exc:
        raise BsbenchError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
