"""Offline first: decide before any Hugging Face hub call whether the hub can be used at all.

Without this, a hub id with no network costs about 30 s of retries and a dozen
log lines before the one-line error. Rule, for names that are not local paths:

- `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) set true: use the local cache only;
- else one TCP connect to the hub (HF_ENDPOINT, default huggingface.co:443, or
  the HTTPS proxy when one is configured), bounded to a few seconds: if it
  fails, use the local cache only.

`offline_reason()` is None when the hub may be used, else a short reason the
one-line error names. `check_hub_name()` adds the cache: when the hub is off
and the name's files are not cached either, it raises the one-line error at
once (before transformers is even imported); when they are cached, loaders
pass `local_files_only=True`. `check_model_source()` applies it to `--model`,
so commands can call it before any slow work.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from functools import lru_cache

from bsbench.errors import BsbenchError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
MODEL_FILES = ("config.json",)
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def probe_target() -> tuple[str, int, str]:
    """(host, port, what) a connection to the hub goes to first: the HTTPS proxy if one applies, else the hub."""
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            return parsed.hostname, parsed.port or 80, f"proxy {parsed.hostname}:{parsed.port or 80}"
    return host, port, f"{host}:{port}"


@lru_cache(maxsize=8)
def _reachable(host: str, port: int, timeout_s: float) -> bool:
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            result.append(True)
        except OSError:
            result.append(False)

    # name resolution has no timeout of its own: bound the whole attempt
    worker = threading.Thread(target=connect, name="bsbench-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout_s + 1.0)
    return bool(result and result[0])


def offline_reason(timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the hub may be used; else why not ("HF_HUB_OFFLINE is set", "huggingface.co:443 is unreachable")."""
    for name in OFFLINE_ENV:
        if _env_true(name):
            return f"{name} is set"
    host, port, what = probe_target()
    return None if _reachable(host, port, timeout_s) else f"{what} is unreachable"


def offline_error(what: str, name: str, reason: str) -> str:
    """The one line for a hub name that is neither local nor in the cache while the hub is off."""
    return (f"cannot load {what} {name!r}: it is not a local path nor in the Hugging Face cache, and the hub "
            f"is off ({reason}); give a local folder, or download it where the hub is reachable")


def cached(repo_id: str, files: Sequence[str]) -> bool:
    """Whether any of `files` of hub repo `repo_id` is in the local Hugging Face cache."""
    # lazy: huggingface_hub is heavy
    from huggingface_hub import try_to_load_from_cache

    for filename in files:
        try:
            if isinstance(try_to_load_from_cache(repo_id, filename), str):
                return True
        except Exception:  # noqa: BLE001 - a name that is not a valid repo id is simply not cached
            return False
    return False


def check_hub_name(what: str, name: str, files: Sequence[str]) -> str | None:
    """For a name that is not a local path: None when the hub may be used; the offline reason when it
    cannot but `files` are cached (load with local_files_only=True); BsbenchError (one line) when neither."""
    reason = offline_reason()
    if reason is not None and not cached(name, files):
        raise BsbenchError(offline_error(what, name, reason))
    return reason
