"""OpenAI-style API errors: `{"error": {"message", "type", "param", "code"}}` with an HTTP status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "not_found_error",
               405: "invalid_request_error", 408: "invalid_request_error", 413: "invalid_request_error",
               422: "invalid_request_error", 500: "server_error", 503: "service_unavailable"}


@dataclass(slots=True)
class ApiError(Exception):
    """A request the server refuses or could not serve; `body()` is what the client gets."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None

    def body(self) -> dict[str, Any]:
        message = self.message.encode("utf-8", "backslashreplace").decode("utf-8")  # no lone surrogate can pass
        return {"error": {"message": message, "type": ERROR_TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}
