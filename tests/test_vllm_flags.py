"""vLLM's benchmark flag spellings: --request-rate, --num-prompts, --goodput KEY:MS..., --burstiness (gamma)."""

from __future__ import annotations

import pytest

from bsbench.record import read_record

SIM = ("run", "--backend", "sim", "--gpu", "a100-40gb", "-w", "synthetic", "--input-len", 16, "--output-len", 4,
       "--seed", 2, "--quiet")


def test_vllm_spellings_make_the_same_workload_as_bsbench_flags(bsbench, tmp_path):
    vllm = bsbench(*SIM, "--out", tmp_path / "vllm", "--request-rate", 5, "--num-prompts", 7,
                   "--goodput", "ttft:500", "tpot:50", "e2el:3000", "--burstiness", 0.5)
    ours = bsbench(*SIM, "--out", tmp_path / "ours", "--rate", 5, "-n", 7, "--ttft-slo", 500, "--tpot-slo", 50,
                   "--e2e-slo", 3000, "--arrival", "gamma", "--burstiness", 0.5)
    assert vllm.code == ours.code == 0, vllm.err + ours.err
    a, b = (read_record(next((tmp_path / d).glob("*.json"))) for d in ("vllm", "ours"))
    assert a.workload.fingerprint == b.workload.fingerprint
    assert (a.config.num_requests, a.config.rate, a.config.arrival) == (7, 5.0, "gamma")
    assert {(r.slo_ttft_ms, r.slo_tpot_ms, r.slo_e2e_ms) for r in a.requests} == {(500.0, 50.0, 3000.0)}
    poisson = bsbench(*SIM, "--out", tmp_path / "p", "--rate", 5, "-n", 7)
    assert poisson.code == 0
    assert read_record(next((tmp_path / "p").glob("*.json"))).workload.fingerprint != a.workload.fingerprint


def test_goodput_forms_repeat_and_commas(bsbench, tmp_path):
    result = bsbench(*SIM, "--out", tmp_path, "-n", 3, "--goodput", "ttft:400,e2el:900", "--goodput", "tpot:30")
    assert result.code == 0, result.err
    row = read_record(next(tmp_path.glob("*.json"))).requests[0]
    assert (row.slo_ttft_ms, row.slo_tpot_ms, row.slo_e2e_ms) == (400.0, 30.0, 900.0)


@pytest.mark.parametrize(("args", "message"), [
    (("--goodput", "latency:5"), "--goodput takes ttft:MS, tpot:MS or e2el:MS"),
    (("--goodput", "ttft:abc"), "--goodput ttft:"),
    (("--goodput", "ttft:-5"), "--goodput ttft:"),
    (("--goodput", "ttft:5", "--ttft-slo", "5"), "both set the ttft SLO"),
    (("--burstiness", "0.5", "--arrival", "poisson", "--rate", "2"), "applies to --arrival gamma"),
])
def test_bad_vllm_flags_are_one_line_errors(bsbench, tmp_path, args, message):
    result = bsbench(*SIM, "--out", tmp_path, "-n", 3, *args)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
