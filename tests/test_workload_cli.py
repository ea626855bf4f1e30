"""`bsbench workload show`, save/replay, spec files, the packaged ShareGPT file, and every bad input via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bsbench.workloads.build import load_workload
from bsbench.workloads.records import clear_cache, packaged_sharegpt_path, read_records
from bsbench.workloads.specs import available_specs, packaged_spec_dir

REPO = Path(__file__).resolve().parents[1]


def test_packaged_sharegpt_file_is_recovered() -> None:
    clear_cache()
    start = time.perf_counter()
    data = read_records(packaged_sharegpt_path())
    elapsed = time.perf_counter() - start
    print(f"packaged ShareGPT: {len(data.records)} complete records recovered in {elapsed:.2f}s "
          f"(truncated={data.truncated}, malformed tail={data.malformed})")
    assert data.truncated and data.malformed == 1 and len(data.records) > 17000
    start = time.perf_counter()
    wl = load_workload(None, {})
    print(f"default workload (100 requests) in {time.perf_counter() - start:.2f}s (file already parsed)")
    report = wl.load_report
    assert len(wl.requests) == 100 and report["records"] == len(data.records)
    assert report["examined"] == 100 + sum(report["dropped"].values()) < 200  # not the whole file
    assert all(4 <= r.prompt_len <= 1024 and r.output_len >= 4 and r.prompt_len + r.output_len <= 2048
               for r in wl.requests)


@pytest.mark.parametrize("name", ["sharegpt-vllm", "mixed-longtail", "longbench", "smoke"])
def test_shipped_specs_load(name: str) -> None:
    assert (REPO / "workloads" / f"{name}.toml").is_file()  # the repo folder points at the packaged copy
    assert os.path.isfile(os.path.join(packaged_spec_dir(), f"{name}.toml"))
    wl = load_workload(name, {"num_requests": 8})
    assert len(wl.requests) == 8 and wl.name == name and wl.tokenizer == "bsbench-bpe-32k"
    if name == "smoke":
        assert all(r.prompt_len <= 256 and r.output_len <= 32 for r in wl.requests)
    if name == "longbench":
        assert all(r.prompt_len <= 1024 for r in wl.requests)


def test_every_spec_in_workloads_folder_loads() -> None:
    names = {p.stem for p in (REPO / "workloads").glob("*.toml")}
    assert names <= set(available_specs()) and len(names) >= 4
    for name in sorted(names):
        assert load_workload(name, {"num_requests": 4}).requests


def test_show_prints_counts_percentiles_arrivals_histogram(bsbench) -> None:
    result = bsbench("workload", "show", "smoke", "--rate", "2", "--e2e-slo", "150000..300000")
    assert result.code == 0, result.err
    for text in ("records read", "kept", "dropped: ", "p50", "p99", "arrivals: poisson at 2 req/s",
                 "effective rate", "prompt length histogram", "bsbench-bpe-32k", "complete records recovered"):
        assert text in result.out


def test_save_and_replay_same_fingerprint_same_bytes(bsbench, tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    args = ["workload", "show", "smoke", "--seed", "5", "--rate", "3", "--arrival", "gamma", "--cv", "2",
            "--ttft-slo", "1000", "--online-share", "0.5"]
    assert bsbench(*args, "--save", first).code == 0
    assert bsbench(*args, "--save", second).code == 0
    assert first.read_bytes() == second.read_bytes()
    lines = first.read_text().splitlines()
    assert len(lines) == 16 and set(json.loads(lines[0])) >= {"id", "prompt_ids", "output_len", "arrival_s", "slo",
                                                            "priority"}
    original = load_workload("smoke", {"seed": 5, "rate": "3", "arrival": "gamma", "cv": 2.0, "ttft_slo": "1000",
                                       "online_share": 0.5})
    replay = load_workload(str(first), {})
    assert replay.fingerprint() == original.fingerprint() and replay.requests == original.requests
    assert replay.tokenizer == "bsbench-bpe-32k"
    shown = bsbench("workload", "show", "--workload", first)
    assert shown.code == 0 and original.fingerprint()[:16] in shown.out
    # a replay is exact: flags that would reshape requests are refused, never silently ignored
    _one_line_error(bsbench("workload", "show", first, "--max-output-len", "8"), "does not apply", "--max-output-len")
    _one_line_error(bsbench("workload", "show", first, "--filter", "vllm"), "does not apply", "--filter")
    assert bsbench("workload", "show", first, "-n", "4").code == 0


def _one_line_error(result, *needles: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bsbench: error: "), result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_exit_2_with_one_line(bsbench, tmp_path: Path, sharegpt_json: Path) -> None:
    show = ("workload", "show")
    _one_line_error(bsbench(*show, "sharegpt", "--dataset-path", tmp_path / "missing.json"), "not found")
    _one_line_error(bsbench(*show, "nosuchsource"), "unknown workload")
    _one_line_error(bsbench(*show, "mixed:sharegpt=1,bogus=1"), "unknown mixed component")
    _one_line_error(bsbench(*show, "smoke", "--rate", "0"), "rate must be a number > 0")
    _one_line_error(bsbench(*show, "smoke", "--rate", "-3"), "rate must be a number > 0")
    _one_line_error(bsbench(*show, "smoke", "--arrival", "gamma", "--rate", "1", "--burstiness", "0"),
                    "--burstiness must be")
    _one_line_error(bsbench(*show, "smoke", "--arrival", "gamma", "--rate", "1", "--burstiness", "-1"),
                    "--burstiness must be")
    _one_line_error(bsbench(*show, "sharegpt", "--dataset-path", sharegpt_json, "-n", "1000", "--filter", "none"),
                    "only", "exist")
    _one_line_error(bsbench(*show, "sharegpt", "--dataset-path", sharegpt_json, "--filter-max-prompt", "1"),
                    "nothing left after filtering")
    _one_line_error(bsbench(*show, "smoke", "-n", "0"), "num-requests")
    _one_line_error(bsbench(*show, "smoke", "--tokenizer", tmp_path / "nope"), "tokenizer not found")
    _one_line_error(bsbench(*show, "smoke", "--e2e-slo", "9..1"), "--e2e-slo")
    _one_line_error(bsbench(*show, "longbench", "--dataset-path", tmp_path / "no-lb"), "not found")
    _one_line_error(bsbench(*show, "smoke", "--filter", "bogus"))  # click usage error, same one-line form


def test_oversample_fills_and_reports(bsbench, sharegpt_json: Path) -> None:
    result = bsbench("workload", "show", "sharegpt", "--dataset-path", sharegpt_json, "-n", "100", "--filter", "none",
                     "--oversample")
    assert result.code == 0 and "oversampled" in result.out
    wl = load_workload("sharegpt", {"dataset_path": str(sharegpt_json), "num_requests": 100, "filter": "none",
                                    "oversample": True})
    report = wl.load_report
    assert len({r.id for r in wl.requests}) == 100 and report["oversampled"] > 0
    assert report["kept"] + report["oversampled"] == 100  # kept counts distinct records; repeats are reported


def test_malformed_jsonl_counted_then_strict_fatal(bsbench, tmp_path: Path, sharegpt_records: list) -> None:
    path = tmp_path / "sg.jsonl"
    path.write_text("\n".join([json.dumps(r) for r in sharegpt_records[:20]] + ["{not json"]) + "\n")
    ok = bsbench("workload", "show", "sharegpt", "--dataset-path", path, "-n", "5", "--filter", "none")
    assert ok.code == 0 and "malformed (skipped)" in ok.out
    _one_line_error(bsbench("workload", "show", "sharegpt", "--dataset-path", path, "-n", "5", "--filter", "none",
                            "--strict"), "malformed")
    saved = tmp_path / "bad.jsonl"
    saved.write_text('{"id": "r0", "prompt_ids": [1, 2], "output_len": 0, "arrival_s": 0}\n')
    _one_line_error(bsbench("workload", "show", saved), "line 1", "output_len")  # a wrong value, not damage
    _one_line_error(bsbench("workload", "show", saved, "--rate", "2"), "replays its own arrival times")


def test_subprocess_exit_code_and_single_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "bsbench", "workload", "show", "smoke", "--rate", "0"],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
            and "--rate must be a number > 0" in proc.stderr)
