"""Saving and reading run records: the one reader every report, sweep and gate uses."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.jsonio import decode_inf, open_temp_beside, to_jsonable, write_text_atomic
from bsbench.record.schema import RunRecord
from bsbench.safe_json import load_file
from bsbench.units import format_rate


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+]+", "_", text).strip("_") or "run"


def record_filename(record: RunRecord) -> str:
    """'<YYYYmmdd-HHMMSS>-<scheduler>-<rate>.json' from the record's creation time and config."""
    try:
        created = datetime.fromisoformat(record.created)
    except ValueError:
        created = datetime.now(UTC)
    rate = format_rate(record.config.rate)
    return f"{created:%Y%m%d-%H%M%S}-{_slug(record.config.scheduler)}-{_slug(rate)}.json"


ROW_LISTS = ("requests", "steps", "events")


def record_text(record: RunRecord) -> str:
    """The file text `save_record` writes for `record`: strict JSON whose header (config, environment, summary,
    ...) is indented for people, and whose row lists are written compact, one list a line. An indented encoder
    is Python's own and took over half of a simulated run's time to write its rows; the compact one is C's."""
    obj = to_jsonable(record.to_json())
    rows = {key: obj.pop(key) for key in ROW_LISTS}
    text = json.dumps(obj, indent=1, allow_nan=False)
    listed = "".join(f',\n "{key}": {json.dumps(items, allow_nan=False, separators=(",", ":"))}'
                     for key, items in rows.items())
    return text[: -len("\n}")] + listed + "\n}"


def save_record(record: RunRecord, out_dir: str | Path, filename: str | None = None, *, text: str | None = None
                ) -> Path:
    """Write the record atomically into `out_dir`, set `record.path` and return it.

    `text`: the record's `record_text`, made beforehand (a sweep's worker renders it, so that the driver only
    writes it: rendering costs a third of a simulated run).

    Without `filename` the name comes from record_filename(); an existing file
    is never overwritten (a '-1', '-2', ... suffix is added; the final name is
    claimed with an atomic hard link). With `filename` that exact file is
    (re)written, which is what a resumable sweep wants.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BsbenchError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    if filename is not None:
        record.path = write_text_atomic(record_text(record), out / filename)  # no caller passes text here
        return record.path
    base = record_filename(record)[: -len(".json")]
    fd, tmp = open_temp_beside(out, base)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text if text is not None else record_text(record))
            fh.flush()
            os.fsync(fh.fileno())
        for n in range(10_000):
            target = out / (f"{base}.json" if n == 0 else f"{base}-{n}.json")
            if target.exists():
                continue
            try:
                os.link(tmp, target)  # atomic, and fails if the name was taken meanwhile
            except FileExistsError:
                continue
            except OSError:  # file system without hard links
                os.replace(tmp, target)
            record.path = target
            return target
        raise BsbenchError(f"too many records named {base}*.json in {out}")
    finally:
        Path(tmp).unlink(missing_ok=True)


def is_record(obj: Any) -> bool:
    """Whether parsed JSON looks like a run record (of any schema version)."""
    return isinstance(obj, dict) and "schema_version" in obj and "requests" in obj and "summary" in obj


def parse_record(obj: Any, where: str) -> RunRecord:
    """A RunRecord from parsed JSON; anything malformed is one BsbenchError naming `where`."""
    if isinstance(obj, dict):  # only these sections hold numbers that may be infinite (a rate of inf)
        obj = {**obj, "config": decode_inf(obj.get("config")), "workload": decode_inf(obj.get("workload"))}
    try:
        return RunRecord.from_json(obj)
    except ValueError as exc:
        raise BsbenchError(f"{where}: {exc}") from None


def read_record(path: str | Path) -> RunRecord:
    """Read and check one run record; a missing, malformed or foreign file raises BsbenchError (one line)."""
    path = Path(path)
    record = parse_record(load_file(path, "run record"), str(path))
    record.path = path
    return record


def read_records(paths: Sequence[str | Path], skipped: list[str] | None = None,
                 damaged: list[tuple[Path, str]] | None = None) -> list[RunRecord]:
    """Records from files and folders (folders searched recursively for *.json), in path order.

    A file named explicitly must be a valid record. Inside folders, JSON files
    that are not run records (sweep summaries, gate baselines, other tools'
    files) are skipped, with a note for each appended to `skipped`. A file that
    claims to be a run record but is malformed raises BsbenchError. With
    `damaged` (a sweep's own folder, where every *.json is one of its records),
    a folder file that is not valid JSON (a truncated write) or is a malformed
    record is appended there as (path, reason) instead of skipped or raised.
    """
    if not paths:
        raise BsbenchError("no run records given")
    out: list[RunRecord] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = 0
            for file in sorted(p for p in path.rglob("*.json") if not p.name.startswith(".")):
                try:
                    obj = load_file(file, "run record")
                except BsbenchError as exc:
                    if damaged is not None:
                        damaged.append((file, str(exc)))
                    elif skipped is not None:
                        skipped.append(f"skipped {file}: {exc}")
                    continue
                if not is_record(obj):
                    if skipped is not None:
                        kind = obj.get("kind") if isinstance(obj, dict) else None
                        skipped.append(f"skipped {file}: not a run record" + (f" ({kind})" if kind else ""))
                    continue
                try:
                    record = parse_record(obj, str(file))
                except BsbenchError as exc:
                    if damaged is None:
                        raise
                    damaged.append((file, str(exc)))
                    continue
                record.path = file
                out.append(record)
                found += 1
            if not found and damaged is None:
                raise BsbenchError(f"no run records found in folder {path}")
        elif path.exists():
            out.append(read_record(path))
        else:
            raise BsbenchError(f"no such run record or folder: {path}")
    return out
