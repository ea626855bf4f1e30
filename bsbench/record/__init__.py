"""The run record: the one contract between a run and every report.

A run writes one record (`RunRecord`, schema.py): typed request, step and
event rows (rows.py), end reasons as a closed set of kinds plus free text
(reasons.py), the summary (metrics.summarize of the rows) and the schema
version. Metrics, compare, sweep, gate, capacity and the plots read records
only through `read_record` / `read_records` (io.py) and the typed objects.
"""

from bsbench.record.io import read_record, read_records, save_record
from bsbench.record.reasons import EndKind, EndReason
from bsbench.record.rows import EventKind, EventRow, LatencyBreakdown, Outcome, RequestRow, StepRow
from bsbench.record.schema import SCHEMA_VERSION, RecordConfig, RunRecord, WorkloadInfo

__all__ = [
    "SCHEMA_VERSION", "EndKind", "EndReason", "EventKind", "EventRow", "LatencyBreakdown", "Outcome", "RecordConfig",
    "RequestRow", "RunRecord", "StepRow", "WorkloadInfo", "read_record", "read_records", "save_record",
]
