"""Why a request ended without completing: a kind from a closed set, plus free text.

Reports count and group by `kind` only; `detail` is for people. A new way
for a request to fail gets a new `EndKind` member here, never a new string
that readers would have to parse.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class EndKind(str, enum.Enum):
    """The kinds of non-completion; the value is what the record stores."""

    OOM = "oom"                        # device or KV memory ran out for the request's batch or step
    KV_REJECTED = "kv-rejected"        # refused: the request can never fit the policy's KV bound
    SLO_EXPIRED = "slo-expired"        # refused: its SLO had already passed when it could start
    UNDERPREDICTED = "underpredicted"  # its batch outgrew the KV reserved from predicted lengths
    TRUNCATED = "truncated"            # cut short of its output length (a generation cap)
    INTERRUPTED = "interrupted"        # the run was stopped (Ctrl-C, SIGTERM) before it ended
    STALLED = "stalled"                # the policy returned no plan with nothing left to wait for
    CANCELLED = "cancelled"            # its client cancelled it or went away (bsbench serve)
    TOO_LONG = "too-long"              # refused: prompt + output pass the model's context (bsbench serve)
    # the openai backend (a remote server), schema version 4:
    TIMEOUT = "timeout"                # no complete response within --request-timeout
    HTTP_ERROR = "http-error"          # the server answered with an HTTP error status
    CONNECTION = "connection-error"    # could not connect (refused, reset before a response)
    STREAM_CUT = "stream-cut"          # the response stream ended or broke before its final event
    BAD_RESPONSE = "bad-response"      # the server's response was not the OpenAI format
    SHORT_OUTPUT = "short-output"      # the server finished with fewer tokens than asked for


@dataclass(slots=True, frozen=True)
class EndReason:
    """`kind` is what reports count; `detail` says, in words, what happened to this request."""

    kind: EndKind
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}" if self.detail else self.kind.value

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "detail": self.detail}

    @classmethod
    def from_json(cls, value: Any) -> EndReason:
        """Parse {'kind': ..., 'detail': ...}; ValueError names what is wrong."""
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
            raise ValueError(f"an end reason must be an object with a 'kind', got {value!r:.80}")
        try:
            kind = EndKind(value["kind"])
        except ValueError:
            known = ", ".join(k.value for k in EndKind)
            raise ValueError(f"unknown end-reason kind {value['kind']!r:.40} (known: {known})") from None
        detail = value.get("detail", "")
        if not isinstance(detail, str):
            raise ValueError("an end reason's detail must be a string")
        return cls(kind, detail)
