"""The run record contract: typed rows, build, atomic save, the one reader, validation; environment capture."""

from __future__ import annotations

import json
import math

import pytest

from bsbench.environment import GpuSampler, capture_environment
from bsbench.errors import BsbenchError
from bsbench.jsonio import dumps
from bsbench.metrics import build_record
from bsbench.record import (
    SCHEMA_VERSION,
    EndKind,
    EndReason,
    Outcome,
    RecordConfig,
    RequestRow,
    RunRecord,
    WorkloadInfo,
    read_record,
    read_records,
    save_record,
)
from bsbench.record.backend_part import OpenAIPart
from bsbench.record.io import record_filename

try:
    from record_factory import make_record, req
except ImportError:
    from tests.record_factory import make_record, req


def _json(rec: RunRecord) -> dict:
    return json.loads(dumps(rec.to_json()))


def test_record_shape():
    rec = make_record("continuous", 4.0)
    obj = _json(rec)
    assert obj["schema_version"] == SCHEMA_VERSION == rec.schema_version
    assert set(obj) == {"schema_version", "complete", "created", "config", "environment", "workload",
                        "summary", "scheduler", "requests", "steps", "events"}
    assert set(obj["workload"]) == {"name", "fingerprint", "num_requests", "tokenizer", "spec", "load_report"}
    assert rec.summary["completed"] == 4 and rec.summary["counts_add_up"]


def test_round_trip_equal_with_inf_rate(tmp_path):
    rec = make_record("static", math.inf, scheduler_options={"batch_timeout": math.inf})
    path = save_record(rec, tmp_path)
    assert rec.path == path and path.name.endswith("-static-inf.json")
    assert "Infinity" not in path.read_text()  # strict JSON
    back = read_record(path)
    assert back == rec
    assert back.config.rate == math.inf and back.config.scheduler_options["batch_timeout"] == math.inf


def test_end_reasons_round_trip_typed(tmp_path):
    rows = [req("a", 0.0, [0.1]), req("b", 0.0, [], status="failed", reason="oom"),
            req("c", 0.0, [], status="rejected", reason="slo-expired")]
    back = read_record(save_record(make_record(requests=rows), tmp_path))
    assert [r.reason for r in back.requests] == [None, EndReason(EndKind.OOM, "test"),
                                                EndReason(EndKind.SLO_EXPIRED, "test")]
    assert back.summary["ended_by_reason"]["oom"] == 1 and back.summary["ended_by_reason"]["slo-expired"] == 1
    assert set(back.summary["ended_by_reason"]) == {k.value for k in EndKind}


def test_a_reason_is_required_exactly_when_not_completed():
    with pytest.raises(ValueError, match="reason"):
        RequestRow("x", 1, 1, 0.0, Outcome.FAILED)
    with pytest.raises(ValueError, match="reason"):
        RequestRow("x", 1, 1, 0.0, Outcome.COMPLETED, EndReason(EndKind.OOM))


def test_a_request_id_that_reads_inf_stays_a_string(tmp_path):
    rec = make_record(requests=[req("inf", 0.0, [0.1])])
    assert read_record(save_record(rec, tmp_path)).requests[0].id == "inf"


def test_save_is_atomic_and_avoids_collisions(tmp_path):
    rec = make_record("bucket", 2.5)
    paths = [save_record(rec, tmp_path) for _ in range(3)]
    assert len({p.name for p in paths}) == 3
    assert paths[0].name == record_filename(rec)
    assert paths[1].name.endswith("-bucket-2.5-1.json")
    rows = [p.with_suffix(".rows").name for p in paths]  # each header's rows folder beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in paths] + rows)  # no temp files
    for folder in rows:
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [
            "events.parquet", "requests.parquet", "steps.parquet"]


def test_save_with_fixed_filename_overwrites(tmp_path):
    rec = make_record()
    save_record(rec, tmp_path, filename="run.json")
    save_record(rec, tmp_path, filename="run.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.rows"]
    assert len(list((tmp_path / "run.rows").iterdir())) == 3 and read_record(tmp_path / "run.json") == rec


def test_nan_becomes_null(tmp_path):
    rec = make_record()
    rec.scheduler["odd"] = float("nan")
    back = read_record(save_record(rec, tmp_path))
    assert back.scheduler["odd"] is None


def _one_line_error(path, match):
    with pytest.raises(BsbenchError, match=match) as info:
        read_record(path)
    assert "\n" not in str(info.value)


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_validation_errors_are_one_line(tmp_path):
    _one_line_error(tmp_path / "missing.json", "no such run record")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    _one_line_error(bad, "not valid JSON")
    _one_line_error(_write(tmp_path / "foreign.json", {"hello": 1}), "not a bsbench run record")
    good = _json(make_record())
    _one_line_error(_write(tmp_path / "newer.json", {**good, "schema_version": 99}), "schema version 99")
    _one_line_error(_write(tmp_path / "v1.json", {**good, "schema_version": 1}), "re-run")
    _one_line_error(_write(tmp_path / "partial.json", {k: v for k, v in good.items() if k != "steps"}), "'steps'")
    wrong = json.loads(json.dumps(good))
    wrong["summary"]["failed"] = 3
    _one_line_error(_write(tmp_path / "wrong.json", wrong), "counts do not add up")
    unknown = json.loads(json.dumps(good))
    unknown["requests"][0].update(status="failed", reason={"kind": "gremlins", "detail": ""})
    _one_line_error(_write(tmp_path / "kind.json", unknown), "request row 0: unknown end-reason kind 'gremlins'")
    typed = json.loads(json.dumps(good))
    typed["requests"][1]["arrival_s"] = "soon"
    _one_line_error(_write(tmp_path / "typed.json", typed), "request row 1: field 'arrival_s' must be")
    running = json.loads(json.dumps(good))
    running["requests"][0]["status"] = "running"
    _one_line_error(_write(tmp_path / "running.json", running), "status must be completed, failed or rejected")
    step = json.loads(json.dumps(good))
    step["steps"][0]["num_tokens"] = 1.5
    _one_line_error(_write(tmp_path / "step.json", step), "step row 0: field 'num_tokens' must be int")
    _one_line_error(tmp_path, "is a folder")


def test_incomplete_record_loads(tmp_path):
    rec = make_record(complete=False)
    assert read_record(save_record(rec, tmp_path)).complete is False


def test_read_records_expands_folders_and_skips_non_records(tmp_path):
    sub = tmp_path / "a" / "b"
    save_record(make_record("static"), sub)
    save_record(make_record("continuous"), tmp_path)
    (tmp_path / "sweep_summary.json").write_text(json.dumps({"kind": "bsbench-sweep-summary"}))
    skipped: list[str] = []
    loaded = read_records([str(tmp_path)], skipped=skipped)
    assert sorted(r.config.scheduler for r in loaded) == ["continuous", "static"]
    assert all(r.path is not None and r.path.is_file() for r in loaded)
    assert len(skipped) == 1 and "sweep_summary.json" in skipped[0] and "not a run record" in skipped[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BsbenchError, match="no run records found"):
        read_records([str(tmp_path / "empty")])
    with pytest.raises(BsbenchError, match="no such run record"):
        read_records([str(tmp_path / "nope")])


def test_config_keeps_unknown_keys():
    config = RecordConfig.from_json({"scheduler": "x", "rate": 1, "model": "m", "device": "cpu", "future": 3})
    assert config.rate == 1.0 and config.extra == {"future": 3}
    assert config.to_json()["future"] == 3


def test_build_with_no_requests_has_empty_statistics():
    rec = build_record(config=RecordConfig("x", 1.0, "m", "cpu"), environment={},
                          workload=WorkloadInfo("w", "fp", 0), requests=[], steps=[], events=[], scheduler={},
                          duration_s=0.0, complete=True)
    assert rec.summary["num_requests"] == 0 and rec.summary["mean_ttft_ms"] is None


# ----------------------------------------------------------------------------- environment


def test_capture_environment_cpu_has_no_gpu_keys():
    env = capture_environment("cpu")
    assert env["device"] == "cpu" and env["device_name"]
    assert env["python"].startswith("3.") and env["cpu_count"]
    assert "bsbench" in env["packages"]
    assert not any(k.startswith("gpu_") for k in env)
    json.dumps(env)


def test_capture_environment_cuda_never_raises():
    env = capture_environment("cuda")  # with or without a GPU / NVML
    assert env["device"] == "cuda" and env["device_name"]
    json.dumps(env)


def test_gpu_sampler_is_noop_without_gpu():
    sampler = GpuSampler("cpu").start()
    assert sampler.stop() == {}
    assert not sampler.active


def test_version_3_records_still_read_and_openai_fields_round_trip(tmp_path):
    """Schema 4 added the openai backend's fields, all optional: a version-3 file reads (its rows without them),
    and a row with them writes and reads back the same."""
    old = _json(make_record())
    old["schema_version"] = 3
    for row in old["requests"]:
        for key in ("sent_s", "late", "token_count_source"):
            row.pop(key, None)
    back = read_record(_write(tmp_path / "v3.json", old))
    assert back.schema_version == 3 and all(r.sent_s is None and not r.late for r in back.requests)
    rec = make_record()
    rec.requests[0].sent_s, rec.requests[0].late, rec.requests[0].token_count_source = 0.25, True, "usage"
    rec.config.backend = OpenAIPart("http://h:1/v1", "m", "chat")
    again = read_record(_write(tmp_path / "v5.json", _json(rec)))
    first = again.requests[0]
    assert (first.sent_s, first.late, first.token_count_source) == (0.25, True, "usage")
    assert again.config.backend == OpenAIPart("http://h:1/v1", "m", "chat")
    assert "sent_s" not in _json(make_record())["requests"][0]  # engine rows are written as before


def test_the_servers_token_counts_round_trip_and_are_absent_when_unknown(tmp_path):
    rec = make_record()
    rec.requests[0].server_prompt_tokens, rec.requests[0].server_output_tokens = 40, 3
    back = read_record(_write(tmp_path / "counts.json", _json(rec)))
    assert (back.requests[0].server_prompt_tokens, back.requests[0].server_output_tokens) == (40, 3)
    assert back.requests[1].server_prompt_tokens is None and back.requests[1].server_output_tokens is None
    row = _json(make_record())["requests"][0]
    assert "server_prompt_tokens" not in row and "server_output_tokens" not in row  # older layout unchanged
    bad = _json(rec)
    bad["requests"][0]["server_prompt_tokens"] = "forty"
    with pytest.raises(ValueError, match="server_prompt_tokens"):
        RequestRow.from_json(bad["requests"][0])
