"""uvicorn's h11 protocol with what it lacks against slow clients: a header timeout and a connection cap.

uvicorn closes idle keep-alive connections, but a connection that sends half a request header is kept for as
long as the client likes, and every such connection holds a descriptor. Here:
- a connection whose request headers are not complete within `header_timeout_s` of its first byte (or of its
  opening) is closed;
- at most `cap` connections are open: one more closes the oldest connection still waiting for its headers (a
  slow client), or, when every connection is busy with a real request, itself. So /health always gets in.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_ORDER = itertools.count()


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = 10.0
    cap: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened = next(_ORDER)
        self.header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configured(cls, header_timeout_s: float, cap: int) -> type[GuardedH11Protocol]:
        return type("GuardedH11Protocol", (cls,), {"header_timeout_s": header_timeout_s, "cap": cap})

    @property
    def waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.cap:
            slow = [c for c in self.connections if isinstance(c, GuardedH11Protocol) and c is not self
                    and c.waiting_for_headers and not c.transport.is_closing()]
            victim = min(slow, key=lambda c: c.opened) if slow else self
            victim.transport.close()
            if victim is self:
                return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.waiting_for_headers and not self.transport.is_closing():
            if self.header_timer is None and self.timeout_keep_alive_task is None:
                self._arm_header_timer()  # a next request begun on a kept-alive connection
        else:
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        self._disarm_header_timer()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self.header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if self.waiting_for_headers and not self.transport.is_closing():
            self.transport.close()
