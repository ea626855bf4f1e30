"""`bsbench serve`'s /metrics in vLLM's names, types, `model_name` label and bucket boundaries, beside bsbench's
own; the token rate that no scrape changes."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bsbench.serve.metrics import ITL_BUCKETS, REQUEST_LATENCY_BUCKETS, TTFT_BUCKETS, TokenRate
from tests.serve_helpers import TIMEOUT_S, running_server

HISTOGRAMS = {"vllm:time_to_first_token_seconds": TTFT_BUCKETS, "vllm:inter_token_latency_seconds": ITL_BUCKETS,
              "vllm:e2e_request_latency_seconds": REQUEST_LATENCY_BUCKETS,
              "vllm:request_queue_time_seconds": REQUEST_LATENCY_BUCKETS,
              "vllm:request_prefill_time_seconds": REQUEST_LATENCY_BUCKETS,
              "vllm:request_decode_time_seconds": REQUEST_LATENCY_BUCKETS}


def scrape(url: str) -> dict[str, list]:
    """Metric family name -> its samples, parsed by prometheus-client's own parser."""
    text = httpx.get(f"{url}/metrics", timeout=TIMEOUT_S).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict, sample_name: str, **labels: str) -> float:
    for family in families.values():
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture(scope="module")
def served():
    with running_server() as server:
        yield server


def test_vllm_names_types_labels_and_buckets(served):
    families = scrape(served.url)
    for name, buckets in HISTOGRAMS.items():
        assert families[name].type == "histogram", name
        bounds = [float(s.labels["le"]) for s in families[name].samples if s.name == name + "_bucket"]
        assert bounds == [*buckets, float("inf")], name
        assert {s.labels["model_name"] for s in families[name].samples} == {"tiny"}
    for name in ("vllm:prompt_tokens", "vllm:generation_tokens", "vllm:request_success"):
        assert families[name].type == "counter", name
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert families[name].type == "gauge" and families[name].samples[0].labels == {"model_name": "tiny"}
    assert "bsbench_generation_tokens" in families and "bsbench_requests_waiting" in families  # ours stay


def test_one_request_moves_every_vllm_metric_by_what_it_did(served):
    before = scrape(served.url)
    prompt = [5, 6, 7, 8]
    response = httpx.post(f"{served.url}/v1/completions", json={"prompt": prompt, "max_tokens": 9},
                          timeout=TIMEOUT_S)
    assert response.status_code == 200
    after = scrape(served.url)

    def moved(sample: str, **labels: str) -> float:
        return value(after, sample, model_name="tiny", **labels) - value(before, sample, model_name="tiny", **labels)

    for name in HISTOGRAMS:
        expected = 8 if name == "vllm:inter_token_latency_seconds" else 1  # 9 tokens: 8 gaps
        assert moved(name + "_count") == expected, name
    assert moved("vllm:prompt_tokens_total") == len(prompt)
    assert moved("vllm:generation_tokens_total") == 9
    assert moved("vllm:request_success_total", finished_reason="length") == 1
    e2e = moved("vllm:e2e_request_latency_seconds_sum")
    parts = sum(moved(f"vllm:request_{p}_time_seconds_sum") for p in ("queue", "prefill", "decode"))
    assert 0 < parts <= e2e + 1e-6  # queue + prefill + decode lie within arrival -> end


def test_the_token_rate_is_over_a_fixed_window_whoever_scrapes():
    rate = TokenRate(window_s=10.0)
    for second in range(30):
        rate.sample(100 * second, now=float(second))  # 100 tokens/s
    assert rate.rate() == pytest.approx(100.0) and rate.rate() == pytest.approx(100.0)  # reading changes nothing
    rate.sample(100 * 29, now=35.0)  # 6 idle seconds
    assert rate.rate() == pytest.approx(100 * (29 - 25) / 10.0)  # the last 10 s: 400 tokens
