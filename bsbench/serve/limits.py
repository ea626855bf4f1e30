"""What one client may cost `bsbench serve`: the bounds a hostile or broken client meets, and their defaults.

    max_body_bytes       4 MiB   a larger body gets 413 (a Content-Length over it before a byte is read)
    max_prompt_chars     1 Mi    a longer text prompt (or chat messages' text) gets 400 before tokenising
    body_timeout_s       30 s    a body not fully received by then gets 408
    header_timeout_s     10 s    a connection whose request headers are not complete by then is closed
    keep_alive_s         5 s     an idle keep-alive connection is closed (uvicorn's timeout_keep_alive)
    max_header_bytes     64 KiB  request headers larger than this get 400 (h11's max incomplete event size)
    max_connections      1,000   open connections at most (and at most the descriptor limit less a reserve): a
                                 connection over it closes the oldest one still waiting for its headers, else
                                 itself, so slow clients cannot keep /health out

Tokenising (and JSON decoding) runs on a worker thread: the event loop, and /health, never wait for it.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

FD_RESERVE = 64  # descriptors kept for the model, the tokenizer, logs, and the listening socket


@dataclass(slots=True, frozen=True)
class ServeLimits:
    max_body_bytes: int = 4 << 20
    max_prompt_chars: int = 1 << 20
    body_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_header_bytes: int = 64 << 10
    max_connections: int = 1000

    def connection_cap(self) -> int:
        """`max_connections`, lowered below this process's descriptor limit (soft RLIMIT_NOFILE)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - FD_RESERVE))
