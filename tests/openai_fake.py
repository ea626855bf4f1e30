"""A small fake OpenAI-compatible server for the client tests: starlette + uvicorn in a thread on 127.0.0.1.

It streams completions (and chat) the way vLLM does: one chunk per token with its text and `token_ids`, the
finish_reason on the last token chunk, a usage chunk when asked for, then [DONE]. `Behaviour` injects faults:
HTTP errors, short outputs, a stream cut inside an event, slow tokens, a slow start, no usage, a server that
dies. It counts what it saw (requests, their bodies, the most in flight at once). Bounded: it stops by itself
after `lifetime_s`, and every wait in it is short.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

MODEL = "fake-model"


@dataclass
class Behaviour:
    """Faults and timing of the fake server (all off by default)."""

    status: int | None = None  # answer every request with this HTTP error status
    error_every: int | None = None  # answer every n-th request (1-based) with HTTP 500
    short_by: int = 0  # stop this many tokens early (finish_reason "stop")
    cut_after: int | None = None  # after this many tokens, send half an event and drop the connection
    token_delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    usage: bool = True  # send the usage chunk when asked for
    token_ids: bool = True  # return token_ids when asked for
    die_after: int | None = None  # after this many requests arrived, the server stops (streams cut, port closed)
    refuse_vllm_fields: bool = False  # answer 422 to a body with ignore_eos/min_tokens/return_token_ids (as
    #                                   transformers serve does)


@dataclass
class Seen:
    requests: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    completed_streams: int = 0
    client_ports: set[int] = field(default_factory=set)  # one per connection the client opened
    authorization: set[str] = field(default_factory=set)  # the Authorization headers seen
    lock: threading.Lock = field(default_factory=threading.Lock)


def token_id(request_index: int, position: int) -> int:
    """The fake's generated token: a function of the request's prompt and the position, so tests can check ids."""
    return (request_index * 31 + position * 7) % 1000 + 1


class FakeServer:
    """`with FakeServer(Behaviour()) as server:` -> server.base_url; server.seen has the counts."""

    def __init__(self, behaviour: Behaviour | None = None, lifetime_s: float = 60.0) -> None:
        self.behaviour = behaviour or Behaviour()
        self.seen = Seen()
        self.lifetime_s = lifetime_s
        self.dead = False
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        app = Starlette(routes=[Route("/v1/completions", self._complete, methods=["POST"]),
                                Route("/v1/chat/completions", self._complete, methods=["POST"]),
                                Route("/v1/models", self._models, methods=["GET"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        self.timer = threading.Timer(self.lifetime_s, self.stop)
        self.timer.daemon = True  # never keeps the test process alive
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        self.stop()
        self.thread.join(timeout=10)

    def stop(self) -> None:
        self.dead = True
        self.server.should_exit = True
        self.server.force_exit = True

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def _complete(self, request: Request) -> Any:
        body = await request.json()
        b = self.behaviour
        with self.seen.lock:
            self.seen.requests += 1
            index = self.seen.requests
            self.seen.bodies.append(body)
            if request.client is not None:
                self.seen.client_ports.add(request.client.port)
            self.seen.authorization.add(request.headers.get("authorization", ""))
        if b.refuse_vllm_fields and {"ignore_eos", "min_tokens", "return_token_ids"} & set(body):
            return JSONResponse({"detail": [{"type": "extra_forbidden", "loc": ["body", "ignore_eos"],
                                             "msg": "Extra inputs are not permitted"}]}, status_code=422)
        if b.die_after is not None and index >= b.die_after:
            self.stop()
        if b.status is not None or (b.error_every and index % b.error_every == 0):
            status = b.status or 500
            return JSONResponse({"error": {"message": f"fake failure {status}", "type": "server_error"}},
                                status_code=status)
        return StreamingResponse(self._stream(body, request.url.path.endswith("chat/completions")),
                                 media_type="text/event-stream")

    async def _stream(self, body: dict[str, Any], chat: bool) -> AsyncIterator[bytes]:
        b = self.behaviour
        n = max(0, int(body.get("max_tokens", 16)) - b.short_by)
        prompt = body.get("prompt") if not chat else body["messages"][0]["content"]
        key = sum(prompt) if isinstance(prompt, list) else len(prompt or "")
        with self.seen.lock:
            self.seen.in_flight += 1
            self.seen.peak_in_flight = max(self.seen.peak_in_flight, self.seen.in_flight)
        try:
            if b.first_token_delay_s:
                await asyncio.sleep(b.first_token_delay_s)
            for i in range(n):
                if self.dead:
                    raise ConnectionError("fake server died")
                if b.cut_after is not None and i == b.cut_after:
                    yield b'data: {"choices": [{"te'
                    raise ConnectionError("fake stream cut")
                choice: dict[str, Any] = {"index": 0, "finish_reason": ("length" if b.short_by == 0 else "stop")
                                          if i == n - 1 else None}
                if chat:
                    choice["delta"] = {"content": f" t{i}"}
                else:
                    choice["text"] = f" t{i}"
                if body.get("return_token_ids") and b.token_ids:
                    choice["token_ids"] = [token_id(key, i)]
                yield _event({"id": "x", "object": "text_completion", "model": MODEL, "choices": [choice],
                              "usage": None})
                if b.token_delay_s:
                    await asyncio.sleep(b.token_delay_s)
            if (body.get("stream_options") or {}).get("include_usage") and b.usage:
                prompt_tokens = len(prompt) if isinstance(prompt, list) else len((prompt or "").split())
                yield _event({"id": "x", "choices": [], "usage": {"prompt_tokens": prompt_tokens,
                                                                  "completion_tokens": n,
                                                                  "total_tokens": prompt_tokens + n}})
            yield b"data: [DONE]\n\n"
            with self.seen.lock:
                self.seen.completed_streams += 1
        finally:
            with self.seen.lock:
                self.seen.in_flight -= 1


def _event(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()
