"""Metrics on hand-made timestamps; every expected value is computed by hand in the comments."""

from __future__ import annotations

import math

import pytest

from bsbench import metrics
from bsbench.metrics import summarize
from bsbench.record import EventRow

try:
    from record_factory import req, step
except ImportError:  # tests imported as a package
    from tests.record_factory import req, step


def _rows():
    # A: arrives 1.0, scheduled 1.5, tokens at 2.0 2.5 3.0 4.0 -> TTFT 1000 ms, E2E 3000 ms,
    #    TPOT (3.0-1.0)/3 = 666.67 ms, ITL 500 500 1000, queue 500 ms, tpot incl first 750 ms
    a = req("A", 1.0, [2.0, 2.5, 3.0, 4.0], scheduled=1.5, prompt_len=10,
            slo_ttft_ms=1500, slo_tpot_ms=700, preemptions=1)
    # B: arrives 2.0, scheduled 2.0, one token at 2.2 -> TTFT 200, E2E 200, no TPOT, queue 0
    b = req("B", 2.0, [2.2], prompt_len=20, slo_ttft_ms=100, slo_e2e_ms=1000)
    # C: failed (oom) after one token: counts in generated tokens and queue, not in latencies
    c = req("C", 0.0, [0.3], scheduled=0.1, finish=0.4, status="failed", reason="oom",
            prompt_len=5, slo_ttft_ms=1000)
    # D: rejected, never scheduled, no SLO
    d = req("D", 3.0, [], status="rejected", reason="kv-rejected", prompt_len=7)
    return [a, b, c, d]


def _steps():
    return [
        step(0.0, 0.1, forward=0.08, num_seqs=2, num_tokens=30, pad_tokens=10, kv_usage=0.2, kv_blocks_used=2,
             layout="padded"),
        step(1.0, 0.2, forward=0.10, num_seqs=4, num_tokens=4, pad_tokens=0, kv_usage=0.6, kv_blocks_used=6),
        step(2.0, 0.1, forward=0.02, num_seqs=4, num_tokens=6, pad_tokens=2, kv_usage=0.4, kv_blocks_used=4),
    ]


EVENTS = [EventRow("oom", 0.4, ["C"]), EventRow("preemption", 1.0, ["A"])]


@pytest.fixture()
def s():
    return summarize(_rows(), _steps(), EVENTS, duration_s=5.0, num_kv_blocks=10)


def test_counts(s):
    assert (s["num_requests"], s["completed"], s["failed"], s["rejected"]) == (4, 2, 1, 1)
    assert s["counts_add_up"] is True
    assert s["truncated"] == 0


def test_throughput(s):
    assert s["request_throughput"] == pytest.approx(2 / 5)
    assert s["total_output_tokens"] == 5
    assert s["output_throughput"] == pytest.approx(5 / 5)
    assert s["generated_tokens"] == 6  # includes C's token
    assert s["total_token_throughput"] == pytest.approx((10 + 20 + 4 + 1) / 5)


def test_ttft(s):
    assert s["mean_ttft_ms"] == pytest.approx(600)
    assert s["median_ttft_ms"] == pytest.approx(600)
    assert s["p50_ttft_ms"] == pytest.approx(600)
    assert s["p90_ttft_ms"] == pytest.approx(200 + 0.9 * 800)
    assert s["p99_ttft_ms"] == pytest.approx(200 + 0.99 * 800)
    assert s["std_ttft_ms"] == pytest.approx(400)


def test_tpot_vllm_convention(s):
    # only A has more than one token
    assert s["mean_tpot_ms"] == pytest.approx(2000 / 3)
    assert s["p99_tpot_ms"] == pytest.approx(2000 / 3)
    assert s["std_tpot_ms"] == pytest.approx(0)
    # GuideLLM's variant includes the first token: (3000/4 + 200/1) / 2
    assert s["mean_tpot_incl_first_ms"] == pytest.approx((750 + 200) / 2)


def test_itl_pooled(s):
    # gaps 500, 500, 1000 (B has none)
    assert s["mean_itl_ms"] == pytest.approx(2000 / 3)
    assert s["median_itl_ms"] == pytest.approx(500)
    assert s["p90_itl_ms"] == pytest.approx(500 + 0.8 * 500)
    assert s["p99_itl_ms"] == pytest.approx(500 + 0.98 * 500)


def test_e2e_and_queue(s):
    assert s["mean_e2el_ms"] == pytest.approx(1600)
    assert s["median_e2el_ms"] == pytest.approx(1600)
    assert s["p99_e2el_ms"] == pytest.approx(200 + 0.99 * 2800)
    # queue over every scheduled request: A 500, B 0, C 100
    assert s["mean_queue_ms"] == pytest.approx(200)
    assert s["median_queue_ms"] == pytest.approx(100)
    assert s["p99_queue_ms"] == pytest.approx(100 + 0.98 * 400)


def test_ttft_from_scheduled_arrival_includes_queueing():
    r = req("x", 10.0, [13.0, 13.5], scheduled=12.0)
    assert metrics.ttft_s(r) == pytest.approx(3.0)
    assert metrics.queue_s(r) == pytest.approx(2.0)


def test_slo_attainment(s):
    # joint over all 4: A meets ttft (1000<=1500) and tpot (666<=700); B misses ttft; C failed; D rejected
    assert s["slo_attainment"] == pytest.approx(1 / 4)
    # ttft SLO held by A (met), B (miss), C (failed = miss)
    assert s["slo_attainment_ttft"] == pytest.approx(1 / 3)
    assert s["slo_attainment_tpot"] == pytest.approx(1.0)
    assert s["slo_attainment_e2e"] == pytest.approx(1.0)
    assert s["goodput"] == pytest.approx(1 / 5)
    assert s["num_with_slo"] == 3


def test_slo_edge_cases():
    no_slo = req("n", 0.0, [1.0, 2.0])
    single = req("s", 0.0, [0.1], slo_tpot_ms=1.0)  # TPOT undefined for one token: met vacuously
    equal = req("e", 0.0, [0.25, 0.5], slo_ttft_ms=250.0)  # exactly on the SLO: met
    out = summarize([no_slo, single, equal], [], [], duration_s=2.0)
    assert out["slo_attainment"] == 1.0
    assert out["slo_attainment_tpot"] == 1.0
    assert out["slo_attainment_e2e"] is None  # nobody has an E2E SLO
    assert out["goodput"] == pytest.approx(3 / 2)


def test_steps(s):
    assert s["num_steps"] == 3
    assert s["padding_ratio"] == pytest.approx(12 / 40)
    assert s["mean_kv_usage"] == pytest.approx((0.2 * 0.1 + 0.6 * 0.2 + 0.4 * 0.1) / 5.0)  # over the 5 s run
    assert s["peak_kv_usage"] == pytest.approx(0.6)
    assert s["peak_kv_blocks"] == 6
    assert s["mean_batch_size"] == pytest.approx(10 / 3)
    assert s["median_batch_size"] == 4
    assert s["max_batch_size"] == 4
    assert s["batch_size_histogram"] == {"2": 1, "4": 2}
    assert s["mean_step_ms"] == pytest.approx(400 / 3)
    assert s["forward_share"] == pytest.approx(0.2 / 5)
    assert s["steps_by_layout"] == {"packed": 2, "padded": 1}


def test_events(s):
    assert s["oom_events"] == 1
    assert s["oom_failed"] == 1
    assert s["preemptions"] == 1
    assert s["preemption_events"] == 1
    assert s["rejection_events"] == 0


def test_empty_sets_are_none_not_nan():
    out = summarize([], [], [], duration_s=0.0)
    assert out["num_requests"] == 0 and out["counts_add_up"] is True
    for key in ("request_throughput", "mean_ttft_ms", "p99_itl_ms", "slo_attainment", "goodput",
                "padding_ratio", "peak_kv_usage", "mean_batch_size", "forward_share", "mean_tpot_incl_first_ms"):
        assert out[key] is None, key
    for value in out.values():
        assert not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def test_all_failed_run_has_no_latencies():
    rows = [req("a", 0.0, [], status="failed", reason="oom"),
            req("b", 0.0, [], status="rejected", reason="slo-expired")]
    out = summarize(rows, [], [], duration_s=1.0)
    assert out["completed"] == 0 and out["request_throughput"] == 0.0
    assert out["mean_e2el_ms"] is None and out["slo_attainment"] == 0.0


def test_configurable_percentiles():
    rows = [req(str(i), 0.0, [i / 10 + 0.1]) for i in range(10)]  # TTFT 100..1000 ms
    out = summarize(rows, [], [], duration_s=1.0, percentiles=(75, 99.9))
    assert out["p75_ttft_ms"] == pytest.approx(100 + 0.75 * 900)
    assert out["p99.9_ttft_ms"] == pytest.approx(100 + 0.999 * 900)
    assert "p90_ttft_ms" not in out
    assert out["median_ttft_ms"] == pytest.approx(550)


def test_direction():
    assert metrics.direction("output_throughput") == 1
    assert metrics.direction("p99_ttft_ms") == -1
    assert metrics.direction("padding_ratio") == -1
    assert metrics.direction("num_steps") == 0


def _client_row(name: str, sent: float, prompt_len: int, server_prompt: int | None, source: str = "usage"):
    """A client-run row: arrives at 1.0, sent at `sent`, tokens at 2.0 and 3.0."""
    r = req(name, 1.0, [2.0, 3.0], prompt_len=prompt_len)
    r.sent_s, r.server_prompt_tokens, r.token_count_source = sent, server_prompt, source
    r.server_output_tokens = 2 if source == "usage" else None
    return r


def test_a_client_run_has_both_ttft_origins_and_says_whose_token_counts_it_used():
    # TTFT from arrival: 1000 ms each; from the send: 2.0 - 1.5 = 500 ms, 2.0 - 1.0 = 1000 ms
    rows = [_client_row("a", 1.5, 32, 40), _client_row("b", 1.0, 32, 36)]
    s = summarize(rows, [], [], duration_s=4.0)
    assert s["median_ttft_ms"] == pytest.approx(1000) and s["median_ttft_sent_ms"] == pytest.approx(750)
    assert metrics.ttft_sent_s(rows[0]) == pytest.approx(0.5)
    # the server's prompt counts (40 + 36), not the workload's (32 + 32), and its output counts (2 + 2)
    assert s["total_input_tokens"] == 76 and s["total_token_throughput"] == pytest.approx((76 + 4) / 4.0)
    assert s["token_counts"] == {"input": "server", "output": "server"}
    assert s["ttft_origins"] == {"ttft": "scheduled arrival", "ttft_sent": "sent"}
    partial = summarize([_client_row("a", 1.5, 32, 40), _client_row("b", 1.0, 32, None, "chunks")], [], [], 4.0)
    assert partial["total_input_tokens"] == 40 + 32
    assert partial["token_counts"] == {"input": "mixed", "output": "mixed"}


def test_an_engine_run_counts_the_workloads_tokens_and_has_no_client_keys(s):
    assert s["total_input_tokens"] == 30  # A 10 + B 20, completed
    assert not {"token_counts", "ttft_origins", "median_ttft_sent_ms"} & set(s)
