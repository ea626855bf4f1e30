"""Issue 28: serve and the openai client against hostile peers on 127.0.0.1. Secrets never written, every input
bounded, typed failures instead of crashes. Every server here binds 127.0.0.1, stops by itself, and every
request has a short timeout. The fault suite that CI runs (benchmarks/fault_suite.py) is run small at the end."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
from pathlib import Path

import httpx
import pytest

from bsbench.openai_client import ClientOptions, run_openai
from bsbench.openai_client.exchange import Exchange, run_exchange
from bsbench.openai_client.options import MAX_SSE_LINE_BYTES
from bsbench.record import EndKind, read_record
from bsbench.redaction import check_api_key, redact, url_without_credentials
from bsbench.workloads.build import load_workload
from tests.hostile_peer import CannedPeer, gzip_bomb, response, sse_answer, text_chunk
from tests.openai_fake import FakeServer

KEY_CANARY = "sk-CANARY7f3a9"
PASSWORD_CANARY = "PwCANARY51c2"
CANARIES = (KEY_CANARY, PASSWORD_CANARY)


def canaries_in(*texts: str, folder: Path | None = None) -> list[str]:
    """The canaries found in `texts` and in every file under `folder`."""
    blobs = list(texts)
    if folder is not None:
        blobs += [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()]
    return [c for c in CANARIES for blob in blobs if c in blob]


# --- 1. secrets ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "what"), [(KEY_CANARY + "\n", "a newline"), (KEY_CANARY + "é", "non-ASCII"),
                                           ("sk CANARY7f3a9", "a space"), (KEY_CANARY + "\x07", "control"),
                                           ("", "not set")])
def test_a_bad_api_key_is_refused_in_one_line_without_echoing_it(bsbench, monkeypatch, key, what):
    monkeypatch.setenv("BSBENCH_HOSTILE_KEY", key)
    result = bsbench("run", "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--api-key-env",
                     "BSBENCH_HOSTILE_KEY", "-w", "synthetic", "-n", 2)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert what in result.err and "CANARY" not in result.err + result.out


def test_check_api_key_passes_a_good_key():
    assert check_api_key(KEY_CANARY, "--api-key-env K") == KEY_CANARY


def test_url_credentials_are_masked_and_other_urls_kept():
    assert url_without_credentials(f"http://alice:{PASSWORD_CANARY}@127.0.0.1:8/v1") == "http://***@127.0.0.1:8/v1"
    assert url_without_credentials("http://127.0.0.1:8/v1") == "http://127.0.0.1:8/v1"
    text = redact(f"Illegal header value b'Bearer {KEY_CANARY}\\n' at http://a:{PASSWORD_CANARY}@h/v1")
    assert "CANARY" not in text and "Bearer ***" in text and "http://***@h/v1" in text


def test_a_run_with_url_credentials_and_a_key_writes_and_prints_neither(bsbench, tmp_path, monkeypatch):
    monkeypatch.setenv("BSBENCH_HOSTILE_KEY", KEY_CANARY)
    with FakeServer(lifetime_s=30) as server:
        url = server.base_url.replace("http://", f"http://alice:{PASSWORD_CANARY}@")
        result = bsbench("run", "--backend", "openai", "--base-url", url, "--api-key-env", "BSBENCH_HOSTILE_KEY",
                         "-w", "synthetic", "-n", 3, "--input-len", 8, "--output-len", 2, "--out", tmp_path)
    assert result.code == 0, result.err
    assert server.seen.requests == 3
    record = read_record(next(tmp_path.glob("*.json")))
    assert record.config.backend.base_url.startswith("http://***@127.0.0.1:")
    assert canaries_in(result.out, result.err, folder=tmp_path) == []


class _RaisingClient:
    """An httpx client whose request fails with `exc` (as h11 does for an illegal header value)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def stream(self, *args: object, **kwargs: object) -> object:
        raise self.exc


def test_exception_text_holding_the_header_is_redacted_where_it_becomes_a_reason():
    exc = httpx.LocalProtocolError(f"Illegal header value b'Bearer {KEY_CANARY}\\n'")
    exchange = Exchange("r0")
    asyncio.run(run_exchange(_RaisingClient(exc), "http://127.0.0.1:9/v1/completions", {},
                             {"Authorization": f"Bearer {KEY_CANARY}"}, "completions", 5.0, exchange))
    assert exchange.failure is not None and exchange.failure.kind is EndKind.CONNECTION
    assert "CANARY" not in exchange.failure.detail and "***" in exchange.failure.detail


def test_model_discovery_failure_prints_no_credentials(bsbench, monkeypatch):
    monkeypatch.setenv("BSBENCH_HOSTILE_KEY", KEY_CANARY)
    url = f"http://alice:{PASSWORD_CANARY}@{FakeServer().base_url.removeprefix('http://')}"  # nothing listens
    result = bsbench("run", "--backend", "openai", "--base-url", url, "--api-key-env", "BSBENCH_HOSTILE_KEY",
                     "-w", "synthetic", "-n", 2)
    assert result.code == 2 and "cannot list the served models at http://***@127.0.0.1" in result.err
    assert canaries_in(result.out, result.err) == []


# --- 3. client limits ---------------------------------------------------------------------------------------

def replay_against(answer: bytes, tmp_path: Path, n: int = 1, output_len: int = 8, endpoint: str = "completions"):
    """`run_openai` of n requests against a peer answering `answer`; the record as read back, and the peer."""
    load = load_workload("synthetic", {"input_len": 8, "output_len": output_len, "seed": 1, "num_requests": n,
                                       "rate": "inf"})
    with CannedPeer(answer) as peer:
        record = run_openai(load, ClientOptions(base_url=peer.url, served_model="m", endpoint=endpoint,
                                                request_timeout_s=10), out_dir=tmp_path)
    return read_record(record.path), peer


def only_reason(record) -> tuple[str, str]:
    (row,) = record.requests
    assert row.reason is not None, "the request should have failed"
    return row.reason.kind.value, row.reason.detail


def test_a_gzip_bomb_error_body_is_read_no_further_than_its_bound(tmp_path):
    bomb = gzip_bomb("500 Internal Server Error", 48 << 20)  # 48 MiB inflated, ~48 KiB on the wire
    tracemalloc.start()
    try:
        record, _ = replay_against(bomb, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert only_reason(record)[0] == "http-error"
    assert peak < 16 << 20, f"the client held {peak / 2**20:.0f} MiB of a 48 MiB bomb"


def test_an_endless_sse_line_is_a_bad_response_within_its_bound(tmp_path):
    line = b"data: " + b"x" * (2 * MAX_SSE_LINE_BYTES)  # 2 MiB, no newline, against a 1 MiB bound
    tracemalloc.start()
    try:
        record, _ = replay_against(response("200 OK", line, {"Content-Type": "text/event-stream"}), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kind, detail = only_reason(record)
    assert kind == "bad-response" and "SSE line passes" in detail
    assert peak < 2 * MAX_SSE_LINE_BYTES + (4 << 20)


def test_gzip_streams_are_decoded(tmp_path):
    body = b"".join(f"data: {json.dumps(text_chunk(f' t{i}', 'length' if i == 7 else None))}\n\n".encode()
                    for i in range(8)) + b"data: [DONE]\n\n"
    packed = gzip.compress(body)
    record, _ = replay_against(response("200 OK", packed, {"Content-Encoding": "gzip",
                                                           "Content-Type": "text/event-stream"}), tmp_path)
    (row,) = record.requests
    assert row.reason is None and row.num_output == 8


def test_usage_that_contradicts_the_stream_is_flagged_and_not_counted(tmp_path):
    chunks = [text_chunk(f" t{i}", "length" if i == 7 else None) for i in range(8)]
    usage = {"id": "x", "choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 10**9,
                                                 "total_tokens": 10**9 + 8}}
    record, _ = replay_against(sse_answer(*chunks, usage), tmp_path)
    (row,) = record.requests
    assert row.num_output == 8 and row.token_count_source == "chunks" and row.reason is None
    assert "usage claims 1000000000 tokens" in row.notes["usage_rejected"]
    assert record.summary["total_output_tokens"] == 8


@pytest.mark.parametrize("chunk", [
    {"choices": [{"index": 0, "delta": "a string", "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": ["a list"], "finish_reason": None}]},
    {"choices": "not a list"},
    {"choices": [{"index": 0, "delta": {"content": 5}}]},
])
def test_malformed_chat_chunks_are_typed_bad_responses(tmp_path, chunk):
    good = {"choices": [{"index": 0, "delta": {"content": " ok"}, "finish_reason": None}]}
    record, _ = replay_against(sse_answer(chunk, good), tmp_path, endpoint="chat")
    assert only_reason(record)[0] == "bad-response"


def test_a_redirect_is_an_http_error_and_not_followed(tmp_path):
    answer = response("307 Temporary Redirect", b"", {"Location": "http://127.0.0.1:9/elsewhere",
                                                      "Content-Length": "0"})
    record, peer = replay_against(answer, tmp_path)
    kind, detail = only_reason(record)
    assert kind == "http-error" and "HTTP 307" in detail and "not followed" in detail
    assert peer.requests == 1
