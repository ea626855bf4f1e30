"""The honest pairing of issue 14: `bsbench run --backend openai` against `bsbench serve --scheduler continuous`
on the tiny model gives the same tokens as the in-process `bsbench run --scheduler continuous`, request by
request, and the client's and the server's counts agree. The server is a subprocess on a free 127.0.0.1 port
that stops by itself after exactly the requests sent (--max-requests)."""

from __future__ import annotations

from pathlib import Path

import httpx

from bsbench.record.io import read_record
from tests.serve_helpers import TIMEOUT_S, serve_process

NUM_REQUESTS = 6
WORKLOAD = ("-w", "smoke", "-n", str(NUM_REQUESTS), "--rate", "4", "--seed", "3", "--record-tokens", "--quiet")


def _only_record(folder: Path):
    paths = list(folder.glob("*.json"))
    assert len(paths) == 1, paths
    return read_record(paths[0])


def test_openai_replay_against_bsbench_serve_gives_the_in_process_tokens(bsbench, tmp_path):
    local = bsbench("run", "--scheduler", "continuous", "--threads", "1", *WORKLOAD, "--out", tmp_path / "local")
    assert local.code == 0, local.err
    served_requests = NUM_REQUESTS + 1  # the client's test request before the run, then the workload
    with serve_process("--scheduler", "continuous", "--max-requests", str(served_requests)) as (process, url):
        remote = bsbench("run", "--backend", "openai", "--base-url", url, "--prompt-as", "token-ids", *WORKLOAD,
                         "--out", tmp_path / "remote")
        assert remote.code == 0, remote.err
        assert process.wait(TIMEOUT_S) == 0, process.stderr.read()  # it served exactly the requests sent
        server_out = process.stdout.read()
    in_process, over_http = _only_record(tmp_path / "local"), _only_record(tmp_path / "remote")
    assert (over_http.config.backend.kind, in_process.config.backend.kind) == ("openai", "real")
    assert in_process.workload.fingerprint == over_http.workload.fingerprint  # the same requests, paired
    tokens = {r.id: r.output_ids for r in in_process.requests}
    served = {r.id: r.output_ids for r in over_http.requests}
    assert len(tokens) == NUM_REQUESTS and all(tokens.values())
    assert served == tokens
    counts = {r.token_count_source for r in over_http.requests}
    assert counts == {"usage"}  # the server reported usage, and it matched the ids the client recorded
    assert all(r.num_output == len(r.output_ids) for r in over_http.requests)
    summary = over_http.summary
    assert (summary["completed"], summary["failed"], summary["rejected"]) == (NUM_REQUESTS, 0, 0)
    assert f"{served_requests} requests: {served_requests} completed, 0 failed, 0 rejected" in server_out
    for row in over_http.requests:  # client timestamps: sent, first token, every token, in order
        assert row.arrival_s <= row.sent_s <= row.token_times[0]
        assert row.token_times == sorted(row.token_times)
    try:
        httpx.get(f"{url}/health", timeout=1)
        raise AssertionError("the server still answers after --max-requests")
    except httpx.TransportError:
        pass
