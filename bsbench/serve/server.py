"""Run the app under uvicorn on one socket, with the engine on its own thread.

Shutdown (SIGINT, SIGTERM, --max-requests, --idle-exit): uvicorn stops accepting; the
engine is closed at once, so in-flight requests end failed ("the server shut down") and
their responses finish; then the engine thread is joined. After a signal uvicorn raises it
again once it has shut down, so `bsbench` exits 130 / 143 as after an interrupted run
(cli.py); a server that stopped by itself exits 0.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from bsbench.backends.fit_checks import longest_output, request_misfit
from bsbench.engine.clock import WallClock
from bsbench.engine.loop import Engine
from bsbench.engine.online import EngineThread
from bsbench.record.reasons import EndKind, EndReason
from bsbench.schedulers.base import Scheduler
from bsbench.serve.app import ServeState, build_app
from bsbench.serve.guarded_protocol import GuardedH11Protocol
from bsbench.serve.limits import ServeLimits
from bsbench.serve.metrics import ServeMetrics
from bsbench.serve.quiet_logs import quiet_repeats
from bsbench.serve.requests import ServedModel
from bsbench.workloads.tokenizer import TokenizerHandle

SHUTDOWN = EndReason(EndKind.INTERRUPTED, "the server shut down")
JOIN_TIMEOUT_S = 30


class _Server(uvicorn.Server):
    """uvicorn's server, closing the engine as soon as it is told to exit (before it waits for connections), and
    calling `on_ready` once it has started (the app's startup done, the socket served)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None],
                 on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_exit = on_exit
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)


def serve_state(session: Any, policy: Scheduler, tokenizer: TokenizerHandle, *, name: str | None = None,
                max_requests: int | None = None, idle_exit_s: float | None = None,
                limits: ServeLimits | None = None, api_key: str | None = None) -> ServeState:
    """The server's state for `policy` over `session` (a bench.ModelSession on the wall clock): an online engine
    that rejects what `bench.request_misfit` refuses, its metrics, the served name (default: the model's), the
    limits a client meets (default: ServeLimits()) and the API key /v1/* asks for (None: open)."""
    limits = limits or ServeLimits()
    engine = Engine(policy, session.runner, events=policy.ctx.events, blocks=policy.ctx.block_manager,
                    clock=WallClock())
    served_name = name or session.info.name
    metrics = ServeMetrics(served_name)
    thread = EngineThread(engine, lambda spec: request_misfit(spec, session.info, policy), on_end=metrics.observe_end)
    metrics.attach(thread.arrivals, policy.ctx.block_manager)
    model = ServedModel(served_name, tokenizer, session.info.vocab_size, limits.max_prompt_chars,
                        tokenizer.eos_token_id)
    return ServeState(thread, model, policy.name, metrics, max_requests, idle_exit_s, limits=limits,
                      api_key=api_key, longest_output=lambda prompt_len: longest_output(prompt_len, session.info,
                                                                                        policy))


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: a free one), bound before the app starts so its address can be told."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(state: ServeState, sock: socket.socket, log_level: str = "warning",
          on_ready: Callable[[], None] | None = None) -> None:
    """Serve until told to stop; the engine is started here and stopped (joined) on the way out. `on_ready` is
    called once the server answers requests (where the command prints its URL)."""
    limits = state.limits
    protocol = GuardedH11Protocol.configured(limits.header_timeout_s, limits.connection_cap())
    config = uvicorn.Config(build_app(state), log_level=log_level, timeout_graceful_shutdown=JOIN_TIMEOUT_S,
                            lifespan="on", http=protocol, timeout_keep_alive=max(1, round(limits.keep_alive_s)),
                            h11_max_incomplete_event_size=limits.max_header_bytes)
    stop_engine = lambda: state.engine.arrivals.close(SHUTDOWN)  # noqa: E731
    server = _Server(config, stop_engine, on_ready)

    def request_exit() -> None:
        stop_engine()
        server.should_exit = True

    state.request_exit = request_exit
    state.engine.start()
    try:
        with quiet_repeats():
            server.run(sockets=[sock])
    finally:
        state.engine.stop(SHUTDOWN, timeout=JOIN_TIMEOUT_S)
        sock.close()
