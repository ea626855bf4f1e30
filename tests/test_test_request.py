"""The test request before the timed run (as vLLM's `bench serve`), and the strict fallback for a server that
refuses the vLLM-only fields (min_tokens, return_token_ids, ignore_eos), against tests/openai_fake.py."""

from __future__ import annotations

import pytest

from bsbench.errors import BsbenchError
from bsbench.openai_client import ClientOptions, run_openai
from bsbench.record import read_record
from bsbench.workloads.build import load_workload
from tests.openai_fake import Behaviour, FakeServer

VLLM_ONLY = {"ignore_eos", "min_tokens", "return_token_ids"}
ARGS = ("-w", "synthetic", "-n", 3, "--input-len", 8, "--output-len", 2, "--quiet")


def workload(n: int):
    return load_workload("synthetic", {"input_len": 8, "output_len": 3, "seed": 1, "num_requests": n, "rate": "inf"})


def test_a_failing_test_request_stops_before_the_run_with_the_servers_error(tmp_path):
    notes: list[str] = []
    with FakeServer(Behaviour(status=500)) as server, pytest.raises(BsbenchError) as error:
        run_openai(workload(4), ClientOptions(base_url=server.base_url), out_dir=tmp_path, notify=notes.append)
    assert "test request" in str(error.value) and "HTTP 500: fake failure 500" in str(error.value)
    assert "\n" not in str(error.value) and "nothing was timed" in str(error.value)
    assert server.seen.requests == 1 and notes == []  # one request, no strict retry for a 500
    assert not list(tmp_path.glob("*.json"))  # nothing timed, nothing written


def test_the_cli_exits_2_with_one_line_and_no_record(bsbench, tmp_path):
    with FakeServer(Behaviour(status=503)) as server:
        result = bsbench("run", "--backend", "openai", "--base-url", server.base_url, *ARGS, "--out", tmp_path)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "the test request" in result.err and "HTTP 503" in result.err and "Traceback" not in result.err
    assert not list(tmp_path.glob("*.json"))


def test_a_refusal_of_the_vllm_fields_falls_back_to_strict_and_is_recorded(tmp_path):
    notes: list[str] = []
    with FakeServer(Behaviour(refuse_vllm_fields=True)) as server:
        record = run_openai(workload(4), ClientOptions(base_url=server.base_url), out_dir=tmp_path,
                            notify=notes.append)
    bodies = server.seen.bodies
    assert len(bodies) == 2 + 4  # the test request, its strict retry, the run
    assert VLLM_ONLY <= set(bodies[0]) and not any(VLLM_ONLY & set(b) for b in bodies[1:])
    assert len(notes) == 1 and "server refused" in notes[0] and "running strict" in notes[0]
    record = read_record(record.path)
    assert record.summary["completed"] == 4 and record.scheduler["strict_openai"] is True
    assert "HTTP 422" in record.scheduler["strict_fallback"]
    assert record.config.scheduler_options["strict_openai"] is True


def test_strict_from_the_start_or_without_a_test_request_never_falls_back(tmp_path):
    with FakeServer(Behaviour(refuse_vllm_fields=True)) as server:
        strict = run_openai(workload(2), ClientOptions(base_url=server.base_url, strict_openai=True),
                            out_dir=tmp_path / "a")
        loose = run_openai(workload(2), ClientOptions(base_url=server.base_url, test_request=False),
                           out_dir=tmp_path / "b")
    assert strict.summary["completed"] == 2 and "strict_fallback" not in strict.scheduler
    assert loose.summary["failed"] == 2 and "strict_fallback" not in loose.scheduler  # refused, typed, counted
    assert loose.scheduler["test_request"] is False


def test_the_cli_says_it_runs_strict(bsbench, tmp_path):
    with FakeServer(Behaviour(refuse_vllm_fields=True)) as server:
        result = bsbench("run", "--backend", "openai", "--base-url", server.base_url, *ARGS, "--out", tmp_path)
    assert result.code == 0, result.err
    assert "server refused the vLLM-only fields" in result.out and "running strict" in result.out
    assert read_record(next(tmp_path.glob("*.json"))).scheduler["strict_fallback"].startswith("HTTP 422")


def test_rows_keep_the_servers_counts_and_the_table_names_its_ttft_origin(bsbench, tmp_path):
    # the fake counts a text prompt's words as its prompt tokens: not the workload's 8 token ids
    with FakeServer() as server:
        sent = bsbench("run", "--backend", "openai", "--base-url", server.base_url, *ARGS, "--out", tmp_path / "a",
                       "--ttft-origin", "sent")
        scheduled = bsbench("run", "--backend", "openai", "--base-url", server.base_url, *ARGS,
                            "--out", tmp_path / "b")
    assert sent.code == scheduled.code == 0, sent.err + scheduled.err
    assert "from when the client sent each request" in sent.out and "scheduled arrival" in scheduled.out
    assert "server usage / server usage" in sent.out
    record = read_record(next((tmp_path / "a").glob("*.json")))
    rows = record.requests
    assert all(r.server_prompt_tokens is not None and r.server_output_tokens == r.output_len for r in rows)
    assert record.summary["total_input_tokens"] == sum(r.server_prompt_tokens for r in rows)
    assert record.summary["total_input_tokens"] != sum(r.prompt_len for r in rows)
    assert record.summary["token_counts"] == {"input": "server", "output": "server"}
    assert record.summary["median_ttft_sent_ms"] <= record.summary["median_ttft_ms"]


def test_ttft_origin_sent_is_refused_in_process(bsbench, tmp_path):
    result = bsbench("run", "--backend", "sim", "--gpu", "a100-40gb", *ARGS, "--out", tmp_path, "--ttft-origin", "sent")
    assert result.code == 2 and "--ttft-origin sent applies to --backend openai" in result.err
