"""One request over HTTP: send, read the stream, time every token chunk, end with a typed reason on failure."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from bsbench.errors import first_line
from bsbench.openai_client.bounded import bounded_lines, read_capped
from bsbench.openai_client.options import MAX_ERROR_BODY_BYTES, MAX_SSE_LINE_BYTES
from bsbench.openai_client.sse import StreamFormatError, data_payload, parse_event
from bsbench.record.reasons import EndKind, EndReason
from bsbench.redaction import redact

_DETAIL_CHARS = 200  # of a server's error body kept in a reason


@dataclass(slots=True)
class Exchange:
    """What the client saw of one request. Times are time.perf_counter() seconds; `token_times` has one entry per
    token when the server returns token ids, else one per chunk with text. `failure` is None exactly when the
    stream ended properly (its finish_reason or [DONE] seen)."""

    request_id: str
    sent_at: float = 0.0
    http_status: int | None = None  # the response's status code, once it came
    token_times: list[float] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    counted_tokens: int = 0
    usage_tokens: int | None = None
    server_prompt_tokens: int | None = None
    finish_reason: str | None = None
    finished_at: float | None = None
    failure: EndReason | None = None
    usage_rejected: str | None = None  # why the server's usage was not believed (then counted_tokens is used)
    ended: bool = False  # set last: the request is over (whatever its outcome)

    @property
    def counted_by(self) -> str:
        """How `counted_tokens` was counted: 'token-ids' (the ids the server returned) or 'chunks'."""
        return "token-ids" if self.token_ids else "chunks"

    @property
    def output_tokens(self) -> int:
        """The output length to account: the server's usage unless absent or rejected, else what was counted."""
        return self.usage_tokens if self.usage_tokens is not None and self.usage_rejected is None \
            else self.counted_tokens

    def check_usage(self, asked: int | None) -> None:
        """Reject a usage count the stream contradicts: more than `asked` (max_tokens), unlike the token ids
        returned, or fewer than the chunks that carried text (each carries at least one token)."""
        usage, counted = self.usage_tokens, self.counted_tokens
        if usage is None:
            return
        if asked is not None and usage > asked:
            self.usage_rejected = f"usage claims {usage} tokens, more than the {asked} asked for"
        elif self.token_ids and usage != counted:
            self.usage_rejected = f"usage claims {usage} tokens, the stream returned {counted} token ids"
        elif usage < counted:
            self.usage_rejected = f"usage claims {usage} tokens, fewer than the {counted} chunks with text"


async def run_exchange(client: Any, url: str, body: dict[str, Any], headers: dict[str, str], endpoint: str,
                       timeout_s: float, exchange: Exchange) -> None:
    """Send `body` to `url` and fill `exchange` as the stream arrives (`client` is an httpx.AsyncClient).
    Never raises but CancelledError (then the request is marked interrupted). The failure's detail is redacted
    here, the one place a request's failure is settled: no header value (the API key) or URL credential in an
    exception's or a server's text reaches a record."""
    exchange.sent_at = time.perf_counter()
    responded = False
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", url, json=body, headers=headers) as response:
                responded = True
                exchange.http_status = response.status_code
                if response.status_code >= 300:  # redirects are not followed: a benchmark names its server
                    exchange.failure = await _http_error(response)
                else:
                    await _read_stream(response, endpoint, exchange)
                    exchange.check_usage(body.get("max_tokens"))
    except Exception as exc:  # every failure of the request's own becomes its typed reason
        exchange.failure = _failure(exc, timeout_s, exchange, responded)
    except BaseException:  # cancelled, or a Ctrl-C raised inside this task's step
        exchange.failure = INTERRUPTED
        raise
    finally:
        if exchange.failure is not None:
            exchange.failure = EndReason(exchange.failure.kind, redact(exchange.failure.detail, headers.values()))
        if exchange.finished_at is None:
            exchange.finished_at = time.perf_counter()
        exchange.ended = True


INTERRUPTED = EndReason(EndKind.INTERRUPTED, "the run was stopped while the request was in flight")


def _failure(exc: Exception, timeout_s: float, exchange: Exchange, responded: bool) -> EndReason:
    """The typed reason of an exception that ended a request. Unknown exceptions are bugs: re-raised."""
    # lazy: httpx is heavy
    import httpx

    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:  # the run was stopped; httpx may surface that as a read error
        return INTERRUPTED
    chunks = len(exchange.token_times)
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return EndReason(EndKind.TIMEOUT, f"no complete response within {timeout_s:g} s ({chunks} token chunks)")
    if isinstance(exc, httpx.ConnectError):
        return EndReason(EndKind.CONNECTION, f"cannot connect: {first_line(exc)}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)):
        what = "stream broke" if responded else "connection lost"
        return EndReason(EndKind.STREAM_CUT if responded else EndKind.CONNECTION,
                         f"{what} after {chunks} token chunks: {first_line(exc)}")
    if isinstance(exc, httpx.HTTPError):
        return EndReason(EndKind.CONNECTION, f"{type(exc).__name__}: {first_line(exc)}")
    if isinstance(exc, StreamFormatError):
        return EndReason(EndKind.BAD_RESPONSE, str(exc))
    raise exc


async def _read_stream(response: Any, endpoint: str, exchange: Exchange) -> None:
    """Read SSE lines to the end. A malformed event followed by more events is a bad response; one that is the
    last thing before the stream ends is a cut-off piece (stream-cut)."""
    done = False
    broken: str | None = None
    async for line in bounded_lines(response, MAX_SSE_LINE_BYTES):
        payload = data_payload(line)
        if payload is None or not payload or done:  # read on after [DONE]: a body read to its end keeps the
            continue                                 # connection for the next request (else it is closed)
        now = time.perf_counter()
        if broken is not None:
            raise StreamFormatError(broken)
        try:
            event = parse_event(payload, endpoint)
        except StreamFormatError as exc:
            broken = str(exc)
            continue
        if event.done:
            done = True
            exchange.finished_at = now
            continue
        if event.error is not None:
            exchange.failure = EndReason(EndKind.HTTP_ERROR, f"error in stream: {event.error[:_DETAIL_CHARS]}")
            return
        if event.tokens:
            exchange.token_times.extend([now] * event.tokens)
            exchange.token_ids.extend(event.token_ids)
            exchange.counted_tokens += event.tokens
        if event.finish_reason is not None:
            exchange.finish_reason = event.finish_reason
        if event.completion_tokens is not None:
            exchange.usage_tokens = event.completion_tokens
        if event.prompt_tokens is not None:
            exchange.server_prompt_tokens = event.prompt_tokens
    if exchange.finished_at is None:
        exchange.finished_at = time.perf_counter()
    if broken is not None:
        exchange.failure = EndReason(EndKind.STREAM_CUT, f"the stream ended inside an event ({broken})")
    elif not done and exchange.finish_reason is None:
        exchange.failure = EndReason(EndKind.STREAM_CUT, f"the stream ended after {exchange.counted_tokens} tokens "
                                                         "without a finish_reason or [DONE]")


async def _http_error(response: Any) -> EndReason:
    """An error status (or a redirect) as a reason, with the message of at most MAX_ERROR_BODY_BYTES of body."""
    status = response.status_code
    if 300 <= status < 400:
        where = response.headers.get("location", "")[:_DETAIL_CHARS]
        return EndReason(EndKind.HTTP_ERROR, f"HTTP {status}: a redirect (to {where or 'nowhere'}), not followed")
    body, _ = await read_capped(response, MAX_ERROR_BODY_BYTES)
    return EndReason(EndKind.HTTP_ERROR, f"HTTP {status}: {_error_message(body.decode('utf-8', errors='replace'))}")


def _error_message(text: str) -> str:
    """The message of an OpenAI-style error body ({"error": {"message": ...}} or {"message": ...}), else the text."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:_DETAIL_CHARS] or "(empty body)"
    if isinstance(obj, dict):
        inner = obj.get("error", obj)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)[:_DETAIL_CHARS]
    return text.strip()[:_DETAIL_CHARS]
