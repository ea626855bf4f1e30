"""The open loop: each request leaves at its scheduled arrival, whatever the server does.

The loop sleeps until a request's due time, starts its task and moves on; it never waits for a response (no
coordinated omission). With `max_concurrency` it waits for a free slot first (a closed loop: such waits show
as lateness). With `duration_s` it stops submitting once that much time has passed; what was not submitted
is counted, never recorded as a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bsbench.openai_client.exchange import INTERRUPTED, Exchange
from bsbench.workloads.request import RequestSpec

Send = Callable[[RequestSpec, Exchange], Awaitable[None]]


@dataclass(slots=True)
class Dispatch:
    """What the loop did. Filled as it goes, so that an interrupted run still has every submitted request:
    `exchanges[i]` belongs to `specs[i]` of the first len(exchanges) specs. Times are time.perf_counter()."""

    start: float = 0.0
    end: float | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    unsent: int = 0
    peak_in_flight: int = 0
    stopping: bool = False  # the run was cancelled (Ctrl-C): failures from then on are the stop's doing


async def dispatch(specs: Sequence[RequestSpec], send: Send, state: Dispatch, *, max_concurrency: int | None = None,
                   duration_s: float | None = None, on_end: Callable[[Exchange], None] | None = None) -> None:
    """Replay `specs` (sorted by arrival) through `send`, recording into `state`; returns when every submitted
    request has ended."""
    slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    tasks: list[asyncio.Task[None]] = []
    in_flight = 0

    async def one(spec: RequestSpec, exchange: Exchange) -> None:
        nonlocal in_flight
        in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, in_flight)
        try:
            await send(spec, exchange)
        finally:
            if state.stopping and exchange.failure is not None:  # a connection torn down by the stop
                exchange.failure = INTERRUPTED
            in_flight -= 1
            if slots is not None:
                slots.release()
            if on_end is not None:
                on_end(exchange)

    state.start = time.perf_counter()
    try:
        for index, spec in enumerate(specs):
            if duration_s is not None and spec.arrival_s >= duration_s:
                state.unsent = len(specs) - index
                break
            delay = state.start + spec.arrival_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if slots is not None:
                await slots.acquire()
                if duration_s is not None and time.perf_counter() - state.start >= duration_s:
                    slots.release()
                    state.unsent = len(specs) - index
                    break
            exchange = Exchange(spec.id)
            state.exchanges.append(exchange)
            tasks.append(asyncio.create_task(one(spec, exchange)))
        if tasks:
            await asyncio.wait(tasks)  # unlike gather, a cancel of this task reaches the handler below first
        for task in tasks:  # a bug in a request's code is not a request's failure: raise it
            task.result()
    except asyncio.CancelledError:
        state.stopping = True
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        raise
    finally:
        state.end = time.perf_counter()
