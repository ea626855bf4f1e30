"""`bsbench serve` as a user runs it: a subprocess on a free 127.0.0.1 port (--port 0), driven by the official
`openai` client, stopping by itself (--max-requests) or on SIGTERM; and its one-line errors."""

from __future__ import annotations

import signal
import sys
import threading

import httpx
import pytest

from tests.serve_helpers import TIMEOUT_S, serve_process, sse_events, wait_for


def test_the_openai_client_streams_completions_and_chat_and_the_server_stops_by_itself():
    from openai import OpenAI

    with serve_process("--max-requests", "3") as (process, url):
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=TIMEOUT_S, max_retries=0)
        stream = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=8, stream=True,
                                           stream_options={"include_usage": True},
                                           extra_body={"ignore_eos": True, "return_token_ids": True})
        chunks = list(stream)
        assert chunks[-1].usage.completion_tokens == 8 and chunks[-1].choices == []
        ids = [t for c in chunks[:-1] for t in c.choices[0].model_extra["token_ids"]]
        assert len(ids) == 8 and chunks[-2].choices[0].finish_reason == "length"
        text = "".join(c.choices[0].text for c in chunks[:-1])
        whole = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=8)
        assert whole.choices[0].text == text  # greedy: the same tokens either way
        chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hello!"}],
                                              max_tokens=5, stream=True)
        deltas = [c.choices[0].delta for c in chat if c.choices]
        assert deltas[0].role == "assistant" and len("".join(d.content or "" for d in deltas)) > 0
        assert process.wait(TIMEOUT_S) == 0  # --max-requests 3: it stops by itself, cleanly
        out = process.stdout.read()
        assert "3 requests: 3 completed, 0 failed, 0 rejected" in out
        assert "Traceback" not in process.stderr.read()


def test_sigterm_ends_in_flight_requests_failed_and_exits_cleanly():
    with serve_process("--idle-exit", "120") as (process, url):
        events: list = []

        def stream_long() -> None:
            body = {"prompt": [5, 6, 7], "max_tokens": 3000, "stream": True}
            with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=TIMEOUT_S) as response:
                events.extend(sse_events(response.iter_lines()))

        reader = threading.Thread(target=stream_long, daemon=True)
        reader.start()
        wait_for(lambda: httpx.get(f"{url}/metrics", timeout=TIMEOUT_S).text.count("bsbench_requests_running 1.0"),
                 "the request to run")
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT_S) == 143  # 128 + SIGTERM, as after an interrupted run
        reader.join(TIMEOUT_S)
        err = process.stderr.read()
        assert "Traceback" not in err and "bsbench: terminated" in err
        assert "1 requests: 0 completed, 1 failed, 0 rejected" in process.stdout.read()
    assert events[-1] == "[DONE]"
    assert "the server shut down" in events[-2]["error"]["message"] and events[-2]["error"]["code"] == "interrupted"


def test_a_missing_server_library_is_one_line_naming_the_install(bsbench, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    result = bsbench("serve", "--port", "0")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "bsbench: error: bsbench serve needs starlette, uvicorn and prometheus-client (uvicorn is missing): "
        "pip install 'bsbench[serve]'"]


@pytest.mark.parametrize("args, words", [
    (["--port", "70000"], "--port"),
    (["--scheduler", "nope"], "nope"),
    (["--max-requests", "0"], "--max-requests"),
    (["--scheduler", "distserve"], "runs in simulation only"),
])
def test_bad_flags_are_one_line_errors(bsbench, args, words):
    result = bsbench("serve", *args)
    assert result.code == 2 and words in result.err and len(result.err.strip().splitlines()) == 1


def test_the_address_is_told_only_once_the_server_answers():
    """serve(on_ready=...) is where the command prints its URL: it is called after the model is loaded and
    uvicorn has started, so a request made at that moment is answered."""
    from bsbench.backends.config import RunConfig
    from bsbench.backends.policy_build import build_policy
    from bsbench.backends.run import open_session
    from bsbench.progress import Progress
    from bsbench.serve.server import bind, serve, serve_state
    from bsbench.workloads.tokenizer import load_tokenizer
    from tests.serve_helpers import KV_MEMORY

    config = RunConfig(model="tiny", threads=1, kv_memory=KV_MEMORY)
    session = open_session(config)
    state = serve_state(session, build_policy(config, session, Progress(enabled=False)), load_tokenizer(None))
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    answers: list[int] = []
    calls: list[bool] = []

    def ready() -> None:  # runs on the server's event loop: ask from another thread, with a short timeout
        calls.append(state.engine.alive)
        threading.Thread(target=lambda: answers.append(httpx.get(f"{url}/health", timeout=5).status_code)).start()

    thread = threading.Thread(target=serve, args=(state, sock), kwargs={"on_ready": ready}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: answers, "the health answer")
        assert answers == [200] and calls == [True]  # once, with the engine running
    finally:
        state.request_exit()
        thread.join(TIMEOUT_S)
    assert not thread.is_alive()
