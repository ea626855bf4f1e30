"""Strict JSON files: +-inf encoded as strings, atomic writes, one-line read errors.

JSON has no infinity: floats that are +-inf are written as the strings
"inf"/"-inf" and NaN as null; `decode_inf` turns the strings back into floats.
Every JSON file bsbench writes goes through `write_json_atomic` (a temp file in
the same folder, then os.replace), so a crash never leaves half a file. Reading
is `safe_json.load_file`'s job.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """A deep copy safe for strict JSON: +-inf -> 'inf'/'-inf', NaN -> None, tuples -> lists."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_jsonable(value.item())
    return value


def decode_inf(value: Any) -> Any:
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    if isinstance(value, dict):
        return {k: decode_inf(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_inf(v) for v in value]
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_temp_beside(folder: Path, name: str) -> tuple[int, str]:
    """A temp file next to the target, with ordinary file permissions (mkstemp's are 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except (AttributeError, OSError):
        pass
    return fd, tmp


def dumps(obj: Any, indent: int | None = 1) -> str:
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def write_json_atomic(obj: Any, path: Path, indent: int | None = 1) -> Path:
    """Write strict JSON to `path` atomically: a temp file in the same folder, then os.replace."""
    return write_text_atomic(dumps(obj, indent=indent), path)


def write_text_atomic(text: str, path: Path) -> Path:
    """Write `text` to `path` atomically (a temp file in the same folder, fsync, then os.replace); the path."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def write_bytes_atomic(data: bytes, path: Path) -> Path:
    """Write `data` to `path` atomically (a temp file in the same folder, fsync, then os.replace); the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = open_temp_beside(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
