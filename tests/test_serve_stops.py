"""`bsbench serve` ends a request where an OpenAI server would: at a stop string (text cut before it), a stop token
id or EOS (finish_reason "stop"), and, without max_tokens, at the context limit (finish_reason "length"). Each stop
ends the request completed in the engine, with its KV freed; `ignore_eos` and `min_tokens` are honoured."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from bsbench.backends.fit_checks import longest_output, request_misfit
from bsbench.backends.run import open_session
from bsbench.serve.output import Output
from bsbench.serve.responses import Detokenizer
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.tokenizer import load_tokenizer
from tests.serve_helpers import TIMEOUT_S, metric, running_server, sse_events, wait_for

PROMPT = [100, 2000, 31, 7, 900]  # the tiny model answers it with tokens that vary
LENGTH = 12


@pytest.fixture(scope="module")
def served():
    with running_server() as server:
        yield server


def _post(served, body: dict) -> dict:
    """The choice, usage and text of one request, streamed or not, with the generated ids."""
    body = {"prompt": PROMPT, "return_token_ids": True, **body}
    if not body.get("stream"):
        response = httpx.post(f"{served.url}/v1/completions", json=body, timeout=TIMEOUT_S)
        assert response.status_code == 200, response.text
        choice = response.json()["choices"][0]
        return {"text": choice["text"], "ids": choice["token_ids"], "finish": choice["finish_reason"],
                "usage": response.json()["usage"]["completion_tokens"]}
    body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", f"{served.url}/v1/completions", json=body, timeout=TIMEOUT_S) as response:
        assert response.status_code == 200
        events = sse_events(response.iter_lines())
    assert events[-1] == "[DONE]"
    choices = [e["choices"][0] for e in events[:-1] if e["choices"]]
    return {"text": "".join(c["text"] for c in choices), "ids": [t for c in choices for t in c["token_ids"]],
            "finish": choices[-1]["finish_reason"], "usage": events[-2]["usage"]["completion_tokens"]}


def _greedy(served) -> dict:
    whole = _post(served, {"max_tokens": LENGTH, "ignore_eos": True})
    assert len(whole["ids"]) == LENGTH and whole["finish"] == "length"
    return whole


def _generated(served) -> int:
    """Tokens the engine generated so far, once the requests before have ended (it counts after delivering)."""
    _settled(served)
    return served.state.engine.arrivals.stats().tokens


def _settled(served) -> None:
    """Every request ended and its KV freed; the counts add up."""
    wait_for(lambda: served.policy.blocks.num_used == 0, "the KV to be freed")
    wait_for(lambda: (s := served.state.engine.arrivals.stats()).running + s.waiting == 0, "the engine to idle")
    stats = served.state.engine.arrivals.stats()
    ended = {status: sum(n for (st, _), n in stats.ended.items() if st == status)
             for status in ("completed", "failed", "rejected")}
    assert sum(ended.values()) == stats.submitted
    assert ended["failed"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_string_cuts_the_text_before_it_and_ends_the_request(served, stream):
    tokenizer = load_tokenizer(None)
    whole = _greedy(served)
    # a stop string that first appears in the text of the 6th token on
    at = next(k for k in range(5, LENGTH) if tokenizer.decode(whole["ids"][k:k + 1]).strip())
    head = tokenizer.decode(whole["ids"][:at])
    stop = tokenizer.decode(whole["ids"][:at + 1])[len(head):].strip()
    cut = whole["text"].find(stop)
    assert 0 <= cut <= len(head) + 1
    made = _generated(served)
    stops = metric(served.url, "vllm:request_success_total", model_name="tiny", finished_reason="stop")
    got = _post(served, {"max_tokens": LENGTH, "ignore_eos": True, "stop": ["never there", stop], "stream": stream})
    assert got["finish"] == "stop"
    assert got["text"] == whole["text"][:cut]
    assert got["ids"] == whole["ids"][:len(got["ids"])] and len(got["ids"]) <= at + 1
    assert got["usage"] == len(got["ids"])
    _settled(served)
    assert _generated(served) - made < LENGTH  # the engine ended it early (a step or two after the stop at most)
    assert metric(served.url, "vllm:request_success_total", model_name="tiny", finished_reason="stop") == stops + 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_token_id_or_eos_ends_the_request_there_unless_ignored(served, stream):
    whole = _greedy(served)
    at = next(k for k in range(3, LENGTH) if whole["ids"][k] not in whole["ids"][:k])  # its first occurrence
    token = whole["ids"][at]
    made = _generated(served)
    got = _post(served, {"max_tokens": LENGTH, "stop_token_ids": [token], "ignore_eos": True, "stream": stream})
    assert (got["ids"], got["finish"], got["usage"]) == (whole["ids"][:at + 1], "stop", at + 1)
    _settled(served)
    assert _generated(served) - made == at + 1  # the engine stopped it at the token, before another step
    model = served.state.model
    served.state.model = dataclasses.replace(model, eos_token_id=token)  # the tiny model's EOS, made reachable
    try:
        eos = _post(served, {"max_tokens": LENGTH, "stream": stream})
        assert (eos["ids"], eos["finish"]) == (whole["ids"][:at + 1], "stop")
        assert eos["text"] == load_tokenizer(None).decode(whole["ids"][:at])  # the EOS token's text left out
        assert _post(served, {"max_tokens": LENGTH, "ignore_eos": True, "stream": stream})["ids"] == whole["ids"]
        late = _post(served, {"max_tokens": LENGTH, "min_tokens": at + 2, "stream": stream})  # no stop before
        assert late["ids"][:at + 2] == whole["ids"][:at + 2]
        unbounded = _post(served, {"stream": stream})  # no max_tokens: until EOS
        assert (unbounded["ids"], unbounded["finish"]) == (whole["ids"][:at + 1], "stop")
    finally:
        served.state.model = model
    _settled(served)


def test_without_max_tokens_a_request_runs_to_the_context_limit(served):
    limit = served.state.longest_output
    served.state.longest_output = lambda prompt_len: 7  # the limit path, short (the real one is ~2,000 tokens)
    try:
        got = _post(served, {"ignore_eos": True})
        chat = httpx.post(f"{served.url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                                        "ignore_eos": True}, timeout=TIMEOUT_S)
    finally:
        served.state.longest_output = limit
    assert (len(got["ids"]), got["finish"], got["usage"]) == (7, "length", 7)
    assert chat.status_code == 200 and chat.json()["usage"]["completion_tokens"] == 7
    assert chat.json()["choices"][0]["finish_reason"] == "length"
    _settled(served)


def test_the_context_limit_is_the_longest_output_the_engine_would_admit(served):
    policy = served.policy
    model = open_session(served.config).info
    for prompt_len in (1, 100, 1000):
        n = longest_output(prompt_len, model, policy)
        assert n == served.state.longest_output(prompt_len)
        assert request_misfit(RequestSpec("a", (0,) * prompt_len, n, 0.0), model, policy) is None
        assert request_misfit(RequestSpec("b", (0,) * prompt_len, n + 1, 0.0), model, policy) is not None
    assert longest_output(5000, model, policy) == 0  # the prompt alone passes the context


def test_stop_strings_split_over_tokens_are_found_and_held_back():
    tokenizer = load_tokenizer(None)
    ids = tokenizer.encode("alpha beta STOP gamma")
    out = Output(Detokenizer(tokenizer), ("STOP",))
    pieces = [out.add([i])[0] for i in ids]
    assert out.stopped and out.finish_reason == "stop"
    assert "".join(pieces) == "alpha beta "
    assert out.flush() == "" and out.add([ids[0]]) == ("", [])
    free = Output(Detokenizer(tokenizer), ("STOP",))
    text = "".join(free.add([i])[0] for i in tokenizer.encode("alpha ST beta S")) + free.flush()
    assert text == "alpha ST beta S" and free.finish_reason == "length"


def test_a_padded_batch_row_stopped_early_ends_completed_and_the_batch_frees_its_kv():
    with running_server("static") as server:
        whole = _greedy(server)
        at = next(k for k in range(3, LENGTH) if whole["ids"][k] not in whole["ids"][:k])
        got = _post(server, {"max_tokens": LENGTH, "ignore_eos": True, "stop_token_ids": [whole["ids"][at]]})
        assert (got["ids"], got["finish"]) == (whole["ids"][:at + 1], "stop")
        _settled(server)
