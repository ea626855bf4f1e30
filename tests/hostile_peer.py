"""A hostile HTTP peer for the client tests and the fault suite: a raw socket server on 127.0.0.1 that answers
every request with the same canned bytes (whatever HTTP/1.1 it likes: gzip bombs, endless lines, redirects,
malformed chunks). It reads each request whole before answering, closes the connection after, and stops by
itself after `lifetime_s`."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import socketserver
import threading
from typing import Any


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            got = sock.recv(65536)
            if not got:
                return
            data += got
        head, body = data.split(b"\r\n\r\n", 1)
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            got = sock.recv(65536)
            if not got:
                return
            body += got
        peer: CannedPeer = self.server.peer  # type: ignore[attr-defined]
        peer.requests += 1
        try:
            sock.sendall(peer.answer)
        except OSError:
            pass  # the client gave up reading: that is its right


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class CannedPeer:
    """`with CannedPeer(answer) as peer:` -> peer.url (http://127.0.0.1:PORT/v1); peer.requests counts them."""

    def __init__(self, answer: bytes, lifetime_s: float = 30.0) -> None:
        self.answer = answer
        self.requests = 0
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.peer = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime_s, self.server.shutdown)
        self.timer.daemon = True

    def __enter__(self) -> CannedPeer:
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def response(status: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 response that closes its connection (a body without Content-Length runs to the close)."""
    lines = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sse_answer(*events: Any, chat: bool = False) -> bytes:
    """A 200 event stream of `events` (objects are JSON-encoded; bytes go as they are), then [DONE]."""
    body = b"".join(e if isinstance(e, bytes) else f"data: {json.dumps(e)}\n\n".encode() for e in events)
    return response("200 OK", body + b"data: [DONE]\n\n", {"Content-Type": "text/event-stream"})


def text_chunk(text: str, finish: str | None = None, **more: Any) -> dict[str, Any]:
    return {"id": "x", "object": "text_completion", "choices": [{"index": 0, "text": text,
                                                                  "finish_reason": finish}], **more}


def gzip_bomb(status: str, expanded_bytes: int) -> bytes:
    """An error response whose gzip body inflates to `expanded_bytes` of zeros (about 1,000 times its size)."""
    body = gzip.compress(b"\0" * expanded_bytes, compresslevel=9)
    return response(status, body, {"Content-Encoding": "gzip", "Content-Length": str(len(body)),
                                   "Content-Type": "application/json"})


def raw_exchange(url: str, request: bytes, timeout_s: float = 5.0) -> bytes:
    """Send `request` on a fresh connection to `url` (http://HOST:PORT) and read until the server closes it,
    answers 413 (it may not read the rest) or `timeout_s` passes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        got = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                got += chunk
                if b"\r\n\r\n" in got and b" 413 " in got.split(b"\r\n", 1)[0]:
                    break
        return got
