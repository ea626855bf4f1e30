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

import uvicorn

from bsbench.record.reasons import EndKind, EndReason
from bsbench.serve.app import ServeState, build_app

SHUTDOWN = EndReason(EndKind.INTERRUPTED, "the server shut down")
JOIN_TIMEOUT_S = 30.0


class _Server(uvicorn.Server):
    """uvicorn's server, closing the engine as soon as it is told to exit (before it waits for connections)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: a free one), bound before the app starts so its address can be told."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(state: ServeState, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve until told to stop; the engine is started here and stopped (joined) on the way out."""
    config = uvicorn.Config(build_app(state), log_level=log_level, timeout_graceful_shutdown=JOIN_TIMEOUT_S,
                            lifespan="on")
    stop_engine = lambda: state.engine.arrivals.close(SHUTDOWN)  # noqa: E731
    server = _Server(config, stop_engine)

    def request_exit() -> None:
        stop_engine()
        server.should_exit = True

    state.request_exit = request_exit
    state.engine.start()
    try:
        server.run(sockets=[sock])
    finally:
        state.engine.stop(SHUTDOWN, timeout=JOIN_TIMEOUT_S)
        sock.close()
