"""The run record: one typed object per run, its schema version, and its JSON form.

    schema_version  int, SCHEMA_VERSION; versions in READABLE_VERSIONS are read too (another is refused, by name).
                    Version 3 added each request's latency breakdown; in a version-2 record it is None.
                    Version 4 added, all optional: disaggregated runs (config.instances, config.link and
                    config.decode_gpu, the step row's instance, the request row's transfer start/end, the
                    breakdown's transfer part; absent from single-instance rows) and the openai backend
                    (config base_url / served_model / endpoint, request rows' sent_s / late /
                    token_count_source, its end-reason kinds in reasons.py).
                    Version 5 moved every backend-specific config field (backend, clock, gpu, cost model,
                    calibration, instances, link, decode_gpu, base_url, served_model, endpoint, weights) into
                    `config.backend`, one typed part per backend kind (backend_part.py).
                    Version 6 added the measurement window (record/window.py) to the summary: `window`, the
                    `steady_*` figures over it, `overloaded` and its evidence `overload`; and config.window, how
                    the window was chosen. Rows are unchanged; older records read, without those keys.
                    Version 7 keeps the rows column by column in a Parquet folder beside the header (store.py):
                    the header's `rows` names it, instead of the inline `requests`/`steps`/`events` lists.
                    The inline form (`bsbench export --format json`) is still read, at every version.
    complete        False when the run was stopped early (Ctrl-C, SIGTERM)
    created         ISO-8601 UTC time the record was built
    config          RecordConfig: how the run was configured
    environment     versions, platform, device name, GPU memory/utilisation when present
    workload        WorkloadInfo: name, fingerprint (hash of the request list), load report
    summary         metrics.summarize() of the rows below
    scheduler       what the policy reports about itself (name, options, counters)
    requests        RequestRow per submitted request
    steps           StepRow per forward pass
    events          EventRow per OOM / preemption / rejection / truncation / policy event
                    (a record read from a version-7 header holds these as LazyRows: read on first use)

Invariant of a complete record: every request row has a final status and
completed + failed + rejected == num_requests == len(requests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from bsbench.errors import BsbenchError
from bsbench.record.arrow_rows import TABLE_OF
from bsbench.record.backend_part import FLAT_KEYS, BackendPart, RealPart, part_from_flat, part_from_json
from bsbench.record.columns import TABLE_COLUMNS, RequestColumns
from bsbench.record.lazy_rows import LazyRows
from bsbench.record.rows import EventRow, RequestRow, StepRow
from bsbench.record.store import ROW_KINDS, RowStore

SCHEMA_VERSION = 7
READABLE_VERSIONS = (2, 3, 4, 5, 6, 7)  # 3, 4, 6 added optional parts; 5 moved the backend's fields; 7 the rows


@dataclass(slots=True)
class RecordConfig:
    """The run's configuration as reports read it: a common part, and `backend`, the typed part of the backend
    that ran it (record/backend_part.py). Keys this bsbench does not know are kept in `extra`."""

    scheduler: str
    rate: float
    model: str
    device: str
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    arrival: str | None = None
    seed: int | None = None
    num_requests: int = 0
    workload: str = ""
    dtype: str | None = None
    kv_memory_bytes: int | None = None
    block_size: int | None = None
    threads: int | None = None
    num_kv_blocks: int | None = None
    kv_capacity_tokens: int | None = None
    tokenizer: str | None = None
    record_tokens: bool = False
    percentiles: list[float] = field(default_factory=list)
    repeat: int | None = None  # repeat index i of a --repeats run: its workload seed is base_seed + i
    base_seed: int | None = None  # the seed of repeat 0; runs differing only by repeat share it (one compare cell)
    window: dict[str, Any] | None = None  # WindowSpec.to_json of the run (schema 6); None: the default window
    backend: BackendPart = field(default_factory=RealPart)
    extra: dict[str, Any] = field(default_factory=dict)

    def backend_id(self) -> str:
        """What produced the times, as one comparable string (BackendPart.backend_id)."""
        return self.backend.backend_id()

    @property
    def simulated(self) -> bool:
        """True when the times come from a cost model (sim backend, or the real runner on a virtual clock)."""
        return self.backend.simulated

    def timing_label(self) -> str:
        """'' for measured runs; else what produced the times (BackendPart.timing_label)."""
        return self.backend.timing_label()

    def times_text(self) -> str:
        """What the times are, in words, for every run (timing_label says it for simulated runs only)."""
        return self.backend.times_text()

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("extra", "backend")}
        if self.window is None:  # the default window: the config reads as before schema 6
            del out["window"]
        out["backend"] = self.backend.to_json()
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> RecordConfig:
        """A config of any readable version: the backend's part from its object (version 5) or from the flat keys
        of versions 2-4."""
        if not isinstance(obj, dict):
            raise ValueError("'config' must be an object")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "backend"}
        known = {k: v for k, v in obj.items() if k in names}
        for key in ("scheduler", "rate", "model", "device"):
            if key not in known:
                raise ValueError(f"config is missing {key!r}")
        if isinstance(known["rate"], bool) or not isinstance(known["rate"], (int, float)):
            raise ValueError("config.rate must be a number")
        for key in ("scheduler", "model", "device"):
            if not isinstance(known[key], str):
                raise ValueError(f"config.{key} must be a string")
        for key in ("repeat", "base_seed"):
            if known.get(key) is not None and (isinstance(known[key], bool) or not isinstance(known[key], int)):
                raise ValueError(f"config.{key} must be an integer or null")
        if known.get("window") is not None and not isinstance(known["window"], dict):
            raise ValueError("config.window must be an object or null")
        if not isinstance(known.get("scheduler_options", {}), dict):
            raise ValueError("config.scheduler_options must be an object")
        known["rate"] = float(known["rate"])
        if isinstance(obj.get("backend"), dict):
            part, taken = part_from_json(obj["backend"]), {"backend"}
        else:
            part, taken = part_from_flat(obj), set(FLAT_KEYS)
        return cls(**known, backend=part, extra={k: v for k, v in obj.items() if k not in names | taken})


@dataclass(slots=True)
class WorkloadInfo:
    """Which request list the run replayed; equal fingerprints mean identical requests and arrivals."""

    name: str
    fingerprint: str
    num_requests: int
    tokenizer: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    load_report: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> WorkloadInfo:
        if not isinstance(obj, dict):
            raise ValueError("'workload' must be an object")
        if not isinstance(obj.get("name"), str) or not isinstance(obj.get("fingerprint"), str):
            raise ValueError("workload.name and workload.fingerprint must be strings")
        if isinstance(obj.get("num_requests"), bool) or not isinstance(obj.get("num_requests"), int):
            raise ValueError("workload.num_requests must be an integer")
        spec, report = obj.get("spec") or {}, obj.get("load_report") or {}
        if not isinstance(spec, dict) or not isinstance(report, dict):
            raise ValueError("workload.spec and workload.load_report must be objects")
        tokenizer = obj.get("tokenizer")
        return cls(obj["name"], obj["fingerprint"], obj["num_requests"],
                   tokenizer if isinstance(tokenizer, str) else None, spec, report)


@dataclass(slots=True)
class RunRecord:
    """One run. Build it with `bsbench.metrics.build_record` (which computes its summary); read it with
    `bsbench.record.read_record(s)`."""

    config: RecordConfig
    environment: dict[str, Any]
    workload: WorkloadInfo
    summary: dict[str, Any]
    scheduler: dict[str, Any]
    requests: Sequence[RequestRow]
    steps: Sequence[StepRow]
    events: Sequence[EventRow]
    complete: bool = True
    created: str = ""
    schema_version: int = SCHEMA_VERSION
    path: Path | None = None  # where it was saved or read from; not part of the JSON
    store: RowStore | None = field(default=None, compare=False, repr=False)  # its rows on disk (version 7, read)
    _columns: RequestColumns | None = field(default=None, init=False, compare=False, repr=False)
    _ids: list[str] | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def label(self) -> str:
        """'<scheduler> @ <rate>' for messages."""
        return f"{self.config.scheduler} @ {self.config.rate:g}"

    def _rows_unread(self, kind: str = "requests") -> bool:
        rows = getattr(self, kind)
        return self.store is not None and isinstance(rows, LazyRows) and not rows.loaded

    def rows_table(self, kind: str, columns: Sequence[str]) -> pa.Table:
        """`columns` of the `kind` rows ('requests', 'steps', 'events'; record/arrow_rows.py names them) as an
        Arrow table: read from the stored Parquet columns while those rows are unread, else made from the rows."""
        if self._rows_unread(kind):
            assert self.store is not None
            return self.store.table(kind, list(columns))
        return TABLE_OF[kind](getattr(self, kind)).select(list(columns))

    def request_columns(self) -> RequestColumns:
        """The request rows as numpy columns (record/columns.py), made once: from the stored Parquet columns while
        the rows are unread (no row object is built: a folder of records costs its columns, not its rows), else
        from the rows."""
        if self._columns is None:
            if self._rows_unread():
                assert self.store is not None
                try:
                    self._columns = RequestColumns.from_table(self.store.table("requests", list(TABLE_COLUMNS)))
                except ValueError as exc:
                    raise BsbenchError(f"{self.store.path('requests')}: {exc}") from None
            else:
                self._columns = RequestColumns.from_rows(self.requests)
        return self._columns

    def request_ids(self) -> list[str]:
        """Every request's id, in row order (the stored column while the rows are unread)."""
        if self._ids is None:
            if self._rows_unread():
                assert self.store is not None
                self._ids = [str(i) for i in self.store.table("requests", ["id"]).column("id").to_pylist()]
            else:
                self._ids = [r.id for r in self.requests]
        return self._ids

    def header_json(self) -> dict[str, Any]:
        """Everything but the rows (a record read from an older file keeps its version: never relabelled)."""
        return {
            "schema_version": self.schema_version, "complete": self.complete, "created": self.created,
            "config": self.config.to_json(), "environment": self.environment, "workload": self.workload.to_json(),
            "summary": self.summary, "scheduler": self.scheduler,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole record as one JSON object, rows inline (`bsbench export --format json`)."""
        return {**self.header_json(), "requests": [r.to_json() for r in self.requests],
                "steps": [s.to_json() for s in self.steps], "events": [e.to_json() for e in self.events]}

    @classmethod
    def from_header(cls, obj: Any, rows: Mapping[str, Sequence[Any]]) -> RunRecord:
        """A record from its header JSON and its rows (lists, or LazyRows of a version-7 store); ValueError says
        what is wrong."""
        version = check_version(obj)
        for key in ("environment", "summary", "scheduler"):
            if not isinstance(obj.get(key), dict):
                raise ValueError(f"'{key}' is missing or not an object")
        if not isinstance(obj.get("complete", True), bool):
            raise ValueError("'complete' must be true or false")
        record = cls(
            config=RecordConfig.from_json(obj.get("config")),
            environment=obj["environment"],
            workload=WorkloadInfo.from_json(obj.get("workload")),
            summary=obj["summary"],
            scheduler=obj["scheduler"],
            requests=rows["requests"],
            steps=rows["steps"],
            events=rows["events"],
            complete=obj.get("complete", True),
            created=str(obj.get("created", "")),
            schema_version=version,
        )
        record.check()
        return record

    @classmethod
    def from_json(cls, obj: Any) -> RunRecord:
        """Parse and check a record's JSON with its rows inline (any readable version; 'inf' strings already
        decoded); ValueError says what is wrong."""
        check_version(obj)
        for key in ROW_KINDS:
            if not isinstance(obj.get(key), list):
                raise ValueError(f"'{key}' is missing or not a list")
        rows = {key: [_row(kind, r, key[:-1], i) for i, r in enumerate(obj[key])]
                for key, kind in zip(ROW_KINDS, (RequestRow, StepRow, EventRow), strict=True)}
        return cls.from_header(obj, rows)

    def check(self) -> None:
        """The counts add up: every request row is final, and the summary's counts match the rows."""
        summary = self.summary
        for key in ("num_requests", "completed", "failed", "rejected"):
            if isinstance(summary.get(key), bool) or not isinstance(summary.get(key), int):
                raise ValueError(f"summary.{key} is missing or not an integer")
        total = summary["completed"] + summary["failed"] + summary["rejected"]
        if total != summary["num_requests"] or len(self.requests) != summary["num_requests"]:
            raise ValueError(
                f"counts do not add up: completed {summary['completed']} + failed {summary['failed']} + rejected "
                f"{summary['rejected']} vs {summary['num_requests']} requests and {len(self.requests)} request rows"
            )


def check_version(obj: Any) -> int:
    """The schema version of a record's JSON object; ValueError when it has none or one this bsbench cannot read."""
    if not isinstance(obj, dict) or "schema_version" not in obj:
        raise ValueError("not a bsbench run record (no schema_version)")
    version = obj["schema_version"]
    if type(version) is not int or version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise ValueError(f"run-record schema version {version!r:.20}; this bsbench reads versions "
                         f"{readable} (re-run to get a current record)")
    return version


def _row(kind: Any, obj: Any, what: str, index: int) -> Any:
    try:
        return kind.from_json(obj)
    except ValueError as exc:
        raise ValueError(f"{what} row {index}: {exc}") from None
