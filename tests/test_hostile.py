"""Issue 28: serve and the openai client against hostile peers on 127.0.0.1. Secrets never written, every input
bounded, typed failures instead of crashes. Every server here binds 127.0.0.1, stops by itself, and every
request has a short timeout. The fault suite that CI runs (benchmarks/fault_suite.py) is run small at the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from bsbench.openai_client.exchange import Exchange, run_exchange
from bsbench.record import EndKind, read_record
from bsbench.redaction import check_api_key, redact, url_without_credentials
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
