"""Settings of the openai backend and its constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bsbench.errors import BsbenchError
from bsbench.redaction import check_api_key, url_without_credentials

LATE_THRESHOLD_S = 0.001  # a request that left more than this after its scheduled arrival is flagged late
ENDPOINTS = ("completions", "chat")
PROMPT_FORMS = ("text", "token-ids")
ENDPOINT_PATHS = {"completions": "/completions", "chat": "/chat/completions"}
# bounds on what a server may send (decompressed bytes): a longer SSE line ends the request as bad-response; an
# error body or a /v1/models answer is read no further (the reason keeps 200 characters of it anyway)
MAX_SSE_LINE_BYTES = 1 << 20
MAX_ERROR_BODY_BYTES = 64 << 10
MAX_MODELS_BODY_BYTES = 1 << 20


@dataclass(slots=True, frozen=True)
class ClientOptions:
    """How to reach the server and what to ask of it. `api_key` is sent, never recorded; `base_url` is sent as
    given, and `shown_url` (credentials masked) is what records, logs and the console get."""

    base_url: str  # normalised on creation (`normalise_base_url`): scheme://host:port/.../v1
    served_model: str | None = None  # None: the first model the server lists at /v1/models
    endpoint: str = "completions"
    api_key: str | None = None
    prompt_as: str = "text"  # text | token-ids (completions only)
    strict_openai: bool = False  # send only OpenAI's own fields (no ignore_eos, min_tokens, return_token_ids)
    request_timeout_s: float = 600.0
    max_concurrency: int | None = None  # None: open loop
    warmup_requests: int = 0
    test_request: bool = True  # send the first request once before the timed run (as vLLM); never recorded
    duration_s: float | None = None  # stop submitting after this many seconds from the start
    temperature: float = 0.0  # 0: greedy (vLLM's --temperature)
    extra_body: tuple[tuple[str, Any], ...] = ()  # fields merged into every body last (vLLM's --extra-body)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))
        if self.api_key is not None:
            check_api_key(self.api_key, "the API key")

    @property
    def shown_url(self) -> str:
        return url_without_credentials(self.base_url)

    def url(self, path: str) -> str:
        return self.base_url + path

    def describe(self) -> dict[str, object]:
        """What the record keeps of these options (everything but the key and the URL's credentials)."""
        return {"base_url": self.shown_url, "served_model": self.served_model, "endpoint": self.endpoint,
                "prompt_as": self.prompt_as, "strict_openai": self.strict_openai,
                "max_concurrency": self.max_concurrency, "request_timeout_s": self.request_timeout_s,
                **({"temperature": self.temperature} if self.temperature else {}),
                **({"extra_body": dict(self.extra_body)} if self.extra_body else {})}


def normalise_base_url(url: str) -> str:
    """'http://host:8000' or 'http://host:8000/v1/' -> 'http://host:8000/v1'; anything but http(s) is a user error."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BsbenchError("--base-url must be an http(s) URL such as http://127.0.0.1:8000, "
                           f"got {url_without_credentials(url)!r:.80}")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def check_options(options: ClientOptions) -> None:
    """Combinations that cannot work are user errors before anything is sent."""
    if options.endpoint not in ENDPOINTS:
        raise BsbenchError(f"--endpoint must be one of {', '.join(ENDPOINTS)}, got {options.endpoint!r}")
    if options.prompt_as == "token-ids" and options.endpoint != "completions":
        raise BsbenchError("--prompt-as token-ids needs --endpoint completions (chat messages are text)")
