"""Response bodies and stream chunks in OpenAI's layout (completions and chat), and incremental detokenizing.

`finish_reason` is "stop" (EOS, a stop token or string: serve/output.py) or "length". With
`return_token_ids` each choice carries `token_ids` (vLLM's spelling): all generated ids
in a full response, the chunk's new ids in a stream chunk. Every body carries a
`system_fingerprint` (SYSTEM_FINGERPRINT), and a chat stream's last chunk has the empty delta `{}` with the
finish reason, as OpenAI sends it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from bsbench.workloads.tokenizer import TokenizerHandle

SYSTEM_FINGERPRINT = "bsbench-serve"  # one engine, one build: what OpenAI clients expect to find


@dataclass(slots=True)
class Detokenizer:
    """Text of a growing token list, handed out in pieces that join to the text of all of it. A piece never
    ends in a broken UTF-8 sequence (held back until the next token completes it, or until `flush`). Only the
    ids since the last piece are decoded again (with the ones before it as context), not the whole output."""

    tokenizer: TokenizerHandle
    ids: list[int] = field(default_factory=list)
    prefix: int = 0  # ids[prefix:read] give the context text already handed out
    read: int = 0

    def add(self, ids: list[int]) -> str:
        self.ids.extend(ids)
        decode = self.tokenizer.decode
        known = decode(self.ids[self.prefix:self.read])
        text = decode(self.ids[self.prefix:])
        if text.endswith("\ufffd") or len(text) <= len(known):
            return ""
        self.prefix, self.read = self.read, len(self.ids)
        return text[len(known):]

    def flush(self) -> str:
        decode = self.tokenizer.decode
        text, known = decode(self.ids[self.prefix:]), decode(self.ids[self.prefix:self.read])
        self.prefix = self.read = len(self.ids)
        return text[len(known):]


@dataclass(slots=True, frozen=True)
class Shape:
    """How one endpoint spells its bodies."""

    chat: bool
    model: str
    id: str
    created: int

    @classmethod
    def of(cls, chat: bool, model: str, req_id: str) -> Shape:
        return cls(chat, model, f"{'chatcmpl' if chat else 'cmpl'}-{req_id}", int(time.time()))

    def _envelope(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": SYSTEM_FINGERPRINT}

    def full(self, text: str, ids: list[int] | None, usage: dict[str, int], finish: str) -> dict[str, Any]:
        """The whole response of a non-streaming request that ended for reason `finish`."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        if ids is not None:
            choice["token_ids"] = ids
        return {**self._envelope(False), "choices": [choice], "usage": usage}

    def chunk(self, text: str, ids: list[int] | None, *, first: bool = False,
              finish: str | None = None) -> dict[str, Any]:
        """One stream chunk: new text (and ids), the role on a chat's first chunk, the finish reason on the last."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if self.chat:
            choice["delta"] = {"role": "assistant", "content": text} if first else {"content": text}
        else:
            choice["text"] = text
        if ids is not None:
            choice["token_ids"] = ids
        return {**self._envelope(True), "choices": [choice]}

    def last_chunks(self, text: str, ids: list[int] | None, *, first: bool, finish: str) -> list[dict[str, Any]]:
        """The chunks that end a stream: a chat's remaining text (if any) then `delta: {}` with the finish
        reason; a completion's remaining text with the finish reason."""
        if not self.chat:
            return [self.chunk(text, ids, first=first, finish=finish)]
        out = [self.chunk(text, ids, first=first)] if text or first or ids else []
        end = self.chunk("", [] if ids is not None else None, finish=finish)
        end["choices"][0]["delta"] = {}
        return [*out, end]

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        """The final chunk of `stream_options.include_usage`: no choices, the usage."""
        return {**self._envelope(True), "choices": [], "usage": usage}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event: `data: {json}` (or `data: [DONE]`) and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()
