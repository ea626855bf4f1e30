"""Helpers of the `bsbench serve` tests: an in-process server on a free 127.0.0.1 port, SSE parsing, metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bsbench.backends.config import RunConfig
from bsbench.backends.policy_build import build_policy
from bsbench.backends.run import open_session
from bsbench.progress import Progress
from bsbench.schedulers.base import Scheduler
from bsbench.serve.app import ServeState
from bsbench.serve.limits import ServeLimits
from bsbench.serve.server import bind, serve, serve_state
from bsbench.workloads.tokenizer import load_tokenizer

TIMEOUT_S = 60.0
_ROOT = Path(__file__).resolve().parents[1]
KV_MEMORY = 8 << 20  # 2,048 tokens of the tiny model: less than its 4,096-token context


@dataclass(slots=True)
class Served:
    url: str
    state: ServeState
    policy: Scheduler
    config: RunConfig
    thread: threading.Thread  # uvicorn's


@contextmanager
def running_server(scheduler: str = "continuous", idle_exit_s: float | None = None, *,
                   limits: ServeLimits | None = None, api_key: str | None = None, **options) -> Iterator[Served]:
    """`bsbench serve` in this process (uvicorn on a thread, its engine on another), stopped on exit."""
    config = RunConfig(scheduler=scheduler, scheduler_options=options, model="tiny", threads=1, kv_memory=KV_MEMORY)
    session = open_session(config)
    policy = build_policy(config, session, Progress(enabled=False))
    state = serve_state(session, policy, load_tokenizer(None), idle_exit_s=idle_exit_s, limits=limits,
                        api_key=api_key)
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=serve, args=(state, sock), daemon=True)
    thread.start()
    wait_healthy(url)
    try:
        yield Served(url, state, policy, config, thread)
    finally:
        state.request_exit()
        thread.join(TIMEOUT_S)
        assert not thread.is_alive(), "the server did not stop"


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never became healthy")


def sse_events(lines: Iterator[str]) -> list[dict | str]:
    """The `data:` payloads of an SSE stream: dicts, and the final "[DONE]"."""
    events: list[dict | str] = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of /metrics (0.0 when absent: a labelled counter not yet seen)."""
    text = httpx.get(f"{url}/metrics", timeout=TIMEOUT_S).text
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def wait_for(condition, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def serve_process(*args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python -m bsbench serve --port 0 ARGS`; yields the process and its base URL once healthy."""
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "bsbench", "serve", "--port", "0", "--threads", "1", "--quiet",
                                *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        found = re.search(r"ready at http://127\.0\.0\.1:(\d+)", line)
        assert found, f"no address in {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        url = f"http://127.0.0.1:{found.group(1)}"
        # the address is printed once the server answers: the first request succeeds, no waiting loop
        assert httpx.get(f"{url}/health", timeout=TIMEOUT_S).status_code == 200
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT_S)
