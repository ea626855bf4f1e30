"""Disaggregated (multi-instance) simulation: constructed workloads whose answers are computed by hand.

Transfer time = prompt tokens x KV bytes per token / one-way link bandwidth + link latency (cluster/links.py);
Llama-2-13B in bf16 holds 819,200 KV bytes per token (2 x 40 layers x 40 heads x 128 x 2 bytes, papers.md).
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from bsbench.backends.cluster.links import LINKS
from bsbench.backends.cluster.topology import Topology, parse_instances
from bsbench.backends.config import RunConfig
from bsbench.backends.factory import cluster_setting_of
from bsbench.backends.run import run_benchmark
from bsbench.errors import BsbenchError
from bsbench.model.shape import model_shape
from bsbench.record import Outcome, RunRecord
from bsbench.record.backend_part import SimPart
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
    assert record.config.backend.instances == "prefill=1,decode=1" and record.config.backend.link == link


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
    assert record.config.backend.instances == "prefill=1,decode=1" and record.config.backend.link == "nvlink"
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
    (["--scheduler", "bucket", "--decode-gpu", "h100-sxm", "--backend", "sim", "--gpu", "a100-40gb"],
     "give --instances"),
    (["--scheduler", "bucket", "--instances", "prefill=1,decode=1", "--decode-gpu", "tpu", "--backend", "sim",
      "--gpu", "a100-40gb"], "tpu"),
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


def test_run_key_covers_topology_and_link_and_leaves_single_instance_keys_alone():
    from bsbench.experiments.sweep import run_key

    record = _run([_request("a", 30, 3)], scheduler="bucket", instances="prefill=1,decode=1")
    config = record.config
    keys = {run_key(config, "fp")}
    part = config.backend
    for change in (dataclasses.replace(part, link="ib-200g"), dataclasses.replace(part, instances="prefill=1,decode=2"),
                   SimPart(part.device_preset, part.cost_model, part.calibration_hash)):
        keys.add(run_key(dataclasses.replace(config, backend=change), "fp"))
    assert len(keys) == 4
    single = dataclasses.replace(config, backend=SimPart(part.device_preset, part.cost_model))
    assert "instances" not in single.to_json()["backend"] and "link" not in single.to_json()["backend"]


def test_timeline_draws_one_line_per_instance(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bsbench.report.plots import draw_timeline

    record = _run([_request(f"r{i}", 40, 6) for i in range(4)], instances="prefill=1,decode=2")
    fig, ax = plt.subplots()
    draw_timeline(ax, [("distserve", record)], "kv_usage")
    labels = sorted(line.get_label() for line in ax.get_lines())
    plt.close(fig)
    assert labels == ["distserve decode0", "distserve decode1", "distserve prefill0"]


def test_decode_gpu_changes_only_the_decode_instances():
    requests = [_request(f"r{i}", 200 + 50 * i, 20) for i in range(4)]
    same = _run(requests, model="llama2-13b", instances="prefill=1,decode=1")
    faster = _run(requests, model="llama2-13b", instances="prefill=1,decode=1", decode_gpu="h100-sxm")
    assert faster.config.backend.decode_gpu == "h100-sxm" and same.config.backend.decode_gpu is None
    assert faster.scheduler["instances"]["decode0"]["gpu"] == "h100-sxm"
    assert faster.scheduler["instances"]["prefill0"]["gpu"] == "a100-40gb"

    def durations(record: RunRecord, instance: str) -> list[float]:
        return [s.duration_s for s in record.steps if s.instance == instance]

    assert durations(faster, "prefill0") == durations(same, "prefill0")  # the same prefill batches, same device
    assert sum(durations(faster, "decode0")) < sum(durations(same, "decode0"))  # H100: more bandwidth per step


def test_hand_off_goes_to_the_decode_instance_with_most_free_kv_and_waits_for_its_link():
    # one prefill batch of three; r0 (100 tokens, 7 blocks) -> decode0 (both empty: the lower index); r1 (40, 3
    # blocks) -> decode1 (more free now) at once, on the other link; r2 (20) -> decode1 again (its 3 reserved
    # blocks < decode0's 7), but that link carries r1, so r2 starts exactly when r1's transfer ends
    requests = [_request("r0", 100, 4), _request("r1", 40, 4), _request("r2", 20, 4)]
    rows = _rows(_run(requests, model="llama2-13b", instances="prefill=1,decode=2", link="ib-200g"))
    assert [rows[r].notes["decode_instance"] for r in ("r0", "r1", "r2")] == ["decode0", "decode1", "decode1"]
    assert rows["r0"].transfer_start_s == rows["r1"].transfer_start_s == rows["r0"].first_token_s
    assert rows["r2"].transfer_start_s == rows["r1"].transfer_end_s < rows["r0"].transfer_end_s


def test_an_interrupt_ends_every_request_and_marks_the_run_incomplete():
    from bsbench.backends.cluster.run import build_cluster
    from bsbench.engine.request_state import Status

    requests = [_request(f"r{i:02d}", 30 + i, 30, arrival=0.01 * i) for i in range(20)]
    config = RunConfig(scheduler="distserve", backend="sim", clock="virtual", gpu="a100-40gb", model="tiny")
    cluster = build_cluster(config, cluster_setting_of(config), _workload(requests))
    def stop_after_a_while(ended: int, total: int, tokens: int) -> None:
        if ended >= 5:
            raise KeyboardInterrupt

    result = cluster.make_engine(stop_after_a_while).run(requests)
    assert not result.complete
    assert all(s.status.is_final for s in result.states)
    interrupted = [s for s in result.states if s.status is Status.FAILED]
    assert interrupted and all(s.reason.kind.value == "interrupted" for s in interrupted)
    completed = [s for s in result.states if s.status is Status.COMPLETED]
    assert completed and len(completed) + len(interrupted) == 20  # some done, the rest stopped: none lost


def test_step_figures_of_several_instances_are_per_instance_means():
    from bsbench.metrics import summarize
    from bsbench.record.rows import StepRow

    def step(instance: str, start: float, seconds: float, usage: float, pads: int) -> StepRow:
        return StepRow(start, seconds, seconds, "packed", 1, 10, pads, int(usage * 100), usage, instance=instance)

    # 4 s run: prefill0 busy 1 s at 50% KV, decode0 busy 2 s (two steps) at 100%
    steps = [step("prefill0", 0.0, 1.0, 0.5, 4), step("decode0", 0.0, 1.0, 1.0, 0), step("decode0", 1.0, 1.0, 1.0, 0)]
    summary = summarize([], steps, [], 4.0)
    assert summary["mean_kv_usage"] == pytest.approx((0.5 * 1 / 4 + 1.0 * 2 / 4) / 2)  # 0.3125
    assert summary["forward_share"] == pytest.approx(3.0 / (4.0 * 2))  # 3 busy seconds of 2 instances x 4 s
    assert summary["padding_ratio"] == pytest.approx(4 / 30)
    assert summary["peak_kv_usage"] == 1.0
