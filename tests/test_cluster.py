"""Disaggregated (multi-instance) simulation: constructed workloads whose answers are computed by hand.

Transfer time = prompt tokens x KV bytes per token / one-way link bandwidth + link latency (cluster/links.py);
Llama-2-13B in bf16 holds 819,200 KV bytes per token (2 x 40 layers x 40 heads x 128 x 2 bytes, papers.md).
"""

from __future__ import annotations

import math

import pytest

from bsbench.bench import RunConfig, run_benchmark
from bsbench.cluster.links import LINKS
from bsbench.cluster.topology import Topology, parse_instances
from bsbench.engine.model_shape import model_shape
from bsbench.errors import BsbenchError
from bsbench.record import Outcome, RunRecord
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload

BLOCK = 16


def _workload(requests: list[RequestSpec]) -> Workload:
    return Workload("constructed", requests, "fake", spec={"rate": math.inf, "seed": 0})


def _request(req_id: str, prompt: int, output: int, arrival: float = 0.0) -> RequestSpec:
    return RequestSpec(req_id, tuple(10 + (k % 50) for k in range(prompt)), output, arrival)


def _run(requests: list[RequestSpec], scheduler: str = "distserve", **config) -> RunRecord:
    defaults = {"backend": "sim", "clock": "virtual", "gpu": "a100-40gb", "model": "tiny"}
    return run_benchmark(_workload(requests), RunConfig(scheduler=scheduler, **{**defaults, **config}),
                         progress=False, save=False)


def _rows(record: RunRecord) -> dict:
    return {r.id: r for r in record.requests}


def _tiny_blocks(num_blocks: int) -> int:
    """A KV budget (bytes) of exactly `num_blocks` blocks of the tiny model."""
    return num_blocks * BLOCK * model_shape("tiny", "bfloat16").info.kv_bytes_per_token


@pytest.mark.parametrize("link, expected_s", [
    ("nvlink", 1000 * 819_200 / 300e9 + 5e-6),     # 2.7307 ms + 5 us
    ("pcie4-x16", 1000 * 819_200 / 31.5e9 + 20e-6),  # 26.006 ms + 20 us
    ("ib-200g", 1000 * 819_200 / 25e9 + 20e-6),     # 32.768 ms + 20 us
])
def test_transfer_time_is_prompt_kv_bytes_over_bandwidth_plus_latency(link, expected_s):
    record = _run([_request("a", 1000, 4)], model="llama2-13b", instances="prefill=1,decode=1", link=link)
    row = _rows(record)["a"]
    assert row.status is Outcome.COMPLETED
    assert row.transfer_start_s == row.first_token_s  # nothing to wait for: it leaves at its first token
    assert row.transfer_end_s - row.transfer_start_s == pytest.approx(expected_s, rel=1e-12)
    assert row.breakdown.transfer_s == pytest.approx(expected_s, rel=1e-12)
    assert row.breakdown.total_s == pytest.approx(row.finish_s - row.arrival_s, rel=1e-12)
    assert record.config.instances == "prefill=1,decode=1" and record.config.link == link


def test_hand_off_is_fcfs_and_one_transfer_at_a_time_per_link():
    # five prompts in one prefill batch: hand-off in arrival order, each transfer starting when the one before
    # it ends on the single prefill0 -> decode0 link
    requests = [_request(f"r{i}", 100 + 10 * i, 3, arrival=0.0) for i in range(5)]
    rows = _rows(_run(requests, model="llama2-13b", link="pcie4-x16"))
    first_token = rows["r0"].first_token_s
    assert all(rows[f"r{i}"].first_token_s == first_token for i in range(5))  # one batch
    link = LINKS["pcie4-x16"]
    start = first_token
    for i in range(5):
        row = rows[f"r{i}"]
        assert row.transfer_start_s == pytest.approx(start, rel=1e-12)
        assert row.transfer_end_s - row.transfer_start_s == pytest.approx(
            (100 + 10 * i) * 819_200 / link.bandwidth_bytes_s + link.latency_s, rel=1e-12)
        start = row.transfer_end_s


def test_a_transfer_waits_for_decode_blocks_and_each_instance_keeps_its_budget():
    # 8 blocks of 16 tokens per instance. a: prompt 64 (4 blocks) + 60 outputs -> 123 slots, 8 blocks at its end
    # on decode0. b: prompt 80 (5 blocks) does not fit prefill0 beside a (4 + 5 > 8), so it prefills once a's
    # transfer has freed prefill0; decode0 then has at most 4 free blocks until a completes, so b's transfer
    # starts exactly at a's finish.
    record = _run([_request("a", 64, 60), _request("b", 80, 2)], kv_memory=_tiny_blocks(8))
    rows = _rows(record)
    a, b = rows["a"], rows["b"]
    assert b.first_token_s > a.transfer_end_s
    assert b.transfer_start_s == a.finish_s > b.first_token_s
    assert b.breakdown.transfer_s == pytest.approx(b.transfer_end_s - b.first_token_s, rel=1e-12)
    assert record.config.num_kv_blocks == 8
    peak = {name: max(s.kv_blocks_used for s in record.steps if s.instance == name) for name in ("prefill0", "decode0")}
    assert peak == {"prefill0": 5, "decode0": 8}  # b alone on prefill0; a's whole KV on decode0
    assert all(s.kv_usage <= 1.0 for s in record.steps)


def test_no_request_is_lost_across_instances():
    # bursts of 10: arrivals go to the prefill instance with the fewest unfinished requests, so both get work
    requests = [_request(f"r{i:02d}", 20 + (i * 37) % 200, 1 + (i * 13) % 40, arrival=0.05 * (i // 10))
                for i in range(60)]
    record = _run(requests, instances="prefill=2,decode=3", kv_memory=_tiny_blocks(40))
    summary = record.summary
    assert summary["completed"] + summary["failed"] + summary["rejected"] == 60 == len(record.requests)
    assert summary["completed"] == 60
    for row in record.requests:
        assert row.num_output == row.output_len
        moved = row.transfer_start_s is not None
        assert moved == (row.output_len > 1)  # a one-token request ends on its prefill instance
    assert {s.instance for s in record.steps} == {"prefill0", "prefill1", "decode0", "decode1", "decode2"}
    assert record.scheduler["transfers"] == sum(1 for r in record.requests if r.output_len > 1)
    # 40 blocks per decode instance is tight: preempted requests are recomputed on their decode instance
    # (steps there computing more than one token per request), never sent back to a prefill instance
    preemptions = [e for e in record.events if e.kind == "preemption"]
    assert preemptions and all(e.detail["instance"].startswith("decode") for e in preemptions)
    assert any(s.num_tokens > s.num_seqs for s in record.steps if s.instance.startswith("decode"))
    assert all(s.kv_blocks_used <= 40 for s in record.steps)


def test_bucket_disaggregated_pads_on_the_prefill_instance_only():
    requests = [_request(f"r{i}", 20 + 30 * (i % 4), 5, arrival=0.0) for i in range(8)]
    record = _run(requests, scheduler="bucket", instances="prefill=1,decode=1")
    prefill = [s for s in record.steps if s.instance == "prefill0"]
    decode = [s for s in record.steps if s.instance == "decode0"]
    assert prefill and all(s.layout == "padded" for s in prefill)
    assert decode and all(s.layout == "packed" and s.pad_tokens == 0 for s in decode)
    pads = sum(s.pad_tokens for s in prefill)
    assert pads > 0
    assert record.summary["padding_ratio"] == pads / sum(s.num_tokens for s in record.steps)
    assert record.summary["completed"] == 8


def test_same_seed_gives_bit_identical_records():
    requests = [_request(f"r{i:02d}", 20 + (i * 37) % 200, 1 + (i * 13) % 40, arrival=0.01 * i) for i in range(40)]

    def body(record: RunRecord) -> dict:
        data = record.to_json()
        data.pop("created")
        data["environment"].pop("host_timing", None)
        return data

    first = _run(requests, scheduler="bucket", instances="prefill=1,decode=2", kv_memory=_tiny_blocks(30))
    second = _run(requests, scheduler="bucket", instances="prefill=1,decode=2", kv_memory=_tiny_blocks(30))
    assert body(first) == body(second)


def test_distserve_defaults_to_one_prefill_and_one_decode_instance_and_says_so():
    record = _run([_request("a", 30, 3)])
    assert record.config.instances == "prefill=1,decode=1" and record.config.link == "nvlink"
    assert "default" in record.scheduler["topology"]


def test_parse_instances():
    assert parse_instances("prefill=2, decode=3") == Topology(2, 3)
    assert str(parse_instances("decode=1,prefill=1")) == "prefill=1,decode=1"
    for bad in ("", "prefill=1", "prefill=0,decode=1", "prefill=1,decode=1,prefill=2", "gpu=1,decode=1",
                "prefill=one,decode=1", "prefill=1;decode=1"):
        with pytest.raises(BsbenchError):
            parse_instances(bad)


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "bucket", "--instances", "prefill=1", "--backend", "sim", "--gpu", "a100-40gb"],
     "expected prefill=N,decode=M"),
    (["--scheduler", "bucket", "--instances", "prefill=0,decode=1", "--backend", "sim", "--gpu", "a100-40gb"],
     "between 1 and"),
    (["--scheduler", "bucket", "--instances", "prefill=1,decode=1", "--link", "token-ring", "--backend", "sim",
      "--gpu", "a100-40gb"], "unknown --link 'token-ring'"),
    (["--scheduler", "bucket", "--instances", "prefill=1,decode=1"], "simulated backend only"),
    (["--scheduler", "distserve"], "simulated backend only"),
    (["--scheduler", "continuous", "--instances", "prefill=1,decode=1", "--backend", "sim", "--gpu", "a100-40gb"],
     "no disaggregated form"),
    (["--scheduler", "bucket", "--link", "nvlink", "--backend", "sim", "--gpu", "a100-40gb"], "give --instances"),
])
def test_bad_topology_or_link_is_one_line_exit_2(bsbench, tmp_path, args, message):
    result = bsbench("run", *args, "--workload", "smoke", "-n", "4", "--out", tmp_path, "--quiet")
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1, result.err


def test_sweep_refuses_a_scheduler_without_a_disaggregated_form(bsbench, tmp_path):
    result = bsbench("sweep", "--schedulers", "bucket,continuous", "--rates", "4", "--instances",
                     "prefill=1,decode=1", "--backend", "sim", "--gpu", "a100-40gb", "--workload", "smoke", "-n", "4",
                     "--out", tmp_path, "--quiet")
    assert result.code == 2 and "'continuous' has no disaggregated form" in result.err
