"""Paths the user gives: output places checked before any work, and local paths told apart from hub ids.

- `check_output_dir` / `check_output_file`: called by every command that
  writes (run, sweep, capacity, gate --update, compare --html/--plots,
  workload show --save) before it loads anything, so a read-only folder or a
  folder that lies under a file is a one-line error at once, not a lost
  record after the whole run. Nothing is created here.
- `looks_local`: a model, tokenizer or dataset name that can only be a path on
  this machine (it exists, is absolute, starts with ~ . or /, has more than
  one slash, ends with a slash, or its first folder exists here, as in
  `models/x` next to a `models/` folder). Such a name is never sent to the
  hub, so a typo is "not found" at once instead of 30 s of retries.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bsbench.errors import BsbenchError

_ANY_WRITE_BIT = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def _deepest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _writable(folder: Path) -> bool:
    """Whether files can be created in `folder`. A folder with no write bit at all, or on a read-only
    file system, counts as read-only even for root (who could write, but was told not to)."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK) and bool(mode & _ANY_WRITE_BIT)


def check_output_dir(path: str | Path, flag: str) -> Path:
    """`path` is, or can be created as, a writable folder; otherwise a one-line BsbenchError naming `flag`."""
    folder = Path(path).expanduser()
    existing = _deepest_existing(folder.absolute())
    if not existing.is_dir():
        where = "is a file" if existing == folder.absolute() else f"lies under {existing}, which is a file"
        raise BsbenchError(f"{flag} {path}: {where}, not a folder")
    if not _writable(existing):
        where = "" if existing == folder.absolute() else f" (its folder {existing})"
        raise BsbenchError(f"{flag} {path}: not writable{where}; choose another folder")
    return folder


def check_output_file(path: str | Path, flag: str) -> Path:
    """`path` can be written as a file: not a folder, not read-only, in a folder check_output_dir accepts."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise BsbenchError(f"{flag} {path}: is a folder, not a file")
    if file.exists() and not (os.access(file, os.W_OK) and file.stat().st_mode & _ANY_WRITE_BIT):
        raise BsbenchError(f"{flag} {path}: the file is read-only")
    check_output_dir(file.absolute().parent, flag)
    return file


def looks_local(name: str) -> bool:
    """True when `name` can only mean a path on this machine (see the module docstring); False for a
    possible hub id such as `org/model`."""
    expanded = os.path.expanduser(name)
    if os.path.exists(expanded) or os.path.isabs(expanded) or name.startswith(("~", ".")):
        return True
    if name.endswith("/") or name.count("/") > 1:
        return True
    first, slash, _rest = name.partition("/")
    return bool(slash) and os.path.isdir(first)
