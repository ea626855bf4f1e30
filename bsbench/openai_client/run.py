"""`run_openai`: one replay of a workload against an OpenAI-compatible server, written as a run record."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
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
               progress: Progress | None = None, save: bool = True) -> RunRecord:
    """Replay `workload` against the server of `options` (open loop, see the package docstring), save the record
    in `out_dir` (unless not `save`) and return it. An unreachable server (model discovery or warm-up failing)
    is a user error before the run; once the run has begun every failure is a request's typed reason.
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
    served_model = asyncio.run(_prepare(httpx, options, headers, workload.requests, prompts, url))

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
                          warmed_up=options.warmup_requests)
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
                   prompts: dict[str, str], url: str) -> str:
    """The served model (asked of /v1/models when not given), then the warm-up requests, one at a time."""
    async with _client(httpx, options) as client:
        model = options.served_model or await _first_model(client, options, headers)
        for i in range(options.warmup_requests):
            spec = specs[i % len(specs)]
            exchange = Exchange(f"warmup-{i}")
            await run_exchange(client, url, request_body(spec, prompts.get(spec.id), model, options), headers,
                               options.endpoint, options.request_timeout_s, exchange)
            if exchange.failure is not None:
                raise BsbenchError(f"warm-up request {i + 1} to {url_without_credentials(url)} failed "
                                   f"({exchange.failure}); is the server up?")
    return model


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
