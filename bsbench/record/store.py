"""Where a record's rows live on disk: a sidecar folder of Parquet files beside the record's JSON header.

    results/20261207-120000-bucket-8.json          the header: config, environment, workload, summary, ...
    results/20261207-120000-bucket-8.rows/         the rows, column by column (Parquet, zstd)
        requests.parquet  steps.parquet  events.parquet

The header names its folder and the row counts (`"rows": {"format": "parquet", "folder": ..., "requests": n,
...}`). Saving writes the folder first and the header last, atomically, so a header on disk always has its
rows; a folder without a header (a crash between the two) is ignored by every reader. Reading opens only the
Parquet footers until a report asks for rows, and then only the columns it asks for (`RowStore.table`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bsbench.errors import BsbenchError
from bsbench.jsonio import write_bytes_atomic
from bsbench.record.arrow_rows import check_schema

ROW_KINDS = ("requests", "steps", "events")
ROWS_FORMAT = "parquet"
ROWS_SUFFIX = ".rows"
ROWS_PER_GROUP = 1024


def encode_rows(rows: Sequence[Any], to_table: Callable[[Sequence[Any]], pa.Table], schema: pa.Schema,
                chunk: int = ROWS_PER_GROUP) -> bytes:
    """`rows` as the bytes of one Parquet file (zstd; dictionary-encoded, so the token times that steps share
    are stored once), converted and written `chunk` rows at a time: memory stays that of one chunk."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, compression="zstd", dictionary_pagesize_limit=1 << 24) as writer:
        for start in range(0, max(len(rows), 1), chunk):
            writer.write_table(to_table(rows[start:start + chunk]))
    data: bytes = sink.getvalue().to_pybytes()
    return data


def write_rows_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Each kind's Parquet bytes into `folder` (which exists), each file atomically."""
    for kind in ROW_KINDS:
        write_bytes_atomic(files[kind], folder / f"{kind}.parquet")


@dataclass(slots=True)
class RowStore:
    """The rows folder of one record, and how many rows of each kind its header says it holds."""

    folder: Path
    counts: dict[str, int]

    @classmethod
    def of_header(cls, rows: Any, header_path: Path) -> RowStore:
        """The store a header's `rows` object names; ValueError when that object is malformed."""
        if not isinstance(rows, dict) or rows.get("format") != ROWS_FORMAT or not isinstance(rows.get("folder"), str):
            raise ValueError(f"'rows' must name a {ROWS_FORMAT} folder, got {rows!r:.80}")
        name = rows["folder"]
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise ValueError(f"rows.folder must be a folder beside the header, got {name!r:.80}")
        counts = {}
        for kind in ROW_KINDS:
            count = rows.get(kind)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"rows.{kind} must be a row count")
            counts[kind] = count
        return cls(header_path.parent / name, counts)

    def path(self, kind: str) -> Path:
        return self.folder / f"{kind}.parquet"

    def check(self) -> None:
        """Every file is there, readable, of its kind's schema and row count (footers only); else BsbenchError."""
        for kind in ROW_KINDS:
            path = self.path(kind)
            try:
                meta = pq.read_schema(path), pq.read_metadata(path)
            except FileNotFoundError:
                raise BsbenchError(f"{path} is missing: a record's header needs its rows folder beside it "
                                   f"(copy or move both)") from None
            except (OSError, pa.ArrowException) as exc:
                raise BsbenchError(f"{path} is not a readable Parquet file: {exc}") from None
            try:
                check_schema(meta[0].empty_table(), kind)
            except ValueError as exc:
                raise BsbenchError(f"{path}: {exc}") from None
            if meta[1].num_rows != self.counts[kind]:
                raise BsbenchError(f"{path} holds {meta[1].num_rows} rows, its header says {self.counts[kind]}")

    def table(self, kind: str, columns: list[str] | None = None) -> pa.Table:
        """The `kind` rows (only `columns`, when given) as an Arrow table; a damaged file is a BsbenchError."""
        try:
            return pq.read_table(self.path(kind), columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise BsbenchError(f"cannot read {self.path(kind)}: {exc}") from None
