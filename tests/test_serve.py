"""`bsbench serve` in process (tests/serve_helpers.py): the tiny model under `continuous` on a free 127.0.0.1 port.

Tokens equal an in-process replay of the same prompts; streaming and non-streaming agree; errors are
OpenAI-style; /metrics moves; a client that disconnects gets its request cancelled and its KV freed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bsbench.engine.loop import Engine
from bsbench.progress import Progress
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.tokenizer import load_tokenizer
from tests.serve_helpers import TIMEOUT_S, metric, running_server, sse_events, wait_for

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello",
         "Batching policies decide who runs next, step by step.", "A longer prompt " * 12, "1 2 3 4 5 6 7"]


@pytest.fixture(scope="module")
def served():
    with running_server() as server:
        yield server


def in_process_tokens(config, prompts: list[list[int]], lengths: list[int]) -> list[list[int]]:
    """What the in-process engine (as `bsbench run` drives it) generates for these prompts, all arriving at once."""
    from bsbench.backends.policy_build import build_policy
    from bsbench.backends.run import open_session

    session = open_session(config)
    policy = build_policy(config, session, Progress(enabled=False))
    specs = [RequestSpec(f"r{i}", tuple(p), n, 0.0) for i, (p, n) in enumerate(zip(prompts, lengths))]
    result = Engine(policy, session.runner, events=policy.ctx.events, blocks=policy.ctx.block_manager).run(specs)
    outputs = {s.id: s.output_ids for s in result.states}
    return [outputs[f"r{i}"] for i in range(len(specs))]


async def _complete(client: httpx.AsyncClient, url: str, body: dict) -> list[int]:
    """The generated ids of one request, streamed or not (return_token_ids)."""
    body = {**body, "return_token_ids": True}
    if not body.get("stream"):
        response = await client.post(f"{url}/v1/completions", json=body)
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]["token_ids"]
    async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
        assert response.status_code == 200
        events = sse_events([line async for line in response.aiter_lines()])
    assert events[-1] == "[DONE]"
    return [t for e in events[:-1] for t in e["choices"][0]["token_ids"]]


def test_concurrent_requests_get_the_tokens_of_the_in_process_run(served):
    tokenizer = load_tokenizer(None)
    prompts = [tokenizer.encode(t) for t in TEXTS]
    lengths = [12, 30, 7, 20, 16]
    bodies = [{"prompt": ids if i % 2 else TEXTS[i], "max_tokens": n, "stream": i % 3 == 0, "ignore_eos": True,
               "min_tokens": n, "temperature": 0} for i, (ids, n) in enumerate(zip(prompts, lengths))]

    async def send_all():
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            return await asyncio.gather(*(_complete(client, served.url, b) for b in bodies))

    got = asyncio.run(send_all())
    assert [len(g) for g in got] == lengths  # exactly max_tokens: EOS is ignored
    assert got == in_process_tokens(served.config, prompts, lengths)


def test_a_stream_carries_the_same_tokens_and_text_as_the_whole_response(served):
    body = {"model": "tiny", "prompt": "Streaming and not must agree", "max_tokens": 9, "return_token_ids": True}
    whole = httpx.post(f"{served.url}/v1/completions", json=body, timeout=TIMEOUT_S).json()
    with httpx.stream("POST", f"{served.url}/v1/completions", timeout=TIMEOUT_S,
                      json={**body, "stream": True, "stream_options": {"include_usage": True}}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
    assert events[-1] == "[DONE]"
    usage, chunks = events[-2], events[:-2]
    assert usage["choices"] == [] and usage["usage"] == whole["usage"]
    assert whole["usage"]["completion_tokens"] == 9
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + ["length"]
    assert [t for c in chunks for t in c["choices"][0]["token_ids"]] == whole["choices"][0]["token_ids"]
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]
    assert whole["choices"][0]["text"] == load_tokenizer(None).decode(whole["choices"][0]["token_ids"])


def test_chat_renders_messages_and_streams_deltas(served):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text",
                                                                                         "text": "Hi there"}]}]
    body = {"model": "tiny", "messages": messages, "max_completion_tokens": 6, "return_token_ids": True}
    whole = httpx.post(f"{served.url}/v1/chat/completions", json=body, timeout=TIMEOUT_S).json()
    assert whole["object"] == "chat.completion" and whole["choices"][0]["message"]["role"] == "assistant"
    # the shipped tokenizer has no chat template: the documented plain join
    joined = load_tokenizer(None).encode("system: Be brief.\nuser: Hi there\nassistant:")
    assert whole["usage"]["prompt_tokens"] == len(joined)
    with httpx.stream("POST", f"{served.url}/v1/chat/completions", json={**body, "stream": True},
                      timeout=TIMEOUT_S) as response:
        events = sse_events(response.iter_lines())
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert all(c["system_fingerprint"] for c in [*chunks, whole])
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == \
        whole["choices"][0]["message"]["content"]
    assert [t for c in chunks for t in c["choices"][0]["token_ids"]] == whole["choices"][0]["token_ids"]


def test_models_health_and_metrics_that_move(served):
    models = httpx.get(f"{served.url}/v1/models", timeout=TIMEOUT_S).json()
    assert [m["id"] for m in models["data"]] == ["tiny"] and models["data"][0]["scheduler"] == "continuous"
    assert httpx.get(f"{served.url}/health", timeout=TIMEOUT_S).json() == {"status": "ok"}
    tokens = metric(served.url, "bsbench_generation_tokens_total")
    completed = metric(served.url, "bsbench_requests_ended_total", status="completed", reason="")
    submitted = metric(served.url, "bsbench_requests_submitted_total")
    httpx.post(f"{served.url}/v1/completions", json={"prompt": [5, 6, 7], "max_tokens": 11}, timeout=TIMEOUT_S)
    assert metric(served.url, "bsbench_generation_tokens_total") == tokens + 11
    assert metric(served.url, "bsbench_requests_ended_total", status="completed", reason="") == completed + 1
    assert metric(served.url, "bsbench_requests_submitted_total") == submitted + 1
    assert metric(served.url, "bsbench_kv_blocks_total") == served.policy.blocks.num_blocks
    for name in ("bsbench_requests_waiting", "bsbench_requests_running", "bsbench_kv_cache_usage_ratio",
                 "bsbench_oom_events_total", "bsbench_preemptions_total", "bsbench_generation_tokens_per_second"):
        assert name in httpx.get(f"{served.url}/metrics", timeout=TIMEOUT_S).text


@pytest.mark.parametrize("path, body, status, param, words", [
    ("/v1/completions", b"{not json", 400, None, "not valid JSON"),
    ("/v1/completions", b"[1, 2]", 400, None, "JSON object"),
    ("/v1/completions", b"[" * 100_000, 400, None, "not valid JSON"),  # a nesting bomb
    ("/v1/completions", b"\xff\xfe", 400, None, "not valid JSON"),
    ("/v1/completions", {"prompt": "x", "n": 2}, 400, "n", "must be 1"),
    ("/v1/completions", {"max_tokens": 3}, 400, "prompt", "required"),
    ("/v1/completions", {"prompt": ""}, 400, "prompt", "at least one token"),
    ("/v1/completions", {"prompt": [1, 99999]}, 400, "prompt", "vocabulary"),
    ("/v1/completions", {"prompt": ["a", "b"]}, 400, "prompt", "batched"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens", ">= 1"),
    ("/v1/completions", {"prompt": "x", "max_tokens": "5"}, 400, "max_tokens", "integer"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 4, "min_tokens": 5}, 400, "min_tokens", "max_tokens"),
    ("/v1/completions", {"prompt": "x", "stop": 5}, 400, "stop", "list of strings"),
    ("/v1/completions", {"prompt": "x", "stop_token_ids": ["a"]}, 400, "stop_token_ids", "token ids"),
    ("/v1/completions", {"prompt": "x", "stream_options": {"include_usage": True}}, 400, "stream_options", "stream"),
    ("/v1/completions", {"prompt": "x", "model": "gpt-4"}, 404, "model", "does not exist"),
    ("/v1/chat/completions", {"messages": []}, 400, "messages", "non-empty"),
    ("/v1/chat/completions", {"messages": [{"content": "hi"}]}, 400, "messages[0]", "role"),
    # larger than the KV budget (2,048 tokens), inside the context (4,096): 400 with the reason
    ("/v1/completions", {"prompt": [5, 6], "max_tokens": 3000}, 400, "max_tokens", "KV blocks"),
    ("/v1/completions", {"prompt": [5, 6], "max_tokens": 5000}, 400, "max_tokens", "context of 4096"),
    ("/v1/nothing", {"prompt": "x"}, 404, None, "no route"),
])
def test_bad_requests_get_openai_style_errors(served, path, body, status, param, words):
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = httpx.post(f"{served.url}{path}", timeout=TIMEOUT_S, **kwargs)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and words in error["message"]
    assert httpx.get(f"{served.url}/health", timeout=TIMEOUT_S).status_code == 200  # never a crash


def test_wrong_method_is_an_openai_style_405(served):
    response = httpx.get(f"{served.url}/v1/completions", timeout=TIMEOUT_S)
    assert response.status_code == 405 and "not allowed" in response.json()["error"]["message"]


def test_rejections_are_counted_by_reason(served):
    before = metric(served.url, "bsbench_requests_ended_total", status="rejected", reason="kv-rejected")
    response = httpx.post(f"{served.url}/v1/completions", json={"prompt": [5], "max_tokens": 2500}, timeout=TIMEOUT_S)
    assert response.json()["error"]["code"] == "kv-rejected"
    assert metric(served.url, "bsbench_requests_ended_total", status="rejected", reason="kv-rejected") == before + 1


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_disconnects_cancels_its_request_and_frees_its_kv(served, stream):
    blocks = served.policy.blocks
    cancelled = metric(served.url, "bsbench_requests_ended_total", status="failed", reason="cancelled")
    body = {"prompt": [5, 6, 7, 8], "max_tokens": 1500, "stream": stream}
    with httpx.Client(timeout=TIMEOUT_S) as client:
        if stream:
            with client.stream("POST", f"{served.url}/v1/completions", json=body) as response:
                next(response.iter_lines())  # the first token arrived: the request holds KV
                assert blocks.num_used > 0
        else:
            with pytest.raises(httpx.ReadTimeout):
                client.post(f"{served.url}/v1/completions", json=body, timeout=1.0)
            assert blocks.num_used > 0
    # the client has gone: the engine ends the request long before its 1,500 tokens
    wait_for(lambda: metric(served.url, "bsbench_requests_ended_total", status="failed", reason="cancelled")
             == cancelled + 1, "the cancellation")
    wait_for(lambda: blocks.num_used == 0, "the KV to be freed")
    assert metric(served.url, "bsbench_kv_blocks_used") == 0
    assert metric(served.url, "bsbench_requests_running") == 0


def test_the_server_stops_by_itself_after_idle_exit():
    with running_server(idle_exit_s=0.5) as server:
        httpx.post(f"{server.url}/v1/completions", json={"prompt": [5, 6], "max_tokens": 2}, timeout=TIMEOUT_S)
        server.thread.join(TIMEOUT_S)
        assert not server.thread.is_alive() and not server.state.engine.alive
        assert server.state.engine.error is None
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health", timeout=2)


def test_an_engine_that_dies_fails_its_requests_with_the_reason_and_stops_the_server():
    class LostDevice:
        def execute(self, plan):
            raise RuntimeError("device lost")

    with running_server() as server:
        server.state.engine.engine.runner = LostDevice()
        response = httpx.post(f"{server.url}/v1/completions", json={"prompt": [5, 6], "max_tokens": 4},
                              timeout=TIMEOUT_S)
        assert response.status_code == 500 and "device lost" in response.json()["error"]["message"]
        server.thread.join(TIMEOUT_S)
        assert not server.thread.is_alive()
        assert isinstance(server.state.engine.error, RuntimeError)
