"""Server-sent events of an OpenAI streaming response, parsed into the few facts the client times."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class StreamFormatError(ValueError):
    """An event that is not the OpenAI streaming format (or a cut-off piece of one)."""


@dataclass(slots=True, frozen=True)
class StreamEvent:
    """One `data:` event. `done`: the final `[DONE]`. `error`: the server's in-stream error message."""

    done: bool = False
    text: str = ""
    token_ids: tuple[int, ...] = ()
    finish_reason: str | None = None
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    error: str | None = None

    @property
    def tokens(self) -> int:
        """Tokens this event carries as far as the client can tell: its ids, else one for a piece of text."""
        return len(self.token_ids) or (1 if self.text else 0)


def data_payload(line: str) -> str | None:
    """The data of an SSE `data:` line; None for blank lines, comments and other fields (event:, id:, retry:)."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


def parse_event(payload: str, endpoint: str) -> StreamEvent:
    """The event of one `data:` payload of a completions or chat stream; StreamFormatError when malformed."""
    if payload == "[DONE]":
        return StreamEvent(done=True)
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError:
        raise StreamFormatError(f"event is not JSON: {payload[:60]!r}") from None
    if not isinstance(obj, dict):
        raise StreamFormatError(f"event is not an object: {payload[:60]!r}")
    if obj.get("error") is not None:
        error = obj["error"]
        return StreamEvent(error=str(error.get("message", error) if isinstance(error, dict) else error))
    usage = obj.get("usage") or {}
    choices = obj.get("choices") or []
    if not isinstance(choices, list) or not isinstance(usage, dict):
        raise StreamFormatError("'choices' must be a list and 'usage' an object")
    text, finish = "", None
    ids: tuple[int, ...] = ()
    if choices:
        choice = choices[0]
        if not isinstance(choice, dict):
            raise StreamFormatError("a choice must be an object")
        text = _text(choice, endpoint)
        ids = _token_ids(choice)
        finish = choice.get("finish_reason")
    return StreamEvent(text=text, token_ids=ids, finish_reason=finish if isinstance(finish, str) else None,
                       completion_tokens=_count(usage, "completion_tokens"),
                       prompt_tokens=_count(usage, "prompt_tokens"))


def _text(choice: dict[str, Any], endpoint: str) -> str:
    delta = choice.get("delta")
    if endpoint == "chat" and delta is not None and not isinstance(delta, dict):
        raise StreamFormatError("a chat choice's 'delta' must be an object")
    value = (delta or {}).get("content") if endpoint == "chat" else choice.get("text")
    if value is not None and not isinstance(value, str):
        raise StreamFormatError("a choice's text must be a string")
    return value or ""


def _token_ids(choice: dict[str, Any]) -> tuple[int, ...]:
    """vLLM's spelling with return_token_ids: the choice's `token_ids` (the delta's in chat, where some put it)."""
    ids = choice.get("token_ids")
    if ids is None and isinstance(choice.get("delta"), dict):
        ids = choice["delta"].get("token_ids")
    if ids is None:
        return ()
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise StreamFormatError("'token_ids' must be a list of integers")
    return tuple(ids)


def _count(usage: dict[str, Any], key: str) -> int | None:
    value = usage.get(key)
    return value if type(value) is int and value >= 0 else None
