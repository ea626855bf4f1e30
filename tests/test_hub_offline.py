"""Offline first: a hub id with the hub unreachable (or HF_HUB_OFFLINE) is one line at once, never retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bsbench import hub

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_reason_follows_the_environment_and_the_probe(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    port = _closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert hub.offline_reason() == f"127.0.0.1:{port} is unreachable"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.offline_reason() is None
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert hub.offline_reason() == "HF_HUB_OFFLINE is set"


def test_the_probe_goes_to_the_https_proxy_when_one_is_set(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert hub.probe_target() == ("proxy.example", 3128, "proxy proxy.example:3128")
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("https_proxy", raising=False)
    assert hub.probe_target()[:2] == ("huggingface.co", 443)


def _offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf"), **extra}


@pytest.mark.parametrize("argv, what", [
    (["run", "-w", "smoke", "--model", "some-org/some-model"], "model 'some-org/some-model'"),
    (["workload", "show", "smoke", "--tokenizer", "some-org/some-tokenizer"], "tokenizer 'some-org/some-tokenizer'"),
])
def test_a_hub_id_with_the_hub_unreachable_is_one_line_at_once(tmp_path, argv, what):
    """Used to be ~30 s of retries and a dozen lines; transformers would retry a refused port too."""
    env = _offline_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bsbench", *argv, "--out", str(tmp_path)] if argv[0] == "run"
                          else [sys.executable, "-m", "bsbench", *argv], capture_output=True, text=True, check=False,
                          env=env,
                          timeout=120)
    elapsed = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert what in lines[0] and "is unreachable" in lines[0]
    assert done.stdout == ""
    assert elapsed < 20, elapsed


def test_hf_hub_offline_is_honoured_and_a_cached_model_is_loaded_from_the_cache(tmp_path):
    env = _offline_env(tmp_path, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "bsbench", "run", "-w", "smoke", "--model", "org/absent",
                           "--out", str(tmp_path)], capture_output=True, text=True, check=False, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bsbench: error: " + hub.offline_error("model", "org/absent", "HF_HUB_OFFLINE is set")]
    snapshot = tmp_path / "hf" / "hub" / "models--org--cached" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    code = "from bsbench.model.source import check_model_source; print(check_model_source('org/cached'))"
    cached = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env,
                            timeout=60)
    assert cached.stdout.strip() == "HF_HUB_OFFLINE is set", cached.stderr  # use the cache, no error
