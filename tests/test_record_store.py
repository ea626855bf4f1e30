"""The columnar record (schema 7): rows through Arrow tables and back, the header + rows folder on disk, rows read
on first use and only the columns asked for, damaged folders, old records, and `bsbench export --format json`."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bsbench.errors import BsbenchError
from bsbench.record import (
    EndKind,
    EndReason,
    EventRow,
    LatencyBreakdown,
    Outcome,
    RequestRow,
    StepRow,
    read_record,
    read_records,
    save_record,
)
from bsbench.record.arrow_rows import event_rows, events_table, request_rows, requests_table, step_rows, steps_table
from bsbench.record.io import export_text
from bsbench.record.lazy_rows import LazyRows

try:
    from record_factory import make_record
except ImportError:  # pragma: no cover
    from tests.record_factory import make_record

V2_RECORD = Path(__file__).parent / "data" / "record_v2.json"


def random_request(rng: random.Random, i: int) -> RequestRow:
    """A request row with every optional field either set or None, by the coin."""
    def maybe(value):
        return value if rng.random() < 0.5 else None

    status = rng.choice(list(Outcome))
    times = sorted(rng.uniform(0, 50) for _ in range(rng.randrange(0, 6)))
    transfer = maybe(rng.uniform(0, 1))
    return RequestRow(
        id=f"r{i}", prompt_len=rng.randrange(1, 900), output_len=rng.randrange(1, 300),
        arrival_s=rng.uniform(0, 10), status=status,
        reason=None if status is Outcome.COMPLETED else EndReason(rng.choice(list(EndKind)), rng.choice(["", "why"])),
        source=rng.choice(["", "sharegpt"]), priority=rng.choice(["", "online", "offline"]),
        num_output=len(times), first_scheduled_s=maybe(rng.uniform(0, 10)),
        first_token_s=times[0] if times else None, finish_s=maybe(rng.uniform(10, 60)), token_times=times,
        preemptions=rng.randrange(3), pad_tokens=rng.randrange(5), truncated=rng.random() < 0.3,
        slo_ttft_ms=maybe(500.0), slo_tpot_ms=maybe(50.0), slo_e2e_ms=maybe(9000.0),
        notes=rng.choice([{}, {"predicted_len": 17, "bucket": "b2"}]),
        output_ids=maybe([rng.randrange(32000) for _ in times]),
        breakdown=maybe(LatencyBreakdown(rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1), 0.0, transfer)),
        transfer_start_s=maybe(1.5), transfer_end_s=maybe(2.5), sent_s=maybe(rng.uniform(0, 10)),
        late=rng.random() < 0.2, token_count_source=rng.choice([None, "usage", "counted"]),
        server_prompt_tokens=maybe(rng.randrange(1000)), server_output_tokens=maybe(rng.randrange(1000)),
    )


def test_rows_round_trip_through_arrow_tables_exactly():
    rng = random.Random(7)
    requests = [random_request(rng, i) for i in range(300)]
    assert request_rows(requests_table(requests)) == requests
    steps = [StepRow(rng.uniform(0, 9), 0.02, 0.018, rng.choice(["packed", "padded"]), 3, 40, rng.randrange(4), 7,
                     rng.random(), rng.choice([None, 0.017]), rng.choice([None, 0.019]),
                     rng.choice([None, "prefill0", "decode0"])) for _ in range(200)]
    assert step_rows(steps_table(steps)) == steps
    events = [EventRow(rng.choice(["oom", "preemption", "bucket-flush"]), rng.uniform(0, 9),
                       [f"r{j}" for j in range(rng.randrange(3))], rng.choice([{}, {"blocks": 4, "why": "kv"}]))
              for _ in range(50)]
    assert event_rows(events_table(events)) == events
    assert request_rows(requests_table([])) == [] and step_rows(steps_table([])) == []


def test_a_saved_record_is_a_json_header_and_a_rows_folder(tmp_path):
    record = make_record("bucket", 8.0)
    path = save_record(record, tmp_path)
    header = json.loads(path.read_text())
    assert header["schema_version"] == 7 and not {"requests", "steps", "events"} & set(header)
    folder = path.with_suffix(".rows")
    assert header["rows"] == {"format": "parquet", "folder": folder.name, "requests": 4, "steps": 10, "events": 0}
    assert pq.read_table(folder / "requests.parquet").num_rows == 4  # any Parquet reader opens the rows
    again = read_record(path)
    assert again == record


def test_rows_are_read_on_first_use_and_columns_on_demand(tmp_path):
    back = read_record(save_record(make_record(), tmp_path))
    assert isinstance(back.requests, LazyRows) and not back.requests.loaded
    assert len(back.requests) == 4 and back.summary["completed"] == 4  # the header alone
    assert not back.requests.loaded
    assert back.requests[0].id == "r0" and back.requests.loaded
    assert back.store is not None
    table = back.store.table("requests", ["arrival_s", "token_times"])
    assert table.column_names == ["arrival_s", "token_times"]
    assert table.column("token_times").to_pylist() == [r.token_times for r in back.requests]


def test_a_header_without_its_rows_or_with_damaged_rows_is_one_clear_error(tmp_path):
    path = save_record(make_record(), tmp_path)
    folder = path.with_suffix(".rows")
    moved = tmp_path / "elsewhere"
    shutil.move(folder, moved)
    with pytest.raises(BsbenchError, match="requests.parquet is missing: a record's header needs its rows folder"):
        read_record(path)
    shutil.move(moved, folder)
    steps = folder / "steps.parquet"
    steps.write_bytes(steps.read_bytes()[:40])  # a cut-off write
    with pytest.raises(BsbenchError, match="steps.parquet is not a readable Parquet file"):
        read_record(path)
    damaged: list = []
    assert read_records([tmp_path], skipped=[], damaged=damaged) == []
    assert damaged and damaged[0][0] == path


def test_a_row_count_that_disagrees_with_the_header_is_refused(tmp_path):
    path = save_record(make_record(), tmp_path)
    header = json.loads(path.read_text())
    header["rows"]["steps"] = 11
    path.write_text(json.dumps(header))
    with pytest.raises(BsbenchError, match="steps.parquet holds 10 rows, its header says 11"):
        read_record(path)
    header["rows"]["folder"] = "../outside"
    path.write_text(json.dumps(header))
    with pytest.raises(BsbenchError, match="rows.folder must be a folder beside the header"):
        read_record(path)


def test_a_bad_value_in_a_rows_file_names_the_row(tmp_path):
    record = make_record()
    path = save_record(record, tmp_path)
    table = requests_table(record.requests)
    statuses = table.column("status").to_pylist()
    statuses[2] = "exploded"
    pq.write_table(table.set_column(table.schema.get_field_index("status"), "status",
                                    [statuses]), path.with_suffix(".rows") / "requests.parquet")
    back = read_record(path)  # the header and footers are fine
    with pytest.raises(BsbenchError, match="request row 2: status must be completed, failed or rejected"):
        list(back.requests)


def test_export_json_round_trips_and_old_records_still_read(tmp_path, bsbench):
    record = make_record("uellm", 2.0)
    path = save_record(record, tmp_path / "runs")
    result = bsbench("export", "--format", "json", path, "-o", tmp_path / "whole.json")
    assert result.code == 0, result.err
    whole = json.loads((tmp_path / "whole.json").read_text())
    assert len(whole["requests"]) == 4 and len(whole["steps"]) == 10 and "rows" not in whole
    exported = read_record(tmp_path / "whole.json")
    assert exported == dataclasses.replace(read_record(path), path=exported.path)
    assert record.path == path and read_record(path) == record
    assert (tmp_path / "whole.json").read_text() == export_text(record)
    old = read_record(V2_RECORD)  # schema 2, rows inline: read, and exported as what it is
    assert old.schema_version == 2 and json.loads(export_text(old))["schema_version"] == 2
    assert read_records([tmp_path], skipped=[])  # a folder of both forms: the header and the exported file
    assert len(read_records([tmp_path], skipped=[])) == 2


def test_rows_of_many_records_are_not_all_held(tmp_path, monkeypatch):
    import bsbench.record.lazy_rows as lazy_rows

    monkeypatch.setattr(lazy_rows, "HELD_WEIGHT", 30)  # each record's 4 request rows weigh 4 + 16 token times
    paths = [save_record(make_record(seed=i), tmp_path) for i in range(4)]
    records = [read_record(p) for p in paths]
    firsts = [r.requests[0].id for r in records]  # walk the folder one record at a time
    assert firsts == ["r0"] * 4
    assert [r.requests.loaded for r in records] == [False, False, False, True]  # only the latest is held
    assert records[0].requests[3].token_times == make_record(seed=0).requests[3].token_times  # read again


def test_request_samples_come_from_the_stored_columns_without_building_rows(tmp_path):
    from bsbench.report.cell_stats import request_samples

    record = make_record(requests=[random_request(random.Random(5), i) for i in range(60)])
    stored = read_record(save_record(record, tmp_path))
    metrics = ("p90_ttft_ms", "median_tpot_ms", "mean_e2el_ms", "p99_queue_ms", "slo_attainment",
               "request_throughput", "output_throughput", "total_token_throughput", "goodput")
    for metric in metrics:
        got, want = request_samples(stored, metric), request_samples(record, metric)
        assert got is not None and want is not None and got.values == want.values, metric
    assert not stored.requests.loaded
