"""Secrets kept out of everything bsbench writes or prints: API keys checked when read, credentials cut from URLs,
and text that may quote a header (a library's exception message) redacted.

- `check_api_key`: a key is one token of printable ASCII (what an HTTP header can carry). Anything else, a
  trailing newline from `echo > file` or `$(cat key)` included, is a user error that names where the key came
  from and what is wrong with it, never the key itself.
- `url_without_credentials`: `http://alice:pw@host/v1` -> `http://***@host/v1` (for records, logs, console).
- `redact`: bearer tokens, `Authorization:` values, URL credentials and the given secrets replaced by `***`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from bsbench.errors import BsbenchError

MASK = "***"
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\",;]+")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization|x-api-key|api-key)(['\"]?\s*[:=,]\s*['\"]?)"
                          r"(?:(?:bearer|basic)\s+)?[^\s'\",;]+")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")


def check_api_key(value: str, source: str) -> str:
    """`value` when it can be sent as a bearer token; else BsbenchError naming `source` (e.g. "--api-key-env K")
    and the problem, without the value."""
    if not value:
        raise BsbenchError(f"{source}: the API key is empty")
    for position, char in enumerate(value, 1):
        if "\x21" <= char <= "\x7e":
            continue
        what = ("a newline" if char in "\r\n" else "a space" if char.isspace() else
                "a non-ASCII character" if ord(char) > 0x7f else "a control character")
        raise BsbenchError(f"{source}: the API key ({len(value)} characters) has {what} at character {position}; "
                           "a key must be one line of printable ASCII (check for a trailing newline)")
    return value


def url_without_credentials(url: str) -> str:
    """`url` with any user:password@ replaced by ***@; URLs without credentials are returned unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with the given secrets, bearer / basic tokens, auth header values and URL credentials masked."""
    for secret in secrets:
        if secret and secret.strip():
            text = text.replace(secret.strip(), MASK)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{MASK}@", text)
