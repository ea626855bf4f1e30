"""`bsbench run` end to end on the tiny model: records, correctness against the greedy oracle, bad input."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bsbench.record import EndKind, Outcome, read_record
from bsbench.workloads.build import load_workload
from tests.hf_reference import assert_record_matches_oracle
from tests.run_process import start_run, wait_until_a_request_ends

SMALL = ["--workload", "smoke", "-n", "6", "--max-output-len", "6", "--quiet"]


def _smoke_prompts(num_requests: int, max_output_len: int) -> dict[str, list[int]]:
    workload = load_workload("smoke", {"num_requests": num_requests, "max_output_len": max_output_len})
    return {r.id: list(r.prompt_ids) for r in workload.requests}


def _only_record(folder: Path) -> dict:
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1, files
    return read_record(files[0])


@pytest.mark.parametrize("scheduler", ["continuous", "static"])
def test_run_writes_a_record_whose_outputs_match_the_oracle(bsbench, tmp_path, scheduler):
    result = bsbench("run", "--scheduler", scheduler, *SMALL, "--record-tokens", "--out", tmp_path)
    assert result.code == 0, result.err
    assert "record:" in result.out
    record = _only_record(tmp_path)
    summary = record.summary
    assert summary["completed"] == 6 and summary["failed"] == summary["rejected"] == 0
    assert summary["counts_add_up"]
    assert record.config.scheduler == scheduler
    assert record.config.tokenizer == record.workload.tokenizer
    assert len(record.steps) > 0
    assert assert_record_matches_oracle(record, _smoke_prompts(6, 6)) == 6
    if scheduler == "static":
        assert summary["padding_ratio"] > 0
    else:
        assert summary["padding_ratio"] == 0


def test_continuous_preempts_under_a_tight_budget_and_still_matches_the_oracle(bsbench, tmp_path):
    # 1.5 MiB of tiny-model KV = 384 tokens: the longest smoke request fits, ten at once do not
    args = ["--workload", "smoke", "-n", "10", "--max-output-len", "24"]
    result = bsbench("run", *args, "--kv-memory", "1536KiB", "--record-tokens", "--quiet", "--out", tmp_path)
    assert result.code == 0, result.err
    record = _only_record(tmp_path)
    preempted = [r for r in record.requests if r.preemptions > 0]
    assert record.summary["preemptions"] >= 1 and preempted
    assert record.summary["completed"] == 10
    assert assert_record_matches_oracle(record, _smoke_prompts(10, 24)) == 10


def test_static_with_too_large_a_batch_records_oom_and_loses_nothing(bsbench, tmp_path):
    # 2 MiB of tiny-model KV = 512 tokens: one request fits, a padded batch of 8 does not
    args = ["run", "--scheduler", "static", "--workload", "smoke", "-n", "9", "--max-batch-size", "8",
            "--batch-timeout", "0.05", "--kv-memory", "2MiB", "--quiet", "--out", tmp_path]
    result = bsbench(*args)
    assert result.code == 0, result.err
    record = _only_record(tmp_path)
    summary = record.summary
    assert summary["oom_events"] >= 1
    assert summary["failed"] >= 1 and summary["completed"] >= 1
    assert summary["completed"] + summary["failed"] + summary["rejected"] == 9
    oom_rows = [r for r in record.requests if r.status is Outcome.FAILED and r.reason.kind is EndKind.OOM]
    assert summary["oom_failed"] == len(oom_rows) == summary["failed"]
    assert summary["ended_by_reason"]["oom"] == len(oom_rows)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scheduler", "nope"], "unknown scheduler"),
        (["--scheduler", "static", "--max-num-seqs", "4"], "does not apply to scheduler 'static'"),
        (["--kv-memory", "1KiB"], "smaller than one KV block"),
        (["--kv-memory", "lots"], "cannot read"),
        (["--workload", "synthetic", "--input-len", "5000", "--output-len", "8", "-n", "2"], "context of 4096"),
        (["--rate", "0"], "rate"),
        (["--percentiles", "50,100"], "percentiles"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(bsbench, tmp_path, args, message):
    result = bsbench("run", *SMALL, "--out", tmp_path, *args)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_ctrl_c_writes_an_incomplete_record(tmp_path):
    """SIGINT mid-run: exit 130, and the record is there, marked incomplete, with every request accounted for."""
    proc = start_run("--workload", "smoke", "-n", "12", "--rate", "1", "--arrival", "constant", "--out", tmp_path)
    seen = wait_until_a_request_ends(proc, 12)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen[-5:]) + err
    record = _only_record(tmp_path)
    assert record.complete is False
    summary = record.summary
    assert summary["completed"] + summary["failed"] + summary["rejected"] == 12
    kinds = {r.reason.kind for r in record.requests if r.status is Outcome.FAILED}
    assert kinds == {EndKind.INTERRUPTED}
