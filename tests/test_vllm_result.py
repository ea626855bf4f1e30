"""vLLM's result JSON: `bsbench export --format vllm` writes it, `bsbench compare` reads it beside bsbench records."""

from __future__ import annotations

import json

from bsbench.record import read_record
from tests.openai_fake import MODEL, FakeServer

# vLLM's rows of the comparison table: the figures its result file has
VLLM_FIGURES = ("request_throughput", "output_throughput", "total_token_throughput", "median_ttft_ms", "p99_ttft_ms",
                "median_tpot_ms", "p99_tpot_ms", "median_itl_ms", "p99_itl_ms", "median_e2el_ms", "p99_e2el_ms",
                "failed")


def _compare_json(bsbench, *paths):
    result = bsbench("compare", *paths, "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_export_then_compare_gives_the_same_figures(bsbench, tmp_path):
    runs = tmp_path / "runs"
    assert bsbench("run", "--backend", "sim", "--gpu", "a100-40gb", "-w", "synthetic", "-n", 20, "--rate", 10,
                   "--input-len", 32, "--output-len", 8, "--ttft-slo", 50, "--out", runs, "--quiet").code == 0
    record_path = next(runs.glob("*.json"))
    exported = tmp_path / "vllm" / "result.json"
    assert bsbench("export", "--format", "vllm", record_path, "-o", exported).code == 0
    layout = json.loads(exported.read_text())
    record = read_record(record_path)
    assert layout["num_prompts"] == 20 and layout["request_rate"] == 10.0 and layout["model_id"] == "tiny"
    assert layout["p99_ttft_ms"] == record.summary["p99_ttft_ms"] and len(layout["itls"]) == 20
    assert layout["request_goodput"] == record.summary["goodput"]
    data = _compare_json(bsbench, record_path, exported)
    assert len(data["groups"]) == 1  # the exported file lands beside its record
    metrics = data["groups"][0]["metrics"]
    ours, theirs = (run["label"] for run in data["groups"][0]["runs"])
    assert "vllm layout" in theirs
    for key in (*VLLM_FIGURES, "offered_rate", "goodput"):
        assert metrics[key][theirs] is not None and metrics[key][theirs] == metrics[key][ours], key
    assert metrics["peak_kv_usage"][theirs] is None  # vLLM's layout has no KV figures: n/a


def test_a_vllm_result_of_its_own_is_shown_beside_the_openai_run_of_the_same_workload(bsbench, tmp_path):
    with FakeServer() as server:
        assert bsbench("run", "--backend", "openai", "--base-url", server.base_url, "-w", "synthetic", "-n", 6,
                       "--rate", 50, "--input-len", 16, "--output-len", 6, "--out", tmp_path / "runs",
                       "--quiet").code == 0
    vllm = {"date": "20250101-120000", "backend": "vllm", "label": "vllm", "model_id": MODEL, "tokenizer_id": MODEL,
            "num_prompts": 6, "request_rate": 50.0, "burstiness": 1.0, "max_concurrency": None, "duration": 0.2,
            "completed": 6, "failed": 0, "total_input_tokens": 96, "total_output_tokens": 36,
            "request_throughput": 30.0, "request_goodput": None, "output_throughput": 180.0,
            "total_token_throughput": 660.0, "mean_ttft_ms": 5.0, "median_ttft_ms": 4.5, "std_ttft_ms": 1.0,
            "p99_ttft_ms": 9.0, "mean_tpot_ms": 1.0, "median_tpot_ms": 1.0, "std_tpot_ms": 0.1, "p99_tpot_ms": 2.0,
            "mean_itl_ms": 1.0, "median_itl_ms": 1.0, "std_itl_ms": 0.1, "p99_itl_ms": 3.0, "mean_e2el_ms": 10.0,
            "median_e2el_ms": 9.5, "std_e2el_ms": 1.0, "p99_e2el_ms": 14.0}
    (tmp_path / "vllm.json").write_text(json.dumps(vllm))
    data = _compare_json(bsbench, tmp_path / "runs", tmp_path / "vllm.json")
    assert len(data["groups"]) == 1
    metrics = data["groups"][0]["metrics"]
    label = next(r["label"] for r in data["groups"][0]["runs"] if r["scheduler"].startswith("vllm-bench"))
    assert metrics["p99_ttft_ms"][label] == 9.0 and metrics["request_throughput"][label] == 30.0
    assert metrics["median_queue_ms"][label] is None and metrics["slo_attainment"][label] is None
    other = dict(vllm, model_id="another-model")
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert len(_compare_json(bsbench, tmp_path / "runs", tmp_path / "other.json")["groups"]) == 2


def test_a_malformed_vllm_result_is_one_line(bsbench, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"date": "x", "model_id": "m", "completed": 3, "request_throughput": "fast"}))
    result = bsbench("compare", path)
    assert result.code == 2 and "a vLLM result needs numbers for" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_export_has_every_vllm_key_with_vllms_zeros_when_nothing_completed(bsbench, tmp_path):
    from tests.openai_fake import Behaviour

    with FakeServer(Behaviour(status=422)) as server:
        run = bsbench("run", "--backend", "openai", "--base-url", server.base_url, "-w", "synthetic", "-n", 3,
                      "--input-len", 8, "--output-len", 2, "--out", tmp_path / "runs", "--quiet",
                      "--no-test-request")  # (else the failing test request stops it before the run)
    assert run.code == 1  # nothing completed: the run says so
    exported = tmp_path / "result.json"
    assert bsbench("export", "--format", "vllm", next((tmp_path / "runs").glob("*.json")), "-o", exported).code == 0
    layout = json.loads(exported.read_text())
    assert layout["completed"] == 0 and layout["failed"] == 3
    for key in ("request_throughput", "output_throughput", "total_token_throughput", "max_output_tokens_per_s",
                "mean_ttft_ms", "median_tpot_ms", "std_itl_ms", "p99_e2el_ms"):
        assert layout[key] == 0.0, key
    assert layout["max_concurrent_requests"] == 0 and layout["request_goodput"] is None
    assert all("422" in error for error in layout["errors"])


def test_records_in_a_folder_are_not_parsed_twice(tmp_path, monkeypatch):
    """split_inputs looks for vLLM results among a folder's files; a bsbench record (its JSON opens with the
    schema version) is left to the record reader unparsed."""
    from bsbench.record import save_record
    from bsbench.report import vllm_result
    from tests.record_factory import make_record

    runs = tmp_path / "runs"
    save_record(make_record("continuous"), runs)
    parsed = []
    real = vllm_result.load_file
    monkeypatch.setattr(vllm_result, "load_file", lambda path, what: parsed.append(path) or real(path, what))
    assert vllm_result.split_inputs([runs]) == ([runs], [])
    assert parsed == []
    result = {"date": "20240101-000000", "completed": 1, "total_input_tokens": 10, "total_output_tokens": 5,
              "request_throughput": 1.0, "output_throughput": 5.0, "total_token_throughput": 15.0, "duration": 1.0}
    (runs / "vllm.json").write_text(json.dumps(result))
    keep, imported = vllm_result.split_inputs([runs])
    assert keep == [runs] and len(imported) == 1 and parsed == [runs / "vllm.json"]
