"""`bsbench run --scheduler uellm` end to end on the tiny model: completed outputs equal the greedy oracle."""

from __future__ import annotations

from pathlib import Path

from bsbench.record import EndKind, Outcome, read_record
from bsbench.workloads.build import load_workload
from tests.hf_reference import assert_record_matches_oracle, hf_greedy


def _record(folder: Path) -> dict:
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1, files
    return read_record(files[0])


def test_uellm_run_matches_the_oracle_and_counts_truncation(bsbench, tmp_path):
    workload = load_workload("smoke", {"num_requests": 8, "max_output_len": 12})
    prompts = {r.id: list(r.prompt_ids) for r in workload.requests}
    # noisy predictions under-predict some requests: their batches extend KV on the real runner; with the
    # generation cap at max prediction + 1, the longest under-predicted ones are cut and must not complete
    result = bsbench("run", "--scheduler", "uellm", "--workload", "smoke", "-n", "8", "--max-output-len", "12",
                     "--max-batch-size", "3", "--predictor", "noisy", "--predictor-sigma", "1.0",
                     "--generation-cap", "--cap-margin", "1", "--record-tokens", "--quiet", "--out", tmp_path)
    assert result.code == 0, result.err
    record = _record(tmp_path)
    summary = record.summary
    assert summary["counts_add_up"] and summary["num_requests"] == 8
    rows = record.requests
    assert all("predicted_len" in r.notes and "kv_estimate_bytes" in r.notes for r in rows)
    truncated = [r for r in rows if r.truncated]
    assert summary["truncated"] == len(truncated) > 0
    cut_ids = {i for e in record.events if e.kind == "truncation" for i in e.request_ids}
    assert cut_ids == {r.id for r in truncated}
    for r in truncated:
        assert r.status is Outcome.FAILED and r.reason.kind is EndKind.TRUNCATED
        assert r.num_output < r.output_len
        assert r.output_ids == hf_greedy(prompts[r.id], r.num_output)  # a correct, shorter prefix
    assert summary["completed"] + summary["failed"] + summary["rejected"] == 8
    assert summary["completed"] == sum(r.status is Outcome.COMPLETED and not r.truncated for r in rows)
    checked = assert_record_matches_oracle(record, prompts)
    assert checked == summary["completed"] >= 1
    assert max(s.num_seqs for s in record.steps) <= 3
    assert all(s.layout == "padded" for s in record.steps)
