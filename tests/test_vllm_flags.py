"""vLLM's benchmark flag spellings: --request-rate, --num-prompts, --goodput KEY:MS..., --burstiness (gamma)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from bsbench.commands._workload_options import workload_overrides
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


# --- vLLM's `bench serve` command lines (tests/data/vllm_bench_serve_examples.txt) ---------------------------

EXAMPLES = Path(__file__).parent / "data" / "vllm_bench_serve_examples.txt"


def _examples() -> list[str]:
    return [line for line in EXAMPLES.read_text().splitlines() if line.startswith("bsbench run")]


def _parse(bsbench, monkeypatch, line: str, sharegpt: Path, out: Path) -> dict:
    """Run one example line up to the point where it would contact the server: what bsbench made of it."""
    from bsbench.commands import run

    seen: dict = {}

    def capture(options, kwargs, repeats, quiet, vllm, save, ttft_origin, window=None):
        seen.update(options=options, vllm=vllm, save=save, percentiles=kwargs["percentiles"])
        seen["target"], seen["overrides"] = workload_overrides(kwargs)
        return []

    monkeypatch.setattr(run, "_run_openai", capture)
    words = shlex.split(line.replace("{sharegpt}", str(sharegpt)).replace("{out}", str(out)))[2:]
    if "--host" not in words and "--port" not in words:
        words += ["--base-url", "http://127.0.0.1:9"]
    result = bsbench("run", *words)
    assert result.code == 0, result.err
    return seen


def test_every_documented_vllm_example_parses(bsbench, monkeypatch, sharegpt_json, tmp_path):
    lines = _examples()
    assert len(lines) >= 8
    for line in lines:
        seen = _parse(bsbench, monkeypatch, line, sharegpt_json, tmp_path)
        words = shlex.split(line)
        model = words[words.index("--model") + 1]
        assert seen["options"].served_model == model, line
        assert seen["target"] == {"random": "synthetic", "sharegpt": "sharegpt"}[words[words.index("--dataset-name")
                                                                                      + 1]]


def test_examples_mean_what_vllm_means(bsbench, monkeypatch, sharegpt_json, tmp_path):
    lines = _examples()
    first = _parse(bsbench, monkeypatch, lines[0], sharegpt_json, tmp_path)
    assert first["options"].endpoint == "completions" and first["overrides"]["num_requests"] == 10
    assert first["overrides"]["dataset_path"] == str(sharegpt_json)
    responses = _parse(bsbench, monkeypatch, lines[2], sharegpt_json, tmp_path)
    assert {k: responses["overrides"][k] for k in ("input_len", "output_len", "num_requests")} == \
        {"input_len": 1024, "output_len": 1024, "num_requests": 200}
    sampling = _parse(bsbench, monkeypatch, lines[3], sharegpt_json, tmp_path)
    assert sampling["options"].temperature == 0.5
    assert dict(sampling["options"].extra_body) == {"top_k": 10, "top_p": 0.9}
    custom = _parse(bsbench, monkeypatch, lines[4], sharegpt_json, tmp_path)
    assert custom["options"].base_url == "http://127.0.0.1:9001/v1" and custom["options"].max_concurrency == 1
    assert custom["save"].save and custom["save"].detailed and custom["save"].result_dir == tmp_path / "log"
    ramp = _parse(bsbench, monkeypatch, lines[5], sharegpt_json, tmp_path)
    assert ramp["vllm"].ramp == ("linear", 1.0, 10.0)
    assert {k: ramp["overrides"][k] for k in ("input_len", "output_len")} == {"input_len": 1024, "output_len": 128}
    bursty = _parse(bsbench, monkeypatch, lines[7], sharegpt_json, tmp_path)
    assert bursty["overrides"]["num_requests"] == 1000 and bursty["overrides"]["arrival"] == "gamma"
    full = _parse(bsbench, monkeypatch, lines[8], sharegpt_json, tmp_path)
    options, save, overrides = full["options"], full["save"], full["overrides"]
    assert (options.base_url, options.endpoint, options.warmup_requests) == ("http://127.0.0.1:8000/v1", "chat", 2)
    assert overrides["length_dist"] == "uniform" and overrides["range_ratio"] == 0.25 and overrides["seed"] == 7
    assert overrides["ttft_slo"] is not None and full["percentiles"] == "50,90,99.9"
    assert (save.label, save.filename, save.metadata) == ("mine", "bench.json", {"tp": "4", "engine": "bsbench"})


def test_a_ramp_goes_from_start_to_end_rate():
    from bsbench.workloads.build import load_workload, with_ramp

    base = load_workload("synthetic", {"num_requests": 200, "input_len": 4, "output_len": 2, "seed": 1})
    ramped = with_ramp(base, "linear", 1.0, 20.0)
    times = [r.arrival_s for r in ramped.requests]
    first, last = times[1] - times[0], (times[-1] - times[-51]) / 50
    assert times == sorted(times) and first > 5 * last  # the gaps shrink as the rate grows
    assert ramped.spec["ramp_up"] == {"strategy": "linear", "start_rps": 1.0, "end_rps": 20.0}
    assert with_ramp(base, "linear", 1.0, 20.0).fingerprint() == ramped.fingerprint()  # seeded: the same ramp
    assert ramped.fingerprint() != with_ramp(base, "exponential", 1.0, 20.0).fingerprint()


@pytest.mark.parametrize(("args", "message"), [
    (("--dataset-name", "custom"), "--dataset-name custom:"),
    (("--dataset-name", "hf"), "--dataset-name 'hf'"),
    (("--dataset-name", "random", "-w", "smoke"), "--dataset-name random and --workload"),
    (("--random-input-len", "8"), "--random-input-len applies to --dataset-name random"),
    (("--dataset-name", "random", "--random-input-len", "8", "--input-len", "8"), "set the same thing"),
    (("--endpoint", "/v1/embeddings"), "bsbench sends completions or chat"),
    (("--header", "x-a=1"), "--header is not supported yet"),
    (("--extra-body", "[1]"), "--extra-body must be a JSON object"),
    (("--ramp-up-strategy", "linear"), "needs --ramp-up-start-rps and --ramp-up-end-rps"),
    (("--ramp-up-strategy", "exponential", "--ramp-up-start-rps", "0", "--ramp-up-end-rps", "4"), "start-rps > 0"),
    (("--ramp-up-strategy", "linear", "--ramp-up-start-rps", "1", "--ramp-up-end-rps", "4", "--rate", "2"),
     "give no --request-rate"),
    (("--percentile-metrics", "ttft,goodput"), "--percentile-metrics takes"),
    (("--label", "x"), "--label applies to --save-result"),
    (("--save-result", "--metadata", "novalue"), "--metadata takes KEY=VALUE"),
    (("--ignore-eos", "--strict-openai"), "--ignore-eos and --strict-openai disagree"),
    (("--model", "a", "--served-model", "b"), "--model and --served-model set the same thing"),
    (("--host", "h", "--base-url", "http://x"), "--host/--port and --base-url set the same thing"),
])
def test_vllm_flags_bsbench_cannot_honour_are_one_line_errors(bsbench, tmp_path, args, message):
    base = [] if "--host" in args else ["--base-url", "http://127.0.0.1:9"]
    if "-w" not in args and "--dataset-name" not in args:
        base += ["-w", "synthetic"]
    result = bsbench("run", "--backend", "openai", *base, "-n", 2, "--out", tmp_path, *args)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err


def test_client_flags_are_refused_on_in_process_backends(bsbench, tmp_path):
    result = bsbench(*SIM, "--out", tmp_path, "-n", 2, "--temperature", 0.5)
    assert result.code == 2 and "--temperature applies to --backend openai" in result.err


def test_an_example_runs_end_to_end_against_the_fake_server(bsbench, tmp_path):
    from tests.openai_fake import FakeServer

    with FakeServer() as server:
        host, port = server.base_url.split("//")[1].split("/")[0].split(":")
        result = bsbench("run", "--backend", "openai", "--host", host, "--port", port, "--model", "fake-model",
                         "--endpoint", "/v1/completions", "--dataset-name", "random", "--random-input-len", 8,
                         "--random-output-len", 3, "--num-prompts", 5, "--request-rate", 200, "--num-warmups", 1,
                         "--temperature", 0.25, "--extra-body", '{"top_p": 0.5}', "--save-result", "--save-detailed",
                         "--label", "fake", "--metadata", "tp=1", "--percentile-metrics", "ttft,e2el",
                         "--out", tmp_path, "--quiet")
    assert result.code == 0, result.err
    bodies = server.seen.bodies
    assert len(bodies) == 7 and {b["temperature"] for b in bodies} == {0.25} and {b["top_p"] for b in bodies} == {0.5}
    saved = next(tmp_path.glob("fake-200.0qps-fake-model-*.json"))
    layout = json.loads(saved.read_text())
    assert layout["completed"] == 5 and layout["label"] == "fake" and layout["tp"] == "1"
    assert len(layout["ttfts"]) == 5 and "p99_e2el_ms" in layout and "p99_tpot_ms" not in layout
    assert layout["max_output_tokens_per_s"] >= 1 and layout["max_concurrent_requests"] >= 1
    record = read_record(next(p for p in tmp_path.glob("*.json") if p != saved))
    assert record.config.model == "fake-model" and record.summary["completed"] == 5


# --- failures are loud --------------------------------------------------------------------------------------

def test_a_run_where_every_request_fails_exits_1_with_the_reason(bsbench, tmp_path):
    from tests.openai_fake import Behaviour, FakeServer

    with FakeServer(Behaviour(status=422)) as server:  # (the test request would stop it before the run)
        result = bsbench("run", "--backend", "openai", "--base-url", server.base_url, "-w", "synthetic", "-n", 4,
                         "--input-len", 8, "--output-len", 2, "--out", tmp_path, "--quiet", "--no-test-request")
    assert result.code == 1, result.err
    assert "4 of 4 requests did not complete (none completed); most common:" in result.err and "422" in result.err
    assert "failures by kind" in result.out and "(4x)" in result.out
    assert next(tmp_path.glob("*.json"))  # the record is written all the same


def test_max_failure_ratio_sets_the_bar(bsbench, tmp_path):
    from tests.openai_fake import Behaviour, FakeServer

    args = ("-w", "synthetic", "-n", 4, "--input-len", 8, "--output-len", 2, "--quiet", "--no-test-request")
    with FakeServer(Behaviour(error_every=2)) as server:  # half of the requests fail
        lenient = bsbench("run", "--backend", "openai", "--base-url", server.base_url, *args, "--out", tmp_path / "a")
        strict = bsbench("run", "--backend", "openai", "--base-url", server.base_url, *args, "--out", tmp_path / "b",
                         "--max-failure-ratio", 0.25)
    assert lenient.code == 0 and "most common:" in lenient.out
    assert strict.code == 1 and "over --max-failure-ratio 0.25" in strict.err
    assert len(strict.err.strip().splitlines()) == 1


def test_vllms_own_backend_words_mean_the_openai_backend(bsbench, monkeypatch, sharegpt_json, tmp_path):
    """`--backend vllm` and `--backend openai-chat`, as vLLM's command lines write them, run against the server;
    openai-chat implies the chat endpoint and refuses another."""
    base = "bsbench run --model m --dataset-name random --num-prompts 3 --port 9001"
    vllm_word = _parse(bsbench, monkeypatch, f"{base} --backend vllm --endpoint /v1/completions", sharegpt_json,
                       tmp_path)
    assert vllm_word["options"].endpoint == "completions" and vllm_word["options"].served_model == "m"
    chat = _parse(bsbench, monkeypatch, f"{base} --backend openai-chat", sharegpt_json, tmp_path)
    assert chat["options"].endpoint == "chat"
    chat = _parse(bsbench, monkeypatch, f"{base} --backend openai-chat --endpoint /v1/chat/completions",
                  sharegpt_json, tmp_path)
    assert chat["options"].endpoint == "chat"
    refused = bsbench("run", *shlex.split(f"{base} --backend openai-chat --endpoint /v1/completions")[2:])
    assert refused.code == 2 and "--backend openai-chat sends to the chat endpoint" in refused.err
