"""`bsbench serve`: one scheduler behind an OpenAI-compatible HTTP server (bsbench/serve/)."""

from __future__ import annotations

import os
import sys

import click

from bsbench.backends.policy_build import build_policy
from bsbench.commands._help import GroupedCommand
from bsbench.commands._run_options import run_config_from_cli, scheduler_values, serve_options
from bsbench.commands._types import param_type
from bsbench.errors import BsbenchError, first_line
from bsbench.model.presets import PRESETS
from bsbench.model.source import check_model_source
from bsbench.progress import Progress
from bsbench.redaction import check_api_key
from bsbench.values import REQUEST_COUNT, SECONDS, Integer
from bsbench.workloads.tokenizer import load_tokenizer

INSTALL = "pip install 'bsbench[serve]'"


def _check_installed() -> None:
    """The server's libraries are an extra: without them, one line naming the install command."""
    try:
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise BsbenchError(f"bsbench serve needs starlette, uvicorn and prometheus-client ({exc.name} is missing): "
                           f"{INSTALL}") from None


def _api_key(value: str | None, variable: str | None) -> str | None:
    """The key /v1/* asks for, checked as it is read (a bad one is one line naming its source, never the key)."""
    if value is not None and variable is not None:
        raise BsbenchError("give --api-key or --api-key-env, not both")
    if variable is not None:
        value = os.environ.get(variable)
        if not value:
            raise BsbenchError(f"--api-key-env {variable}: that environment variable is not set")
        return check_api_key(value, f"--api-key-env {variable}")
    return None if value is None else check_api_key(value, "--api-key")


@click.command("serve", cls=GroupedCommand)
@click.option("--scheduler", default="continuous", show_default=True,
              help="Batching policy: static, continuous, uellm, bucket (or any registered one).")
@serve_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=param_type(Integer(0, 65535)), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one (the address is printed).")
@click.option("--served-model-name", default=None,
              help="The model name clients send and /v1/models lists [default: the model's name].")
@click.option("--tokenizer", default=None,
              help="Tokenizer folder, tokenizer.json or hub id [default: the shipped bsbench-bpe-32k for presets, "
                   "the checkpoint's own otherwise].")
@click.option("--max-requests", type=param_type(REQUEST_COUNT), default=None,
              help="Stop by itself once this many requests have ended (tests, scripted runs).")
@click.option("--idle-exit", type=param_type(SECONDS), default=None, metavar="SECONDS",
              help="Stop by itself after this long with no request in flight.")
@click.option("--api-key-env", default=None, metavar="VAR",
              help="Environment variable holding an API key that /v1/* requests must send as a bearer token "
                   "(others get 401); /health and /metrics stay open.")
@click.option("--api-key", default=None, metavar="KEY",
              help="The API key itself (visible to other users in the process list: prefer --api-key-env).")
@click.option("--quiet", is_flag=True, help="No progress display while the model loads.")
def command(scheduler: str, host: str, port: int, served_model_name: str | None, tokenizer: str | None,
            max_requests: int | None, idle_exit: float | None, api_key_env: str | None, api_key: str | None,
            quiet: bool, **kwargs) -> None:
    """Serve one scheduler over the in-process engine on the wall clock, behind an OpenAI-compatible API.

    Endpoints: POST /v1/completions and /v1/chat/completions (streaming or not), GET /v1/models,
    /health and /metrics (Prometheus). Decoding is greedy and every request generates exactly
    max_tokens tokens (EOS ignored). Stops on Ctrl-C / SIGTERM: in-flight requests end failed
    with the reason "the server shut down".
    """
    _check_installed()
    key = _api_key(api_key, api_key_env)
    # lazy: loads numpy
    from bsbench.backends.factory import cluster_setting_of

    # lazy: loads numpy
    from bsbench.backends.run import open_session

    # lazy: loads prometheus_client, starlette, uvicorn
    from bsbench.serve.server import bind, serve, serve_state

    config = run_config_from_cli(kwargs, scheduler, scheduler_values(kwargs))
    try:
        cluster_setting_of(config)
    except BsbenchError:
        raise BsbenchError(f"bsbench serve runs one instance of the real model; scheduler {scheduler} is "
                           "disaggregated and runs in simulation only (bsbench run --backend sim)") from None
    check_model_source(config.model)
    handle = load_tokenizer(tokenizer or (None if config.model in PRESETS else config.model))
    progress = Progress(enabled=not quiet)
    session = open_session(config, progress)
    policy = build_policy(config, session, progress)
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise BsbenchError(f"cannot listen on {host}:{port}: {first_line(exc)}") from None
    state = serve_state(session, policy, handle, name=served_model_name, max_requests=max_requests,
                        idle_exit_s=idle_exit, api_key=key)
    thread, name = state.engine, state.model.name
    address = sock.getsockname()

    def ready() -> None:  # the model is loaded and the server answers: only now is the URL worth printing
        click.echo(f"bsbench serve: {scheduler} on {name} ({config.weights} weights, {session.dtype}, "
                   f"{session.device}; KV {session.num_blocks * session.block_size:,} tokens) ready at "
                   f"http://{host}:{address[1]}/v1" + (" (API key required)" if key else ""))

    try:
        serve(state, sock, on_ready=ready)
    finally:  # after a signal too (uvicorn raises it again once shut down: exit 130 / 143)
        stats = thread.arrivals.stats()
        ended = {status: sum(n for (s, _), n in stats.ended.items() if s == status)
                 for status in ("completed", "failed", "rejected")}
        click.echo(f"bsbench serve: stopped; {stats.submitted} requests: {ended['completed']} completed, "
                   f"{ended['failed']} failed, {ended['rejected']} rejected")
    if thread.error is not None:  # not a user error: exit 1, still one line
        click.echo(f"bsbench: error: the engine failed: {first_line(thread.error)}", err=True)
        sys.exit(1)
