"""Run record: build, atomic save, load round trip, validation; and environment capture."""

from __future__ import annotations

import json
import math

import pytest

from bsbench.environment import GpuSampler, capture_environment
from bsbench.errors import BsbenchError
from bsbench.results import (
    SCHEMA_VERSION, build_record, load_record, load_records, record_filename, save_record,
)

try:
    from record_factory import make_record
except ImportError:
    from tests.record_factory import make_record


def test_record_shape():
    rec = make_record("continuous", 4.0)
    assert rec["schema_version"] == SCHEMA_VERSION
    assert set(rec) == {"schema_version", "complete", "created", "config", "environment", "workload",
                        "summary", "scheduler", "requests", "steps", "events"}
    assert set(rec["workload"]) >= {"name", "fingerprint", "num_requests", "tokenizer", "spec", "load_report"}
    assert rec["summary"]["completed"] == 4 and rec["summary"]["counts_add_up"]


def test_round_trip_equal_with_inf_rate(tmp_path):
    rec = make_record("static", math.inf, scheduler_options={"batch_timeout": math.inf})
    path = save_record(rec, tmp_path)
    assert path.name.endswith("-static-inf.json")
    json.loads(path.read_text())  # strict JSON: no Infinity token
    assert "Infinity" not in path.read_text()
    back = load_record(path)
    assert back == rec
    assert back["config"]["rate"] == math.inf


def test_save_is_atomic_and_avoids_collisions(tmp_path):
    rec = make_record("bucket", 2.5)
    paths = [save_record(rec, tmp_path) for _ in range(3)]
    assert len({p.name for p in paths}) == 3
    assert paths[0].name == record_filename(rec)
    assert paths[1].name.endswith("-bucket-2.5-1.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_save_with_fixed_filename_overwrites(tmp_path):
    rec = make_record()
    save_record(rec, tmp_path, filename="run.json")
    save_record(rec, tmp_path, filename="run.json")
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_nan_becomes_null(tmp_path):
    rec = make_record()
    rec["scheduler"]["odd"] = float("nan")
    back = load_record(save_record(rec, tmp_path))
    assert back["scheduler"]["odd"] is None


def _one_line_error(path, match):
    with pytest.raises(BsbenchError, match=match) as info:
        load_record(path)
    assert "\n" not in str(info.value)


def test_validation_errors_are_one_line(tmp_path):
    _one_line_error(tmp_path / "missing.json", "no such run record")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    _one_line_error(bad, "not valid JSON")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"hello": 1}))
    _one_line_error(foreign, "not a bsbench run record")
    rec = make_record()
    newer = dict(rec, schema_version=99)
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    _one_line_error(tmp_path / "newer.json", "schema version 99")
    partial = {k: v for k, v in rec.items() if k not in ("steps", "events")}
    (tmp_path / "partial.json").write_text(json.dumps(partial))
    _one_line_error(tmp_path / "partial.json", "missing required keys: steps, events")
    wrong = json.loads(json.dumps(make_record(), default=str))
    wrong["summary"]["failed"] = 3
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    _one_line_error(tmp_path / "wrong.json", "counts do not add up")
    _one_line_error(tmp_path, "is a folder")


def test_incomplete_record_loads(tmp_path):
    rec = make_record(complete=False)
    rec["requests"][0]["status"] = "running"
    assert load_record(save_record(rec, tmp_path))["complete"] is False


def test_load_records_expands_folders_and_skips_non_records(tmp_path):
    sub = tmp_path / "a" / "b"
    save_record(make_record("static"), sub)
    save_record(make_record("continuous"), tmp_path)
    (tmp_path / "sweep_summary.json").write_text(json.dumps({"kind": "bsbench-sweep-summary"}))
    skipped: list[str] = []
    loaded = load_records([str(tmp_path)], skipped=skipped)
    assert sorted(r["config"]["scheduler"] for _, r in loaded) == ["continuous", "static"]
    assert len(skipped) == 1 and "sweep_summary.json" in skipped[0] and "not a run record" in skipped[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BsbenchError, match="no run records found"):
        load_records([str(tmp_path / "empty")])
    with pytest.raises(BsbenchError, match="no such run record"):
        load_records([str(tmp_path / "nope")])


def test_build_record_fills_workload_defaults():
    rec = build_record(config={"scheduler": "x", "rate": 1.0}, environment={}, workload={"name": "w"},
                       requests=[], steps=[], events=[], scheduler={}, duration_s=0.0, complete=True)
    assert rec["workload"]["num_requests"] == 0 and rec["workload"]["fingerprint"] is None
    assert rec["summary"]["mean_ttft_ms"] is None


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
