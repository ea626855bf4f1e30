"""Flags of `run --backend openai` (a remote OpenAI-compatible server), and the checks that keep them apart
from the in-process backends' flags: a flag that would be silently ignored is a user error."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from bsbench.commands._help import group_options
from bsbench.commands._types import param_type
from bsbench.errors import BsbenchError
from bsbench.redaction import check_api_key
from bsbench.values import Integer, Real

if TYPE_CHECKING:
    from bsbench.openai_client import ClientOptions

OPENAI_GROUP = "OpenAI-compatible server (--backend openai)"
_DEFAULTS: dict[str, Any] = {"endpoint": "completions", "prompt_as": "text", "strict_openai": False,
                             "request_timeout": 600.0, "warmup_requests": 0, "test_request": True}
OPENAI_KEYS = ("base_url", "api_key_env", "served_model", "endpoint", "prompt_as", "strict_openai",
               "request_timeout", "max_concurrency", "warmup_requests", "test_request")
# engine flags that mean nothing when the server runs the model and the policy
# (--model is vLLM's spelling of --served-model there: commands/_vllm_options.py)
_ENGINE_ONLY = ("scheduler", "clock", "gpu", "calibration", "weights", "weights_seed", "device", "dtype",
                "kv_memory", "block_size", "threads")


def openai_options(func: Callable) -> Callable:
    """Add the --backend openai flags (values arrive in **kwargs under OPENAI_KEYS; None when not given)."""
    decorators = [
        click.option("--base-url", default=None, metavar="URL",
                     help="The server, e.g. http://127.0.0.1:8000 (/v1 is added when missing)."),
        click.option("--api-key-env", default=None, metavar="VAR",
                     help="Environment variable holding the API key (sent as a bearer token, never recorded)."),
        click.option("--served-model", default=None, metavar="NAME",
                     help="Model name sent in each request [default: the first model of /v1/models]."),
        click.option("--endpoint", default=None, callback=_endpoint, metavar="completions|chat|PATH",
                     help="completions or chat, or vLLM's path form /v1/completions, /v1/chat/completions "
                          "[default: completions]."),
        click.option("--prompt-as", type=click.Choice(["text", "token-ids"]), default=None,
                     help="Send each prompt as text (decoded with the workload's tokenizer) or as its token id "
                          "list (completions only; vLLM and bsbench serve accept it) [default: text]."),
        click.option("--strict-openai", is_flag=True, default=None,
                     help="Send only OpenAI's own fields: no ignore_eos, min_tokens, return_token_ids (then a "
                          "server may stop early; such requests fail as short-output)."),
        click.option("--request-timeout", type=param_type(Real(low=0, low_open=True, high=1e6)), default=None,
                     metavar="S", help="Seconds a request may take, end to end [default: 600]."),
        click.option("--max-concurrency", type=param_type(Integer(1, 1_000_000)), default=None, metavar="N",
                     help="At most N requests in flight (closed loop; waits for a slot show as lateness) "
                          "[default: open loop]."),
        click.option("--warmup-requests", type=param_type(Integer(0, 1_000_000)), default=None, metavar="K",
                     help="Send K requests one at a time before the run (not recorded) [default: 0]."),
        click.option("--test-request/--no-test-request", default=None,
                     help="Send the first request once before the run, as vLLM does: if it fails, stop with the "
                          "server's error (exit 2, nothing timed); if the server refuses the vLLM-only fields, "
                          "go strict (not recorded) [default: --test-request]."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return group_options(OPENAI_GROUP, OPENAI_KEYS)(func)


# vLLM's --endpoint paths (its default base is the server root; bsbench's --base-url ends in /v1)
_ENDPOINT_PATHS = {"/v1/completions": "completions", "/v1/chat/completions": "chat"}


def _endpoint(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """completions | chat, or vLLM's path form of them; anything else is a one-line error."""
    if value is None or value in ("completions", "chat"):
        return value
    path = "/" + value.strip().strip("/")
    if path in _ENDPOINT_PATHS:
        return _ENDPOINT_PATHS[path]
    raise BsbenchError(f"--endpoint {value!r:.60}: bsbench sends completions or chat "
                       "(/v1/completions, /v1/chat/completions)")


def pop_openai_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the openai flags from click's kwargs: {key: value} of those given."""
    values = {key: kwargs.pop(key, None) for key in OPENAI_KEYS}
    return {k: v for k, v in values.items() if v is not None}


def refuse_openai_values(values: dict[str, Any], backend: str) -> None:
    """An openai flag given to an in-process backend would be ignored: a user error."""
    if values:
        flag = "--" + sorted(values)[0].replace("_", "-")
        raise BsbenchError(f"{flag} applies to --backend openai, not --backend {backend}")


def refuse_engine_flags(ctx: click.Context, scheduler_values: dict[str, Any]) -> None:
    """Engine, model and scheduler flags given with --backend openai would be ignored (the server holds the
    model and the policy): a user error naming the first."""
    given = [k for k in _ENGINE_ONLY if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE]
    given += sorted(scheduler_values)
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise BsbenchError(f"{flag} does not apply to --backend openai (the server runs the model and its policy)")


def client_options(values: dict[str, Any]) -> ClientOptions:
    """ClientOptions from the given openai flags; a missing --base-url or API key variable is a user error."""
    # lazy: loads numpy
    from bsbench.openai_client import ClientOptions

    # lazy: loads numpy
    from bsbench.openai_client.options import check_options

    if "base_url" not in values:
        raise BsbenchError("--backend openai needs --base-url URL (the server, e.g. http://127.0.0.1:8000)")
    merged = {**_DEFAULTS, **values}
    api_key = None
    if merged.get("api_key_env"):
        api_key = os.environ.get(merged["api_key_env"])
        if not api_key:
            raise BsbenchError(f"--api-key-env {merged['api_key_env']}: that environment variable is not set")
        check_api_key(api_key, f"--api-key-env {merged['api_key_env']}")
    options = ClientOptions(
        base_url=merged["base_url"], served_model=merged.get("served_model"),
        endpoint=merged["endpoint"], api_key=api_key, prompt_as=merged["prompt_as"],
        strict_openai=bool(merged["strict_openai"]), request_timeout_s=float(merged["request_timeout"]),
        max_concurrency=merged.get("max_concurrency"), warmup_requests=int(merged["warmup_requests"]),
        test_request=bool(merged["test_request"]),
        duration_s=merged.get("duration"), temperature=float(merged.get("temperature", 0.0)),
        extra_body=merged.get("extra_body", ()))
    check_options(options)
    return options
