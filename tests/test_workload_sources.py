"""Every source on small data the tests write: sharegpt (JSON list, JSONL, truncated), multiturn, longbench,
mixed, synthetic, trace; and the filter presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bsbench.errors import BsbenchError
from bsbench.workloads.build import build_workload, parse_mix, split_counts
from bsbench.workloads.filters import PRESETS, make_filter, middle_truncate
from bsbench.workloads.longbench import PROMPT_TEMPLATE
from bsbench.workloads.records import read_records
from bsbench.workloads.tokenizer import load_tokenizer


def test_sharegpt_json_list_prompt_is_first_turn_output_is_reply(sharegpt_json: Path, sharegpt_records: list) -> None:
    wl = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=20, filter="none")
    tok = load_tokenizer(None)
    by_prompt = {tuple(tok.encode(r["conversations"][0]["value"])): r for r in sharegpt_records}
    assert len(wl.requests) == 20 and [r.id for r in wl.requests] == [f"r{i:05d}" for i in range(20)]
    for req in wl.requests:
        record = by_prompt[req.prompt_ids]
        assert req.output_len == len(tok.encode(record["conversations"][1]["value"]))
        assert req.source == "sharegpt" and req.arrival_s == 0.0
    assert wl.load_report["kept"] == 20 and wl.load_report["examined"] == 20


def test_truncated_json_list_recovers_complete_records(tmp_path: Path, sharegpt_records: list) -> None:
    text = json.dumps(sharegpt_records, indent=1)
    cut = text[: text.index('"c30"') + 20]  # cut inside record 30
    path = tmp_path / "cut.json"
    path.write_text(cut)
    data = read_records(str(path))
    assert len(data.records) == 30 and data.truncated and data.malformed == 1
    with pytest.raises(BsbenchError, match="malformed"):
        read_records(str(path), strict=True)
    wl = build_workload("sharegpt", dataset_path=str(path), num_requests=10, filter="none")
    assert wl.load_report["records"] == 30 and wl.load_report["malformed"] == 1


def test_jsonl_malformed_lines_counted_and_skipped(tmp_path: Path, sharegpt_records: list) -> None:
    path = tmp_path / "sg.jsonl"
    lines = [json.dumps(r) for r in sharegpt_records[:10]]
    lines.insert(3, '{"id": "broken", "conversations": [')
    path.write_text("\n".join(lines) + "\n")
    wl = build_workload("sharegpt", dataset_path=str(path), num_requests=5, filter="none")
    assert wl.load_report["malformed"] == 1 and wl.load_report["records"] == 10
    with pytest.raises(BsbenchError, match="1 malformed"):
        build_workload("sharegpt", dataset_path=str(path), num_requests=5, filter="none", strict=True)


def test_filter_presets_and_overrides(sharegpt_json: Path) -> None:
    assert PRESETS["vllm"].reason(3, 10) == "prompt_too_short"
    assert PRESETS["vllm"].reason(1025, 10) == "prompt_too_long"
    assert PRESETS["vllm"].reason(1000, 1049) == "total_too_long"
    assert PRESETS["sglang"].reason(2, 2) is None and PRESETS["sglang"].reason(1, 2) == "prompt_too_short"
    assert PRESETS["none"].reason(1, 1) is None
    custom = make_filter("vllm", {"filter_max_prompt": 30, "filter_min_output": 10})
    assert custom.max_prompt == 30 and custom.min_output == 10 and custom.max_total == 2048
    wl = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=10, filter="vllm",
                        filter_max_prompt=30, filter_min_output=10)
    assert all(4 <= r.prompt_len <= 30 and r.output_len >= 10 for r in wl.requests)
    dropped = wl.load_report["dropped"]
    assert wl.load_report["examined"] == 10 + sum(dropped.values()) and "prompt_too_long" in dropped


def test_output_cap_and_middle_truncation_are_counted(sharegpt_json: Path) -> None:
    assert middle_truncate(list(range(10)), 4) == [0, 1, 8, 9]
    assert middle_truncate(list(range(10)), 5) == [0, 1, 7, 8, 9]
    wl = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=30, filter="none",
                        max_prompt_len=20, max_output_len=16)
    assert max(r.prompt_len for r in wl.requests) == 20 and max(r.output_len for r in wl.requests) == 16
    raw = build_workload("sharegpt", dataset_path=str(sharegpt_json), num_requests=30, filter="none")
    assert wl.load_report["prompts_truncated"] == sum(r.prompt_len > 20 for r in raw.requests) > 0
    assert wl.load_report["outputs_capped"] == sum(r.output_len > 16 for r in raw.requests) > 0


def test_multiturn_prompt_holds_the_history(sharegpt_json: Path, sharegpt_records: list) -> None:
    wl = build_workload("sharegpt-multiturn", dataset_path=str(sharegpt_json), num_requests=10, filter="none")
    tok = load_tokenizer(None)
    for req in wl.requests:
        text = tok.decode(req.prompt_ids)
        assert text.startswith("User: ") and "\n\nAssistant: " in text
    assert wl.load_report["dropped"].get("too_few_turns", 0) > 0  # 2-turn records cannot be multi-turn


def test_longbench_file_and_folder(longbench_jsonl: Path) -> None:
    tok = load_tokenizer(None)
    wl = build_workload("longbench", dataset_path=str(longbench_jsonl), num_requests=8, filter="none",
                        max_prompt_len=128, max_output_len=6)
    assert wl.load_report["loader"] == "line-reader" and wl.load_report["records"] == 20
    assert all(r.prompt_len == 128 for r in wl.requests)  # every prompt was longer: truncated
    assert wl.load_report["prompts_truncated"] == 8
    assert all(1 <= r.output_len <= 6 for r in wl.requests)
    text = tok.decode(wl.requests[0].prompt_ids)
    assert text.startswith("context") and text.rstrip().endswith("Answer:")  # middle dropped, both ends kept
    folder = build_workload("longbench", dataset_path=str(longbench_jsonl.parent), num_requests=8, filter="none",
                            max_prompt_len=128, max_output_len=6)
    assert folder.fingerprint() == wl.fingerprint()
    assert PROMPT_TEMPLATE.count("{context}") == 1


def test_longbench_malformed_line_is_counted(longbench_jsonl: Path) -> None:
    with longbench_jsonl.open("a") as handle:
        handle.write('{"input": "x", "context": \n')
    wl = build_workload("longbench", dataset_path=str(longbench_jsonl), num_requests=5, filter="none")
    assert wl.load_report["loader"] == "line-reader" and wl.load_report["malformed"] == 1
    with pytest.raises(BsbenchError, match="malformed"):
        build_workload("longbench", dataset_path=str(longbench_jsonl), num_requests=5, strict=True)


def test_mixed_shares_and_components(sharegpt_json: Path) -> None:
    assert parse_mix("mixed:sharegpt=0.8,sharegpt-multiturn=0.2") == [("sharegpt", 0.8), ("sharegpt-multiturn", 0.2)]
    assert split_counts(7, [0.5, 0.5]) == [4, 3] and sum(split_counts(101, [0.8, 0.15, 0.05])) == 101
    wl = build_workload("mixed:sharegpt=0.75,sharegpt-multiturn=0.25", num_requests=20, filter="none",
                        components={"sharegpt": {"dataset_path": str(sharegpt_json)},
                                    "sharegpt-multiturn": {"dataset_path": str(sharegpt_json)}})
    sources = [r.source for r in wl.requests]
    assert sources.count("sharegpt") == 15 and sources.count("sharegpt-multiturn") == 5
    assert sources != sorted(sources)  # interleaved by the seeded shuffle
    assert set(wl.load_report["components"]) == {"sharegpt", "sharegpt-multiturn"}
    with pytest.raises(BsbenchError, match="unknown mixed component"):
        build_workload("mixed:nope=1")


@pytest.mark.parametrize("dist", ["fixed", "uniform", "normal", "zipf"])
def test_synthetic_lengths_and_real_token_ids(dist: str) -> None:
    wl = build_workload("synthetic", num_requests=200, input_len=64, output_len=16, length_dist=dist,
                        range_ratio=0.5, max_prompt_len=512)
    tok = load_tokenizer(None)
    prompts = [r.prompt_len for r in wl.requests]
    ids = {i for r in wl.requests for i in r.prompt_ids}
    assert all(0 <= i < tok.vocab_size for i in ids) and not ids & tok.special_ids()
    if dist == "fixed":
        assert set(prompts) == {64} and {r.output_len for r in wl.requests} == {16}
    if dist == "uniform":
        assert 32 <= min(prompts) and max(prompts) <= 96 and len(set(prompts)) > 10
    if dist == "zipf":
        assert max(prompts) > 3 * sorted(prompts)[100] and max(prompts) <= 512


def test_trace_arrivals_and_time_scale(trace_csv: Path) -> None:
    wl = build_workload("trace", dataset_path=str(trace_csv), num_requests=10, time_scale=2.0)
    assert [r.arrival_s for r in wl.requests[:3]] == [0.0, 1.0, 2.0]
    assert [r.prompt_len for r in wl.requests[:3]] == [16, 17, 18]
    assert [r.output_len for r in wl.requests[:3]] == [4, 5, 6]
    assert wl.spec["arrival"] == "trace" and wl.spec["rate"] == pytest.approx(1.0)


def test_trace_splitwise_columns_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "splitwise.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46.500,100,10\n2023-11-16 18:15:47.000,200,20\nnot-a-time,x,3\n")
    wl = build_workload("trace", dataset_path=str(path), num_requests=2)
    assert [r.arrival_s for r in wl.requests] == [0.0, 0.5]
    assert wl.load_report["malformed"] == 1
    with pytest.raises(BsbenchError, match="malformed"):
        build_workload("trace", dataset_path=str(path), num_requests=2, strict=True)
