"""The run record: schema, building, atomic save, validated load.

A run record is one JSON file per run, the only thing reports read. Keys:

    schema_version  int, SCHEMA_VERSION
    complete        bool, False when the run was interrupted (Ctrl-C)
    created         ISO-8601 UTC time the record was built
    config          how the run was configured (scheduler, rate, seed, model, device, ...)
    environment     versions, platform, device name, GPU memory/utilisation when present
    workload        {name, fingerprint, num_requests, tokenizer, spec, load_report}
    summary         metrics.summarize() of the rows below
    scheduler       what the policy reports about itself (name, options, counters)
    requests        per-request rows (timestamps in seconds from the run start)
    steps           per-step rows
    events          OOM / preemption / rejection / truncation / policy events

JSON has no infinity: floats that are +-inf are written as the strings
"inf"/"-inf" and NaN as null; `config` values are decoded back to floats on
load (so `config["rate"]` is float("inf") again for a rate-inf run).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.metrics import COMPLETED, DEFAULT_PERCENTILES, FAILED, REJECTED, summarize
from bsbench.safe_json import load_file
from bsbench.units import format_rate

SCHEMA_VERSION = 1
REQUIRED_KEYS = (
    "schema_version", "complete", "created", "config", "environment", "workload",
    "summary", "scheduler", "requests", "steps", "events",
)
WORKLOAD_KEYS = ("name", "fingerprint", "num_requests", "tokenizer", "spec", "load_report")


# ----------------------------------------------------------------------------- build


def build_record(
    *,
    config: dict[str, Any],
    environment: dict[str, Any],
    workload: dict[str, Any],
    requests: list[dict[str, Any]],
    steps: list[dict[str, Any]],
    events: list[dict[str, Any]],
    scheduler: dict[str, Any],
    duration_s: float,
    complete: bool,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> dict[str, Any]:
    """Assemble a run record and compute its summary with metrics.summarize()."""
    workload = dict(workload)
    for key in WORKLOAD_KEYS:
        workload.setdefault(key, None)
    if workload["num_requests"] is None:
        workload["num_requests"] = len(requests)
    summary = summarize(
        requests, steps, events, duration_s,
        num_kv_blocks=config.get("num_kv_blocks"), percentiles=percentiles,
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "complete": bool(complete),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": dict(config),
        "environment": dict(environment),
        "workload": workload,
        "summary": summary,
        "scheduler": dict(scheduler),
        "requests": list(requests),
        "steps": list(steps),
        "events": list(events),
    }


# ----------------------------------------------------------------------------- names


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+]+", "_", text).strip("_") or "run"


def record_filename(record: dict[str, Any]) -> str:
    """'<YYYYmmdd-HHMMSS>-<scheduler>-<rate>.json' from the record's creation time and config."""
    config = record.get("config") or {}
    try:
        created = datetime.fromisoformat(str(record.get("created")))
    except ValueError:
        created = datetime.now(timezone.utc)
    rate = config.get("rate")
    try:
        rate_text = format_rate(float(rate)) if rate is not None else "na"
    except (TypeError, ValueError):
        rate_text = str(rate)
    return f"{created:%Y%m%d-%H%M%S}-{_slug(str(config.get('scheduler', 'run')))}-{_slug(rate_text)}.json"


# ----------------------------------------------------------------------------- JSON encoding


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


def _open_temp(folder: Path, name: str) -> tuple[int, str]:
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(obj, indent=indent)
    fd, tmp = _open_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------- save


def save_record(record: dict[str, Any], out_dir: str | Path, filename: str | None = None) -> Path:
    """Write the record atomically into `out_dir` and return its path.

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
        return write_json_atomic(record, out / filename)
    base = record_filename(record)[: -len(".json")]
    fd, tmp = _open_temp(out, base)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps(record))
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
            return target
        raise BsbenchError(f"too many records named {base}*.json in {out}")
    finally:
        Path(tmp).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- load and validate


def is_record(obj: Any) -> bool:
    """Whether a parsed JSON object looks like a run record (of any schema version)."""
    return isinstance(obj, dict) and "schema_version" in obj and "requests" in obj and "summary" in obj


def read_json(path: Path) -> Any:
    """A JSON file bsbench reads (record, baseline, summary): one-line errors, nesting bombs refused (safe_json)."""
    return load_file(path, "run record")


def validate_record(record: Any, where: str = "run record") -> dict[str, Any]:
    """Check schema version, required keys and that the request counts add up; return the record."""
    if not isinstance(record, dict) or "schema_version" not in record:
        raise BsbenchError(f"{where} is not a bsbench run record (no schema_version)")
    if record["schema_version"] != SCHEMA_VERSION:
        raise BsbenchError(
            f"{where} has run-record schema version {record['schema_version']!r}; "
            f"this bsbench reads version {SCHEMA_VERSION}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise BsbenchError(f"{where} is missing required keys: {', '.join(missing)}")
    for key, kind in (("config", dict), ("environment", dict), ("workload", dict), ("summary", dict),
                      ("scheduler", dict), ("requests", list), ("steps", list), ("events", list)):
        if not isinstance(record[key], kind):
            raise BsbenchError(f"{where}: '{key}' should be a {kind.__name__}, got {type(record[key]).__name__}")
    summary = record["summary"]
    for key in ("num_requests", "completed", "failed", "rejected"):
        if not isinstance(summary.get(key), int):
            raise BsbenchError(f"{where}: summary.{key} is missing or not an integer")
    if record["complete"]:
        total = summary["completed"] + summary["failed"] + summary["rejected"]
        if total != summary["num_requests"]:
            raise BsbenchError(
                f"{where}: counts do not add up: completed {summary['completed']} + failed {summary['failed']}"
                f" + rejected {summary['rejected']} != {summary['num_requests']} requests"
            )
        statuses = [r.get("status") for r in record["requests"] if isinstance(r, dict)]
        if len(record["requests"]) != summary["num_requests"] or any(
            s not in (COMPLETED, FAILED, REJECTED) for s in statuses
        ):
            raise BsbenchError(
                f"{where}: {len(record['requests'])} request rows do not match summary.num_requests "
                f"{summary['num_requests']} or have a non-final status"
            )
    return record


def load_record(path: str | Path) -> dict[str, Any]:
    """Read and validate one run record; a missing, malformed or foreign file raises BsbenchError (one line)."""
    path = Path(path)
    record = validate_record(read_json(path), where=str(path))
    record["config"] = decode_inf(record["config"])
    return record


def load_records(paths: Sequence[str | Path], skipped: list[str] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Load records from files and folders (folders searched recursively for *.json).

    A file named explicitly must be a valid record. Inside folders, JSON files
    that are not run records (sweep summaries, gate baselines, other tools'
    files) are skipped, and a note for each is appended to `skipped`. Records
    that claim to be run records but fail validation raise BsbenchError.
    """
    out: list[tuple[Path, dict[str, Any]]] = []
    if not paths:
        raise BsbenchError("no run records given")
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = 0
            for file in sorted(p for p in path.rglob("*.json") if not p.name.startswith(".")):
                try:
                    obj = read_json(file)
                except BsbenchError as exc:
                    if skipped is not None:
                        skipped.append(f"skipped {file}: {exc}")
                    continue
                if not is_record(obj):
                    if skipped is not None:
                        kind = obj.get("kind") if isinstance(obj, dict) else None
                        skipped.append(f"skipped {file}: not a run record" + (f" ({kind})" if kind else ""))
                    continue
                record = validate_record(obj, where=str(file))
                record["config"] = decode_inf(record["config"])
                out.append((file, record))
                found += 1
            if not found:
                raise BsbenchError(f"no run records found in folder {path}")
        elif path.exists():
            out.append((path, load_record(path)))
        else:
            raise BsbenchError(f"no such run record or folder: {path}")
    return out
