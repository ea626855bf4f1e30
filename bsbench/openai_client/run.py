"""`run_openai`: one replay of a workload against an OpenAI-compatible server, written as a run record."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError, first_line
from bsbench.interrupts import InterruptedRun
from bsbench.openai_client.assemble import build_record
from bsbench.openai_client.body import request_body
from bsbench.openai_client.bounded import read_capped
from bsbench.openai_client.dispatch import Dispatch, dispatch
from bsbench.openai_client.exchange import Exchange, run_exchange
from bsbench.openai_client.options import ENDPOINT_PATHS, MAX_MODELS_BODY_BYTES, ClientOptions, check_options
from bsbench.progress import Progress, rate_text
from bsbench.record import RunRecord, save_record
from bsbench.redaction import redact, url_without_credentials
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.tokenizer import load_tokenizer
from bsbench.workloads.workload import Workload

INSTALL_HINT = "pip install 'bsbench[http]'"
# httpcore's pool scans every connection of a client for each request (cost ~ connections in flight): requests
# are spread over this many clients, so that a backlog of thousands in flight does not make the client itself slow
CLIENT_SHARDS = 16
_MODELS_TIMEOUT_S = 10.0
VLLM_ONLY_FIELDS = ("min_tokens", "return_token_ids", "ignore_eos")  # what strict_openai leaves out
_REFUSAL_STATUSES = (400, 422)  # a server that validates its bodies refuses unknown fields with these


@dataclass(slots=True, frozen=True)
class Prepared:
    """What the steps before the timed run settled: the served model, the options the run goes with (strict
    when the server refused the vLLM-only fields) and, then, the server's refusal."""

    model: str
    options: ClientOptions
    strict_fallback: str | None = None


def require_httpx() -> Any:
    """The httpx module; without it a one-line user error naming the install command."""
    try:
        # lazy: httpx is heavy
        import httpx
    except ImportError:
        raise BsbenchError(f"--backend openai needs httpx: {INSTALL_HINT}") from None
    return httpx


def run_openai(workload: Workload, options: ClientOptions, *, out_dir: Path, record_tokens: bool = False,
               percentiles: tuple[float, ...] = (50, 90, 99), repeat: int = 0, base_seed: int | None = None,
               progress: Progress | None = None, save: bool = True,
               notify: Callable[[str], None] | None = None) -> RunRecord:
    """Replay `workload` against the server of `options` (open loop, see the package docstring), save the record
    in `out_dir` (unless not `save`) and return it. Before the run, as vLLM: model discovery, one test request
    (the first request, unless not `options.test_request`) and the warm-ups; any of them failing is a user error
    (exit 2) with the server's reason, and nothing is timed. A test request refused (HTTP 400/422) for the
    vLLM-only fields is sent again strict: if that works the whole run goes strict, `notify` is told and the
    record's scheduler section keeps the refusal (`strict_fallback`). Once the run has begun every failure is a
    request's typed reason.
    Ctrl-C ends the run early: in-flight requests fail as interrupted, the record is written marked incomplete,
    and bench.InterruptedRun is raised after."""

    httpx = require_httpx()
    check_options(options)
    if not workload.requests:
        raise BsbenchError("the workload has no requests")
    shown = progress or Progress(enabled=False)
    prompts = _prompt_texts(workload, options)
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    url = options.url(ENDPOINT_PATHS[options.endpoint])
    prepared = asyncio.run(_prepare(httpx, options, headers, workload.requests, prompts, url))
    options, served_model = prepared.options, prepared.model
    if prepared.strict_fallback is not None and notify is not None:
        notify(f"server refused the vLLM-only fields ({', '.join(VLLM_ONLY_FIELDS)}): {prepared.strict_fallback}: "
               "running strict (as --strict-openai)")

    async def send(client: Any, spec: RequestSpec, exchange: Exchange) -> None:
        body = request_body(spec, prompts.get(spec.id), served_model, options)
        await run_exchange(client, url, body, headers, options.endpoint, options.request_timeout_s, exchange)

    state = Dispatch()
    complete = True
    with shown.task(f"openai {served_model} @ {options.shown_url}", total=len(workload.requests),
                    unit="requests") as task:
        ended = [0, 0]  # requests, tokens

        def on_end(exchange: Exchange) -> None:
            ended[0] += 1
            ended[1] += exchange.output_tokens
            task.update(ended[0], detail=rate_text(ended[1], task.elapsed_s, "tok/s"))

        async def main() -> None:
            async with contextlib.AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(_client(httpx, options)) for _ in range(CLIENT_SHARDS)]
                turn = itertools.count()
                await dispatch(workload.requests, lambda spec, ex: send(clients[next(turn) % CLIENT_SHARDS], spec, ex),
                               state, max_concurrency=options.max_concurrency, duration_s=options.duration_s,
                               on_end=on_end)

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            complete = False
            if state.end is None:
                state.end = time.perf_counter()
    record = build_record(workload, state, options, served_model, record_tokens=record_tokens,
                          percentiles=percentiles, repeat=repeat, base_seed=base_seed, complete=complete,
                          warmed_up=options.warmup_requests, strict_fallback=prepared.strict_fallback)
    if save:
        save_record(record, out_dir)
    if not complete:
        raise InterruptedRun(record)
    return record


def _client(httpx: Any, options: ClientOptions) -> Any:
    """One connection per in-flight request (no pool limit: a pool wait would be coordinated omission)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(options.request_timeout_s), follow_redirects=False,
                             limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))


async def _prepare(httpx: Any, options: ClientOptions, headers: dict[str, str], specs: list[RequestSpec],
                   prompts: dict[str, str], url: str) -> Prepared:
    """The served model (asked of /v1/models when not given), the test request (strict again when refused for
    the vLLM-only fields), then the warm-up requests, one at a time."""
    shown = url_without_credentials(url)
    async with _client(httpx, options) as client:
        model = options.served_model or await _first_model(client, options, headers)

        async def send_one(spec: RequestSpec, sent: ClientOptions, name: str) -> Exchange:
            exchange = Exchange(name)
            await run_exchange(client, url, request_body(spec, prompts.get(spec.id), model, sent), headers,
                               sent.endpoint, sent.request_timeout_s, exchange)
            return exchange

        fallback = None
        if options.test_request:
            test = await send_one(specs[0], options, "test")
            if _refused_vllm_fields(test, options):
                fallback = _one_line(test.failure.detail if test.failure else "")
                options = dataclasses.replace(options, strict_openai=True)
                test = await send_one(specs[0], options, "test-strict")
            if test.failure is not None:
                strict = f" (strict too, after: {fallback})" if fallback else ""
                raise BsbenchError(f"the test request to {shown} failed{strict}: {_one_line(test.failure.detail)}; "
                                   "nothing was timed")
        for i in range(options.warmup_requests):
            exchange = await send_one(specs[i % len(specs)], options, f"warmup-{i}")
            if exchange.failure is not None:
                raise BsbenchError(f"warm-up request {i + 1} to {shown} failed "
                                   f"({exchange.failure}); is the server up?")
    return Prepared(model, options, fallback)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _refused_vllm_fields(exchange: Exchange, options: ClientOptions) -> bool:
    """Whether a failed request may have been refused for the vLLM-only fields: it sent them and got 400/422."""
    return (not options.strict_openai and exchange.failure is not None
            and exchange.http_status in _REFUSAL_STATUSES
            and not any(key in dict(options.extra_body) for key in VLLM_ONLY_FIELDS))


async def _first_model(client: Any, options: ClientOptions, headers: dict[str, str]) -> str:
    """The first model id the server lists; unreachable or empty is a user error naming --served-model."""
    # lazy: httpx is heavy
    import httpx

    url = options.url("/models")
    try:
        async with client.stream("GET", url, headers=headers, timeout=_MODELS_TIMEOUT_S) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body, more = await read_capped(response, MAX_MODELS_BODY_BYTES)
        if more:
            raise ValueError(f"the answer passes {MAX_MODELS_BODY_BYTES:,} bytes")
        models = json.loads(body).get("data") or []
        return str(models[0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        why = redact(first_line(exc), headers.values())
        raise BsbenchError(f"cannot list the served models at {url_without_credentials(url)} ({why}); is the "
                           "server up? (or name the model with --served-model)") from None


def _prompt_texts(workload: Workload, options: ClientOptions) -> dict[str, str]:
    """Request id -> the prompt as text (the workload's token ids decoded with its own tokenizer); empty when the
    prompts go as token ids. The server re-tokenizes text: its prompt length is in each row's notes."""
    if options.prompt_as == "token-ids":
        return {}

    tokenizer = load_tokenizer(workload.tokenizer)
    return {spec.id: tokenizer.decode(spec.prompt_ids) for spec in workload.requests}
