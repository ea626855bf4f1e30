"""The ASGI app: OpenAI-compatible endpoints over an online engine (engine/online.py).

    POST /v1/completions, /v1/chat/completions   streaming (SSE) or not (serve/requests.py says what is accepted)
    GET  /v1/models                              the one served model
    GET  /health                                 200 while the engine runs, 503 after it stopped
    GET  /metrics                                Prometheus text (serve/metrics.py)

With an API key, every /v1/* request needs `Authorization: Bearer KEY` (else 401, OpenAI's
invalid_api_key); /health and /metrics stay open. Bodies are bounded (413), read within a time
(408), and decoded and tokenised on a worker thread (serve/limits.py): the event loop stays free.
A request the engine could never serve (longer than the context, more KV than the policy
lets one request hold) gets 400 with the reason. A request without max_tokens may generate
up to the context limit (`longest_output`). Generation stops at EOS, a stop token or a stop string
(serve/output.py): the engine ends the request completed and frees its KV. A client that disconnects cancels its
request: the engine ends it failed (cancelled) and frees its KV. A request that fails in
the engine (shutdown, OOM, ...) gets 500, or an error event in its stream, with the reason.
Every error is OpenAI-style JSON (serve/errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bsbench import safe_json
from bsbench.engine.online import Ended, EngineClosed, EngineThread, Event, Submitted, Tokens
from bsbench.engine.request_state import Status
from bsbench.serve.errors import ApiError
from bsbench.serve.limits import ServeLimits
from bsbench.serve.metrics import ServeMetrics
from bsbench.serve.output import Output
from bsbench.serve.requests import GenerationRequest, ServedModel, parse_chat, parse_completion
from bsbench.serve.responses import Detokenizer, Shape, sse, usage

WATCH_INTERVAL_S = 0.1


@dataclass(slots=True)
class ServeState:
    """What the endpoints share: the engine, the served model, the metrics, and when to stop by itself."""

    engine: EngineThread
    model: ServedModel
    scheduler: str
    metrics: ServeMetrics
    max_requests: int | None = None  # stop once this many requests have ended
    idle_exit_s: float | None = None  # stop after this long with no request in flight
    request_exit: Callable[[], None] = field(default=lambda: None)  # set by the server (uvicorn's should_exit)
    limits: ServeLimits = field(default_factory=ServeLimits)
    api_key: str | None = None  # required as a bearer token on /v1/* when set
    # the most tokens a request without max_tokens may generate, given its prompt's length (0: none fit)
    longest_output: Callable[[int], int] = field(default=lambda prompt_len: 1)
    # decoding and tokenising, off the event loop; one thread, as tokenizers are not all safe to share
    parser: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "bsbench-parse"))


def build_app(state: ServeState) -> Starlette:
    async def completions(request: Request) -> Response:
        return await _generate(request, state, chat=False)

    async def chat(request: Request) -> Response:
        return await _generate(request, state, chat=True)

    async def models(request: Request) -> Response:
        _authorize(request, state)
        return JSONResponse({"object": "list", "data": [
            {"id": state.model.name, "object": "model", "created": 0, "owned_by": "bsbench",
             "root": state.model.name, "scheduler": state.scheduler}]})

    async def health(request: Request) -> Response:
        alive = state.engine.alive
        return JSONResponse({"status": "ok" if alive else "stopped"}, status_code=200 if alive else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(_watch(state))
        try:
            yield
        finally:
            watcher.cancel()
            state.parser.shutdown(wait=False, cancel_futures=True)

    routes = [Route("/v1/completions", completions, methods=["POST"]),
              Route("/v1/chat/completions", chat, methods=["POST"]),
              Route("/v1/models", models, methods=["GET"]),
              Route("/health", health, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    handlers: dict[Any, Callable[..., Any]] = {ApiError: _api_error, HTTPException: _http_error,
                                               Exception: _server_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    text = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    return await _api_error(request, ApiError(exc.status_code, text.get(exc.status_code, str(exc.detail))))


async def _server_error(request: Request, exc: Exception) -> Response:
    return await _api_error(request, ApiError(500, f"internal error: {type(exc).__name__}: {exc}"))


def _authorize(request: Request, state: ServeState) -> None:
    if state.api_key is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), state.api_key.encode()):
        raise ApiError(401, "Incorrect API key provided: send it as 'Authorization: Bearer KEY'" if given else
                       "You didn't provide an API key: send it as 'Authorization: Bearer KEY'",
                       code="invalid_api_key")


async def _read_body(request: Request, limits: ServeLimits) -> bytes:
    """The body, refused (413) once it passes `max_body_bytes`, before reading it when Content-Length says so."""
    limit = limits.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body ({int(declared):,} bytes) passes the limit of {limit:,} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"the request body passes the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {limits.body_timeout_s:g} s") from None
    return b"".join(chunks)


def _parse(raw: bytes, model: ServedModel, chat: bool) -> GenerationRequest:
    """JSON decoding and tokenising (on the parser thread)."""
    try:
        body = safe_json.loads(raw.decode("utf-8"))  # a nesting bomb is malformed JSON too
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    try:  # a lone surrogate (\ud800) parses, but is no Unicode text: the tokenizer would fail on it
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else ""
        raise ApiError(400, f"the request body holds a lone surrogate ({bad.encode('unicode_escape').decode()}) "
                            "in a string: that is not valid Unicode text") from None
    return (parse_chat if chat else parse_completion)(body, model)


async def _generate(request: Request, state: ServeState, *, chat: bool) -> Response:
    _authorize(request, state)
    raw = await _read_body(request, state.limits)
    gen = await asyncio.get_running_loop().run_in_executor(state.parser, _parse, raw, state.model, chat)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    submitted = _submit(state, gen, _deliverer(queue))
    shape = Shape.of(chat, state.model.name, submitted.id)
    if gen.stream:
        return StreamingResponse(_stream(state, gen, submitted, shape, queue), media_type="text/event-stream")
    return await _whole(request, state, gen, submitted, shape, queue)


def _deliverer(queue: asyncio.Queue[Event]) -> Callable[[Event], None]:
    """The engine thread's callback: hands an event to this request's queue on the server's event loop."""
    loop = asyncio.get_running_loop()

    def deliver(event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop has closed (the server stopped): nobody listens
            loop.call_soon_threadsafe(queue.put_nowait, event)

    return deliver


def _submit(state: ServeState, gen: GenerationRequest, deliver: Callable[[Event], None]) -> Submitted:
    max_tokens = gen.max_tokens or max(1, state.longest_output(len(gen.prompt_ids)))  # 0: the vet says why
    eos = state.model.eos_token_id
    stop_ids = gen.stop_token_ids | ({eos} if eos is not None and not gen.ignore_eos else set())
    try:
        submitted = state.engine.arrivals.submit(gen.prompt_ids, max_tokens, deliver, stop_ids=frozenset(stop_ids),
                                                 min_tokens=gen.min_tokens)
    except EngineClosed:
        raise ApiError(503, "the server is shutting down") from None
    if submitted.rejected is not None:
        raise ApiError(400, submitted.rejected.detail, "max_tokens", submitted.rejected.kind.value)
    return submitted


def _failure(end: Ended) -> ApiError:
    reason = end.reason
    return ApiError(500, f"the request failed: {reason}", code=reason.kind.value if reason else None)


async def _whole(request: Request, state: ServeState, gen: GenerationRequest, submitted: Submitted, shape: Shape,
                 queue: asyncio.Queue[Event]) -> Response:
    """A non-streaming answer; a client that leaves first cancels the request."""

    out = _output(state, gen)
    pieces: list[str] = []

    async def collect() -> Ended:
        while True:
            event = await queue.get()
            if not isinstance(event, Tokens):
                return event
            if not out.stopped:
                pieces.append(out.add(event.ids, event.stop)[0])
                if out.stopped:
                    state.engine.arrivals.finish(submitted.id)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    collecting, listening = asyncio.ensure_future(collect()), asyncio.ensure_future(disconnected())
    await asyncio.wait({collecting, listening}, return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    if not collecting.done():
        collecting.cancel()
        state.engine.arrivals.cancel(submitted.id)
        return Response(status_code=499)  # nobody reads it: the client has gone
    end = collecting.result()
    if end.status is not Status.COMPLETED and not out.stopped:
        raise _failure(end)
    text = "".join(pieces) + out.flush()
    ids = out.ids
    return JSONResponse(shape.full(text, ids if gen.return_token_ids else None, usage(len(gen.prompt_ids), len(ids)),
                                   out.finish_reason))


def _output(state: ServeState, gen: GenerationRequest) -> Output:
    return Output(Detokenizer(state.model.tokenizer), gen.stop, gen.min_tokens)


async def _stream(state: ServeState, gen: GenerationRequest, submitted: Submitted, shape: Shape,
                  queue: asyncio.Queue[Event]) -> AsyncIterator[bytes]:
    """SSE chunks as tokens arrive; a client that disconnects (the generator is cancelled) cancels the request."""
    out = _output(state, gen)
    first, ended = True, False
    try:
        while True:
            event = await queue.get()
            if isinstance(event, Tokens):
                if out.stopped:
                    continue
                text, ids = out.add(event.ids, event.stop)
                if out.stopped:
                    state.engine.arrivals.finish(submitted.id)  # a no-op when the engine stopped it
                yield sse(shape.chunk(text, ids if gen.return_token_ids else None, first=first))
                first = False
                continue
            ended = True
            if event.status is Status.COMPLETED or out.stopped:
                for chunk in shape.last_chunks(out.flush(), [] if gen.return_token_ids else None, first=first,
                                               finish=out.finish_reason):
                    yield sse(chunk)
                if gen.include_usage:
                    yield sse(shape.usage_chunk(usage(len(gen.prompt_ids), len(out.ids))))
            else:
                yield sse(_failure(event).body())
            yield sse("[DONE]")
            return
    finally:
        if not ended:
            state.engine.arrivals.cancel(submitted.id)


async def _watch(state: ServeState) -> None:
    """Stop the server by itself when its engine died (an error the command reports), after `max_requests`
    ended, or after `idle_exit_s` with none in flight."""
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        state.metrics.sample(state.engine.arrivals)  # the token rate, on this clock rather than the scrapers'
        if state.engine.error is not None:
            state.request_exit()
            return
        stats = state.engine.arrivals.stats()
        ended = sum(stats.ended.values())
        if state.max_requests is not None and ended >= state.max_requests:
            state.request_exit()
            return
        if stats.submitted > ended:
            idle_since = loop.time()
        elif state.idle_exit_s is not None and loop.time() - idle_since >= state.idle_exit_s:
            state.request_exit()
            return
