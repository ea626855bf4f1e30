"""BucketServe end to end on the tiny model (CPU, fp32, dummy weights seed 0) with the long-tailed mix.

The KV budget is chosen so that naive static batching with the same maximum
batch size runs out of memory (a batch of 8 with a long prompt does not fit,
the leftover batch of 4 does), while `bucket` sizes its batches from the live
free KV and records no OOM. Completed outputs are checked against the greedy
oracle (tests/hf_reference.py) on each prompt alone.
"""

from __future__ import annotations

import random

from bsbench.backends.config import RunConfig
from bsbench.backends.run import open_session, run_benchmark
from bsbench.record import Outcome
from bsbench.workloads.build import load_workload
from tests.hf_reference import hf_greedy


def _workload(n: int, max_prompt: int, max_output: int):
    return load_workload("mixed-longtail", {"num_requests": n, "max_prompt_len": max_prompt,
                                            "max_output_len": max_output, "rate": "inf"})


def _compare(tmp_path, n, max_prompt, max_output, kv_memory, batch, samples, bucket_options=None):
    workload = _workload(n, max_prompt, max_output)
    config = RunConfig(scheduler="static", scheduler_options={"max_batch_size": batch}, device="cpu",
                       kv_memory=kv_memory, out_dir=tmp_path, record_tokens=True)
    session = open_session(config)
    static = run_benchmark(workload, config, progress=False, session=session)
    config.scheduler = "bucket"
    config.scheduler_options = {"max_num_seqs": batch, **(bucket_options or {})}
    bucket = run_benchmark(workload, config, progress=False, session=session)

    s, b = static.summary, bucket.summary
    assert s["oom_events"] > 0 and s["completed"] > 0  # static: some batches fit, some do not
    assert b["oom_events"] == 0 and b["preemption_events"] == 0
    assert b["completed"] == n and b["counts_add_up"]
    assert b["padding_ratio"] < s["padding_ratio"]
    assert b["peak_kv_blocks"] <= session.num_blocks
    sched = bucket.scheduler
    assert sched["name"] == "bucket" and 0 < sched["decision_share"] < 1 and sched["decision_s"] > 0
    assert sched["controller_evaluations"] >= 1 and "controller_share" in sched

    rows = [r for r in bucket.requests if r.status is Outcome.COMPLETED]
    prompts = {r.id: list(r.prompt_ids) for r in workload.requests}
    rng = random.Random(0)
    # the longest prompt (padded the most) and a random sample
    picked = [max(rows, key=lambda r: r.prompt_len)] + rng.sample(rows, samples - 1)
    for row in picked:
        assert row.output_ids == hf_greedy(prompts[row.id], row.output_len), row.id
    return static, bucket


def test_bucket_no_oom_less_padding_matches_the_oracle(tmp_path):
    # 4 MiB = 64 blocks of 16 tokens (4 KiB per token): a static batch of 8 with a 256-token prompt needs 136
    _compare(tmp_path, n=10, max_prompt=256, max_output=6, kv_memory=4 << 20, batch=8, samples=2)


def test_bucket_long_tail_full(tmp_path):
    # prompts up to 1024: a static batch of 8 with a 1024-token prompt needs 8 x 67 = 536 blocks; 32 MiB holds 512
    _compare(tmp_path, n=48, max_prompt=1024, max_output=32, kv_memory=32 << 20, batch=8, samples=6,
             bucket_options={"bucket_boundaries": "quantile", "bucket_nmax_mode": "actual"})
