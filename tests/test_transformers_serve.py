"""A real third-party OpenAI-compatible server: `transformers serve` (from the installed transformers) over a tiny
random-weight Llama the test writes, with bsbench's shipped tokenizer, on 127.0.0.1; `bsbench run --backend
openai` replays a small workload against it. It refuses the vLLM-only fields (HTTP 422), so the default mode
must fall back to strict, say so and record it; counts, the server's token usage and failures are checked.

Skipped, with the reason, where `transformers serve` cannot run here (its serving extra, fastapi, or accelerate
missing).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bsbench.record import read_record

TOKENIZER = Path(__file__).resolve().parents[1] / "bsbench" / "data" / "tokenizer"
START_TIMEOUT_S = 60.0
NUM_REQUESTS, OUTPUT_LEN = 4, 3


def _cannot_run() -> str | None:
    """Why `transformers serve` cannot run here, or None."""
    for module in ("transformers", "fastapi", "uvicorn", "accelerate"):
        if importlib.util.find_spec(module) is None:
            return f"transformers serve needs {module} (pip install 'transformers[serving]' accelerate), not installed"
    if _cli() is None:
        return "the transformers command is not installed beside this Python"
    return None


def _cli() -> str | None:
    beside = Path(sys.executable).parent / "transformers"
    return str(beside) if beside.exists() else shutil.which("transformers")


def _write_tiny_llama(folder: Path) -> None:
    """A 2-layer Llama with random weights and bsbench's shipped tokenizer (no download)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(TOKENIZER)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def transformers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, model name) of a running `transformers serve`, stopped at the end."""
    why = _cannot_run()
    if why is not None:
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("tiny-llama")
    _write_tiny_llama(folder)
    port = _free_port()
    log = (folder / "serve.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([str(_cli()), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
                                "--device", "cpu", "--log-level", "warning"],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                tail = (folder / "serve.log").read_text()[-300:].strip().splitlines()
                pytest.skip(f"transformers serve exited ({process.returncode}): {tail[-1] if tail else 'no output'}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not answer /health within {START_TIMEOUT_S:g} s")
            time.sleep(0.25)
        yield url, str(folder)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def test_a_replay_against_transformers_serve_falls_back_to_strict_and_counts_its_usage(
        bsbench, tmp_path, transformers_server):
    url, model = transformers_server
    result = bsbench("run", "--backend", "openai", "--base-url", url, "--served-model", model,
                     "-w", "synthetic", "-n", NUM_REQUESTS, "--input-len", 8, "--output-len", OUTPUT_LEN,
                     "--rate", 20, "--seed", 1, "--request-timeout", 30, "--out", tmp_path, "--quiet")
    record = read_record(next(tmp_path.glob("*.json")))
    summary = record.summary
    # it refuses ignore_eos / min_tokens / return_token_ids: the test request went strict, said and recorded
    assert "server refused the vLLM-only fields" in result.out and "running strict" in result.out, result.err
    assert "422" in record.scheduler["strict_fallback"] and record.scheduler["strict_openai"] is True
    assert summary["completed"] + summary["failed"] == len(record.requests) == NUM_REQUESTS
    # strict: a random model may stop at EOS before the asked length: that is a typed short-output, never silent
    assert {r.reason.kind.value for r in record.requests if r.reason is not None} <= {"short-output"}
    assert result.code == (1 if summary["completed"] == 0 else 0), result.err
    for row in record.requests:
        assert row.server_prompt_tokens is not None and row.server_prompt_tokens > 0
        assert row.server_output_tokens is not None and row.server_output_tokens <= OUTPUT_LEN
        assert row.num_output == row.server_output_tokens and row.token_count_source == "usage"
    assert summary["token_counts"]["input"] == "server"
    completed = [r for r in record.requests if r.reason is None]
    assert summary["total_input_tokens"] == sum(r.server_prompt_tokens for r in completed)


def test_a_bad_model_name_stops_before_the_run_with_the_servers_error(bsbench, tmp_path, transformers_server):
    url, _ = transformers_server
    result = bsbench("run", "--backend", "openai", "--base-url", url, "--served-model", str(tmp_path / "no-model"),
                     "-w", "synthetic", "-n", 2, "--input-len", 8, "--output-len", 2, "--request-timeout", 30,
                     "--out", tmp_path / "runs", "--quiet")
    assert result.code == 2 and "the test request" in result.err and "nothing was timed" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not list((tmp_path / "runs").glob("*.json"))
