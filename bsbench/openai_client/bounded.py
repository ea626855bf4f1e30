"""A response body read with bounds: decompressed here, a piece at a time, so that what is counted is what would
be held. A gzip bomb or an endless SSE line ends the request (`ResponseTooLarge`) after at most the limit plus
one piece in memory, never the whole thing.

httpx's own decoders inflate a network chunk in one call (a 64 KiB gzip chunk can become 64 MiB); here the raw
bytes go through zlib with `max_length`, so no decoded piece passes PIECE_BYTES.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from bsbench.openai_client.sse import StreamFormatError

PIECE_BYTES = 64 * 1024
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class ResponseTooLarge(StreamFormatError):
    """A body or an SSE line passed its bound (a bad response: the server is not what it claims)."""


async def decoded_pieces(response: Any) -> AsyncIterator[bytes]:
    """The body of an httpx streaming `response`, decoded (identity, gzip, deflate), in pieces of at most
    PIECE_BYTES; the caller bounds how many it keeps."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding != "identity" and encoding not in _WBITS:
        raise StreamFormatError(f"unsupported content-encoding {encoding[:40]!r}")
    inflater = zlib.decompressobj(_WBITS[encoding]) if encoding != "identity" else None
    async for raw in response.aiter_raw():
        for piece in _inflate(inflater, raw):
            yield piece


def _inflate(inflater: Any, raw: bytes) -> Iterator[bytes]:
    """The pieces of one raw chunk, inflated lazily: a reader that stops early stops the inflating too."""
    if inflater is None:
        yield from (raw[i:i + PIECE_BYTES] for i in range(0, len(raw), PIECE_BYTES))
        return
    data = raw
    while True:
        try:
            piece = inflater.decompress(data, PIECE_BYTES)
        except zlib.error as exc:
            raise StreamFormatError(f"the compressed body is corrupt ({exc})") from None
        if piece:
            yield piece
        data = inflater.unconsumed_tail
        if not data and len(piece) < PIECE_BYTES:  # a full piece may leave output inside zlib: ask again
            return


async def read_capped(response: Any, limit: int) -> tuple[bytes, bool]:
    """At most `limit` decoded bytes of the body, and whether there was more (the rest is not read)."""
    kept = bytearray()
    async for piece in decoded_pieces(response):
        kept += piece[: limit - len(kept)]
        if len(kept) >= limit:
            return bytes(kept), True
    return bytes(kept), False


async def bounded_lines(response: Any, max_line: int) -> AsyncIterator[str]:
    """The body's lines (LF, CRLF or CR ends, as SSE allows), each at most `max_line` bytes, else
    ResponseTooLarge. The body as a whole is not bounded: a long stream of short lines is a long generation."""
    pending = b""
    async for piece in decoded_pieces(response):
        pending += piece
        *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        for line in lines:
            if len(line) > max_line:
                raise ResponseTooLarge(f"an SSE line passes {max_line:,} bytes")
            yield line.decode("utf-8", errors="replace")
        if len(pending) > max_line:
            raise ResponseTooLarge(f"an SSE line passes {max_line:,} bytes")
    if pending:
        yield pending.decode("utf-8", errors="replace")
