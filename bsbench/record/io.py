"""Saving and reading run records: the one writer and the one reader every run, report, sweep and gate uses."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.jsonio import decode_inf, to_jsonable, write_text_atomic
from bsbench.record.arrow_rows import ROWS_OF, SCHEMAS, TABLE_OF
from bsbench.record.lazy_rows import LazyRows
from bsbench.record.schema import RunRecord, check_version
from bsbench.record.store import ROW_KINDS, ROWS_FORMAT, ROWS_SUFFIX, RowStore, encode_rows, write_rows_folder
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


@dataclass(slots=True)
class EncodedRecord:
    """A record made ready to write: its header (JSON-safe, without the `rows` object, which names the folder
    and is added when the record is saved) and each kind's Parquet bytes. A sweep's worker encodes its record,
    so that the driver only writes files: encoding is the costly part."""

    header: dict[str, Any]
    files: dict[str, bytes]
    counts: dict[str, int]


def encode_record(record: RunRecord) -> EncodedRecord:
    """The header and Parquet files `save_record` writes for `record`."""
    files, counts = {}, {}
    for kind in ROW_KINDS:
        rows = getattr(record, kind)
        files[kind] = encode_rows(rows, TABLE_OF[kind], SCHEMAS[kind])
        counts[kind] = len(rows)
    return EncodedRecord(to_jsonable(record.header_json()), files, counts)


def header_text(header: dict[str, Any]) -> str:
    """A header as the JSON text people read: indented."""
    return json.dumps(header, indent=1, allow_nan=False) + "\n"


def export_text(record: RunRecord) -> str:
    """The whole record as one strict JSON text, rows inline (`bsbench export --format json`): the header indented
    for people, each row list compact on one line (an indented encoder is Python's own and several times slower)."""
    text = json.dumps(to_jsonable(record.header_json()), indent=1, allow_nan=False)
    listed = ""
    for key in ROW_KINDS:
        rows = to_jsonable([r.to_json() for r in getattr(record, key)])
        listed += f',\n "{key}": {json.dumps(rows, allow_nan=False, separators=(",", ":"))}'
    return text[: -len("\n}")] + listed + "\n}\n"


def _claim(out: Path, base: str) -> Path:
    """A new rows folder `<base>[-n].rows` in `out`, whose header name is free too; mkdir is the atomic claim."""
    for n in range(10_000):
        stem = base if n == 0 else f"{base}-{n}"
        if (out / f"{stem}.json").exists():
            continue
        try:
            (out / f"{stem}{ROWS_SUFFIX}").mkdir()
        except FileExistsError:
            continue
        return out / f"{stem}{ROWS_SUFFIX}"
    raise BsbenchError(f"too many records named {base}*.json in {out}")


def save_record(record: RunRecord, out_dir: str | Path, filename: str | None = None, *,
                encoded: EncodedRecord | None = None) -> Path:
    """Write the record into `out_dir` (store.py: its rows folder first, then its JSON header, each file
    atomically), set `record.path` and return the header's path.

    `encoded`: the record's `encode_record`, made beforehand (a sweep's worker encodes it).

    Without `filename` the name comes from record_filename(); an existing record is never overwritten (a '-1',
    '-2', ... suffix is added). With `filename` that exact record is (re)written, which is what a resumable
    sweep wants.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BsbenchError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    encoded = encoded if encoded is not None else encode_record(record)
    if filename is not None:
        folder = out / f"{filename.removesuffix('.json')}{ROWS_SUFFIX}"
        folder.mkdir(exist_ok=True)
    else:
        folder = _claim(out, record_filename(record).removesuffix(".json"))
    write_rows_folder(folder, encoded.files)
    header = {**encoded.header, "rows": {"format": ROWS_FORMAT, "folder": folder.name, **encoded.counts}}
    record.path = write_text_atomic(header_text(header), out / f"{folder.name.removesuffix(ROWS_SUFFIX)}.json")
    return record.path


def is_record(obj: Any) -> bool:
    """Whether parsed JSON looks like a run record (of any schema version, rows inline or in a folder)."""
    return isinstance(obj, dict) and "schema_version" in obj and "summary" in obj and ("requests" in obj
                                                                                        or "rows" in obj)


def _lazy(store: RowStore, kind: str) -> LazyRows[Any]:
    def load() -> list[Any]:
        try:
            return ROWS_OF[kind](store.table(kind))
        except ValueError as exc:
            raise BsbenchError(f"{store.path(kind)}: {exc}") from None

    if kind == "requests":
        return LazyRows(store.counts[kind], load, weigh=lambda rows: sum(1 + len(r.token_times) for r in rows))
    return LazyRows(store.counts[kind], load)


def parse_record(obj: Any, path: Path) -> RunRecord:
    """A RunRecord from the parsed JSON of the file at `path`: its rows inline, or (version 7) in the rows folder
    its header names, checked (store.RowStore.check) and read on first use. Anything malformed is one
    BsbenchError naming the file."""
    if isinstance(obj, dict):  # only these sections hold numbers that may be infinite (a rate of inf)
        obj = {**obj, "config": decode_inf(obj.get("config")), "workload": decode_inf(obj.get("workload"))}
    try:
        if isinstance(obj, dict) and "rows" in obj and "requests" not in obj:
            check_version(obj)
            store = RowStore.of_header(obj["rows"], path)
            store.check()
            record = RunRecord.from_header(obj, {kind: _lazy(store, kind) for kind in ROW_KINDS})
            record.store = store
        else:
            record = RunRecord.from_json(obj)
    except ValueError as exc:
        raise BsbenchError(f"{path}: {exc}") from None
    record.path = path
    return record


def read_record(path: str | Path) -> RunRecord:
    """Read and check one run record; a missing, malformed or foreign file raises BsbenchError (one line)."""
    path = Path(path)
    return parse_record(load_file(path, "run record"), path)


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
                    record = parse_record(obj, file)
                except BsbenchError as exc:
                    if damaged is None:
                        raise
                    damaged.append((file, str(exc)))
                    continue
                out.append(record)
                found += 1
            if not found and damaged is None:
                raise BsbenchError(f"no run records found in folder {path}")
        elif path.exists():
            out.append(read_record(path))
        else:
            raise BsbenchError(f"no such run record or folder: {path}")
    return out
